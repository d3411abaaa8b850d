package services

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/calico-p4/calico-p4/driver/model"
)

// recSink records what the watch hands over: the current view per service and the synced marks.
type recSink struct {
	mu      sync.Mutex
	svcs    map[model.ServiceKey]*model.KubeService
	upserts int
	removes int
	synced  []uint64
}

func newRecSink() *recSink { return &recSink{svcs: map[model.ServiceKey]*model.KubeService{}} }

func (s *recSink) UpsertKubeService(ks *model.KubeService) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svcs[ks.Key] = ks
	s.upserts++
}

func (s *recSink) RemoveKubeService(k model.ServiceKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.svcs, k)
	s.removes++
}

func (s *recSink) KubeServicesSynced(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synced = append(s.synced, rev)
}

// describe is the sink's content, one service a line: "ns/name ports: proto/port -> addr:port(r|s|t) ...".
func (s *recSink) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for k, ks := range s.svcs {
		line := k.String()
		for _, p := range ks.Ports {
			line += fmt.Sprintf(" %d/%d:", p.Protocol, p.Port)
			for _, b := range p.Backends {
				c := ""
				if b.Ready {
					c += "r"
				}
				if b.Serving {
					c += "s"
				}
				if b.Terminating {
					c += "t"
				}
				line += fmt.Sprintf(" %s:%d(%s)", b.Addr, b.Port, c)
			}
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (s *recSink) syncedList() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.synced...)
}

