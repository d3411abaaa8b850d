package services

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// scheme holds only the types the watch reads. (client-go's generated clientset and informer factory
// register every API group: they would quadruple the manager's binary for two resources.)
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // static registration of generated types: cannot fail
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s
}()

// APISource lists and watches Services and EndpointSlices on a Kubernetes API server, as kube-proxy does
// (all namespaces; objects another service proxy owns — label service.kubernetes.io/service-proxy-name —
// are left out by the server).
func APISource(cfg *rest.Config) (svcs, slices cache.ListerWatcher, err error) {
	client := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientFor(c)
	}
	core, err := client(corev1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, nil, fmt.Errorf("services: core/v1 client: %w", err)
	}
	disc, err := client(discoveryv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, nil, fmt.Errorf("services: discovery.k8s.io/v1 client: %w", err)
	}
	notOtherProxy := func(o *metav1.ListOptions) { o.LabelSelector = "!" + labelServiceProxyName }
	return cache.NewFilteredListWatchFromClient(core, "services", metav1.NamespaceAll, notOtherProxy),
		cache.NewFilteredListWatchFromClient(disc, "endpointslices", metav1.NamespaceAll, notOtherProxy), nil
}
