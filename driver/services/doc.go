// Package services is the manager's own Kubernetes Services + EndpointSlices watch: the source of service
// backends (Felix's ServiceUpdate carries none) and of every service setting a dataplane needs.
//
// It owns:
//   - Build: the join of one Service with its EndpointSlices into a typed, validated model.KubeService
//     (cluster IPs, external IPs, spec.loadBalancerIP and status.loadBalancer.ingress IPs, per port its name,
//     protocol, port, node port, target port and backends — address per family, resolved target port,
//     ready / serving / terminating, node name — session affinity with its timeout, external and internal
//     traffic policies, the health-check node port), following kube-proxy's reading of the API;
//   - Watcher: client-go shared informers on Services and EndpointSlices (objects labelled
//     service.kubernetes.io/service-proxy-name belong to another proxy and are ignored, as kube-proxy
//     does), one worker that rebuilds a service whenever it or one of its slices changes and hands the
//     view to a Sink (session.Manager) only when it changed, then a "synced" mark after the initial list;
//   - FileSource: the same Watcher over client-go's fake clientset, kept equal to a file of Services and
//     EndpointSlices (--services-file: the e2e tests, and nodes without an API server); it marks each file
//     revision synced once the watch has handed it over completely;
//   - the watch's metrics (calico_p4_services_*).
//
// # Which source wins: the Kubernetes watch
//
// Felix's ServiceUpdate and the Kubernetes Service both carry a service's type, cluster IPs, external IPs,
// spec.loadBalancerIP and (protocol, port, node port) list. The dataplane is programmed from the watch's
// view alone; Felix's ServiceUpdate stays in the model (it is Felix's view, used for nothing else):
//   - backends are found through the port's *name* (EndpointSlice ports are named like the service's),
//     which ServiceUpdate lacks: joining Felix's ports to the slices needs the Service object anyway;
//   - the watch's Service and EndpointSlices come from one API server, so its view never mixes two
//     versions of a service (Felix's copy lags or leads the watch during every update, e.g. a port change
//     would pair Felix's new port with the watch's old target port);
//   - status.loadBalancer.ingress, traffic policies and affinity exist only in the watch;
//   - Felix sends ServiceUpdates only with the Kubernetes datastore; with etcd there are none, yet the
//     cluster's services still need load balancing.
//
// Without a watch (--kubeconfig none, or no API server reachable) no service is programmed: service
// addresses are not translated and packets to them follow the routes (the manager logs it at start).
//
// It must not translate (the translator does), keep dataplane state, or decide when to apply (the session
// does: the sink only changes the desired state and wakes the session).
package services