// eventually polls cond (a hang guard, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The informer code against client-go's fake clientset (no API server here): the initial list is handed
// over before the synced mark, then every change to a Service or one of its EndpointSlices re-hands the
// service's view, and deletions remove it.
func TestWatcherFollowsServicesAndSlicesOfAFakeClientset(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset(
		svc("x", "web", nil),
		slice("x", "web-1", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080}, ep{addr: "10.65.0.51"}),
	)
	sink := newRecSink()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// The fake clientset's typed clients as the watch's list/watch (what APISource builds on a REST client).
	ctxList := context.Background()
	svcLW := &cache.ListWatch{
		ListFunc:  func(o metav1.ListOptions) (runtime.Object, error) { return cs.CoreV1().Services("").List(ctxList, o) },
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) { return cs.CoreV1().Services("").Watch(ctxList, o) },
	}
	sliceLW := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			return cs.DiscoveryV1().EndpointSlices("").List(ctxList, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			return cs.DiscoveryV1().EndpointSlices("").Watch(ctxList, o)
		},
	}
	w, err := NewWatcher(Options{Services: svcLW, Slices: sliceLW, Sink: sink, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	eventually(t, "the initial sync", func() bool { return len(sink.syncedList()) == 1 })
	if got, want := sink.describe(), "x/web 6/80: 10.65.0.51:8080(rs)"; got != want {
		t.Fatalf("after the initial sync the sink holds\n%s\nwant\n%s", got, want)
	}
	if got := testutil.ToFloat64(m.synced); got != 1 {
		t.Errorf("calico_p4_services_synced = %v", got)
	}

	steps := []struct {
		name   string
		change func() error
		want   string
	}{
		{"a second slice adds a backend", func() error {
			_, err := cs.DiscoveryV1().EndpointSlices("x").Create(ctx, slice("x", "web-2", "web", discoveryv1.AddressTypeIPv4,
				map[string]int32{"http": 8080}, ep{addr: "10.65.0.52", ready: ptr(false), serving: ptr(true), terminating: ptr(true)}),
				metav1.CreateOptions{})
			return err
		}, "x/web 6/80: 10.65.0.51:8080(rs) 10.65.0.52:8080(st)"},
		{"the service's port changes", func() error {
			s := svc("x", "web", func(s *corev1.Service) { s.Spec.Ports[0].Port = 8081 })
			_, err := cs.CoreV1().Services("x").Update(ctx, s, metav1.UpdateOptions{})
			return err
		}, "x/web 6/8081: 10.65.0.51:8080(rs) 10.65.0.52:8080(st)"},
		{"a slice deleted removes its backends", func() error {
			return cs.DiscoveryV1().EndpointSlices("x").Delete(ctx, "web-1", metav1.DeleteOptions{})
		}, "x/web 6/8081: 10.65.0.52:8080(st)"},
		{"a new service with no slice has no backends", func() error {
			_, err := cs.CoreV1().Services("y").Create(ctx, svc("y", "api", nil), metav1.CreateOptions{})
			return err
		}, "x/web 6/8081: 10.65.0.52:8080(st)\ny/api 6/80:"},
		{"an invalid service is removed (fail closed)", func() error {
			s := svc("y", "api", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"bogus"} })
			_, err := cs.CoreV1().Services("y").Update(ctx, s, metav1.UpdateOptions{})
			return err
		}, "x/web 6/8081: 10.65.0.52:8080(st)"},
		{"a deleted service is removed", func() error {
			return cs.CoreV1().Services("x").Delete(ctx, "web", metav1.DeleteOptions{})
		}, ""},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		eventually(t, st.name, func() bool { return sink.describe() == st.want })
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("invalid_service")); got < 1 {
		t.Errorf("invalid_service errors = %v, want ≥ 1", got)
	}
	if got := testutil.ToFloat64(m.services); got != 0 {
		t.Errorf("calico_p4_services_watched = %v after every service went away", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The file source runs the same watcher over the fake clientset: a file revision is marked synced only
// once its content has reached the sink; a file that does not parse keeps the previous content.
func TestFileSourceHandsEachRevisionOverCompletely(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "services.yaml")
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	const svcYAML = `
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: x}
  spec:
    clusterIPs: [10.96.0.10]
    ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
`
	write("revision: 1\nobjects:" + svcYAML + `
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-1, namespace: x, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  ports: [{name: http, port: 8080, protocol: TCP}]
  endpoints: [{addresses: [10.65.0.51]}, {addresses: [10.65.0.52], conditions: {ready: false}}]
`)
	sink := newRecSink()
	m, _ := NewMetrics(nil)
	fs, err := NewFileSource(path, Options{Sink: sink, Metrics: m, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fs.Poll = 10 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- fs.Run(ctx) }()
	hasRev := func(r uint64) func() bool {
		return func() bool {
			l := sink.syncedList()
			return len(l) > 0 && l[len(l)-1] == r
		}
	}
	eventually(t, "revision 1", hasRev(1))
	if got, want := sink.describe(), "x/web 6/80: 10.65.0.51:8080(rs) 10.65.0.52:8080()"; got != want {
		t.Fatalf("revision 1 handed over with\n%s\nwant\n%s", got, want)
	}
	if l := sink.syncedList(); l[0] != 0 {
		t.Errorf("synced marks %v: the watch's initial sync (0) comes first", l)
	}

	// Revision 2: the slice is gone, another service appears.
	write("revision: 2\nobjects:" + svcYAML + `
- apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: "y"}
  spec: {clusterIPs: [10.96.0.11], ports: [{port: 443}]}
`)
	eventually(t, "revision 2", hasRev(2))
	if got, want := sink.describe(), "x/web 6/80:\ny/api 6/443:"; got != want {
		t.Fatalf("revision 2 handed over with\n%s\nwant\n%s", got, want)
	}

	// A file that does not parse: counted, and the content stays.
	write("revision: 3\nobjects: [{apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: b}}]\n")
	eventually(t, "the bad file counted", func() bool { return testutil.ToFloat64(m.errors.WithLabelValues("invalid_file")) >= 1 })
	if got, want := sink.describe(), "x/web 6/80:\ny/api 6/443:"; got != want {
		t.Fatalf("after a bad file the sink holds\n%s\nwant\n%s", got, want)
	}
	// A revision that does not increase still counts as a new one.
	write("revision: 1\nobjects: []\n")
	eventually(t, "revision 3 (the file said 1)", hasRev(3))
	if got := sink.describe(); got != "" {
		t.Fatalf("an empty file left\n%s", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
