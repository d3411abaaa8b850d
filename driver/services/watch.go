package services

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Sink receives the watch's view: every service that can be programmed (again whenever it or its slices
// change), removals, and "synced" marks. session.Manager implements it. Calls may come from several
// goroutines, never concurrently for one service; KubeServicesSynced(r) comes after every update of r.
type Sink interface {
	// UpsertKubeService hands over a service's complete current view.
	UpsertKubeService(*model.KubeService)
	// RemoveKubeService says the service is gone (deleted, or no longer valid: fail closed).
	RemoveKubeService(model.ServiceKey)
	// KubeServicesSynced says everything the source knew up to revision has been handed over: revision 0
	// is a watch's initial sync (its caches listed every object); a FileSource's file revisions are ≥ 1.
	KubeServicesSynced(revision uint64)
}

// Label of Services (and, copied by the EndpointSlice controller, their slices) that another service
// proxy implements; kube-proxy ignores them and so do we.
const labelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// Options configure a Watcher.
type Options struct {
	// Services and Slices list and watch the two resources: APISource for an API server (FileSource makes
	// its own; tests use client-go's fake clientset).
	Services, Slices cache.ListerWatcher
	Sink             Sink
	Logger           *zap.Logger
	// Metrics are the watch's metrics (NewMetrics); nil: a private, unregistered set.
	Metrics *Metrics
}

// Watcher keeps Sink equal to the Services and EndpointSlices the API server holds, through client-go
// shared informers: every event names a service (a slice names its service by label), a single worker
// rebuilds that service's view from the informers' caches and hands it over if it changed.
type Watcher struct {
	opts     Options
	log      *zap.Logger
	m        *Metrics
	svcInf   cache.SharedIndexInformer
	sliceInf cache.SharedIndexInformer
	queue    workqueue.TypedInterface[string]

	mu sync.Mutex
	// pending counts the enqueues of each service key not yet processed (see idle).
	pending map[string]uint64
	// seen records, per object ("svc/<ns>/<name>", "eps/<ns>/<name>"), the revision annotation of the last
	// version the event handlers saw (FileSource's catch-up check).
	seen map[string]string
	// initial is set once the initial sync has been handed over (KubeServicesSynced(0)).
	initial bool

	// Worker-only state: the last view handed to the sink, per service.
	last     map[model.ServiceKey]*model.KubeService
	problems map[model.ServiceKey]string
}

// indexService indexes EndpointSlices by the service they belong to ("<ns>/<service>").
const indexService = "service"

// NewWatcher sets up the informers; Run starts them.
func NewWatcher(opts Options) (*Watcher, error) {
	if opts.Services == nil || opts.Slices == nil || opts.Sink == nil {
		return nil, errors.New("services: a watcher needs the services and endpointslices to watch, and a sink")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil) // unregistered: cannot fail
	}
	w := &Watcher{opts: opts, log: opts.Logger, m: opts.Metrics, queue: workqueue.NewTyped[string](),
		pending: map[string]uint64{}, seen: map[string]string{}, last: map[model.ServiceKey]*model.KubeService{},
		problems: map[model.ServiceKey]string{}}
	w.svcInf = cache.NewSharedIndexInformer(opts.Services, &corev1.Service{}, 0, cache.Indexers{})
	w.sliceInf = cache.NewSharedIndexInformer(opts.Slices, &discoveryv1.EndpointSlice{}, 0, cache.Indexers{
		indexService: func(o any) ([]string, error) {
			sl, ok := o.(*discoveryv1.EndpointSlice)
			if !ok || sl.Labels[discoveryv1.LabelServiceName] == "" {
				return nil, nil
			}
			return []string{sl.Namespace + "/" + sl.Labels[discoveryv1.LabelServiceName]}, nil
		}})
	for res, inf := range map[string]cache.SharedIndexInformer{"service": w.svcInf, "endpointslice": w.sliceInf} {
		if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			w.m.watchErrors.WithLabelValues(res).Inc()
			w.log.Warn("Kubernetes watch failed; client-go retries", zap.String("resource", res), zap.Error(err))
		}); err != nil {
			return nil, fmt.Errorf("services: %s informer: %w", res, err)
		}
	}
	if _, err := w.svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.onService("add", o) },
		UpdateFunc: func(_, o any) { w.onService("update", o) },
		DeleteFunc: func(o any) { w.onService("delete", o) },
	}); err != nil {
		return nil, fmt.Errorf("services: service handler: %w", err)
	}
	if _, err := w.sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.onSlice("add", nil, o) },
		UpdateFunc: func(old, o any) { w.onSlice("update", old, o) },
		DeleteFunc: func(o any) { w.onSlice("delete", nil, o) },
	}); err != nil {
		return nil, fmt.Errorf("services: endpointslice handler: %w", err)
	}
	return w, nil
}

// Run starts the informers, waits for their initial lists, hands over every service, marks the sink
// synced (revision 0) and then follows changes until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.queue.ShutDown()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, inf := range []cache.SharedIndexInformer{w.svcInf, w.sliceInf} {
		wg.Add(1)
		go func() { defer wg.Done(); inf.Run(ctx.Done()) }()
	}
	go w.work()
	w.log.Info("Watching Kubernetes Services and EndpointSlices")
	if !cache.WaitForCacheSync(ctx.Done(), w.svcInf.HasSynced, w.sliceInf.HasSynced) {
		return fmt.Errorf("services: informers did not sync: %w", context.Cause(ctx))
	}
	// The handlers queued every listed object; wait until the worker has handed them all over.
	if err := w.waitIdle(ctx); err != nil {
		return err
	}
	w.m.synced.Set(1)
	w.opts.Sink.KubeServicesSynced(0)
	w.mu.Lock()
	w.initial = true
	w.mu.Unlock()
	w.log.Info("Kubernetes Services and EndpointSlices in sync", zap.Int("services", len(w.svcInf.GetStore().ListKeys())),
		zap.Int("endpointSlices", len(w.sliceInf.GetStore().ListKeys())))
	<-ctx.Done()
	return nil
}

// waitIdle waits until no service key is waiting or being processed.
func (w *Watcher) waitIdle(ctx context.Context) error {
	for !w.idle() {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// idle reports whether every enqueued service key has been processed.
func (w *Watcher) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) == 0
}

// caughtUp reports whether the initial sync is over, the handlers have seen exactly the objects of want
// (object key → revision) and every resulting service key has been processed.
func (w *Watcher) caughtUp(want map[string]string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.initial || len(w.pending) > 0 || len(w.seen) != len(want) {
		return false
	}
	for k, rev := range want {
		if w.seen[k] != rev {
			return false
		}
	}
	return true
}

func (w *Watcher) enqueue(key string) {
	w.mu.Lock()
	w.pending[key]++
	w.mu.Unlock()
	w.queue.Add(key)
}

// note records what the handlers saw of an object (deleted: forgotten).
func (w *Watcher) note(objKey string, meta metav1.Object, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if deleted {
		delete(w.seen, objKey)
		return
	}
	w.seen[objKey] = meta.GetAnnotations()[AnnotationRevision]
}

func (w *Watcher) onService(event string, o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	svc, ok := o.(*corev1.Service)
	if !ok {
		return
	}
	w.m.events.WithLabelValues("service", event).Inc()
	key := svc.Namespace + "/" + svc.Name
	w.enqueue(key)
	w.note("svc/"+key, svc, event == "delete")
}

func (w *Watcher) onSlice(event string, old, o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	sl, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	w.m.events.WithLabelValues("endpointslice", event).Inc()
	if name := sl.Labels[discoveryv1.LabelServiceName]; name != "" {
		w.enqueue(sl.Namespace + "/" + name)
	}
	if prev, ok := old.(*discoveryv1.EndpointSlice); ok {
		if name := prev.Labels[discoveryv1.LabelServiceName]; name != "" && name != sl.Labels[discoveryv1.LabelServiceName] {
			w.enqueue(prev.Namespace + "/" + name) // the slice moved to another service
		}
	}
	w.note("eps/"+sl.Namespace+"/"+sl.Name, sl, event == "delete")
}

func (w *Watcher) work() {
	for {
		key, quit := w.queue.Get()
		if quit {
			return
		}
		w.mu.Lock()
		gen := w.pending[key]
		w.mu.Unlock()
		w.sync(key)
		w.mu.Lock()
		if w.pending[key] == gen {
			delete(w.pending, key)
		}
		w.mu.Unlock()
		w.queue.Done(key)
	}
}

// sync rebuilds one service from the caches and hands it over if it changed.
func (w *Watcher) sync(key string) {
	ns, name, _ := strings.Cut(key, "/")
	k := model.ServiceKey{Namespace: ns, Name: name}
	o, exists, err := w.svcInf.GetIndexer().GetByKey(key)
	if err != nil {
		w.log.Error("Reading a service from the informer cache", zap.String("service", key), zap.Error(err))
	}
	svc, ok := o.(*corev1.Service)
	if !exists || !ok {
		w.remove(k)
		return
	}
	objs, err := w.sliceInf.GetIndexer().ByIndex(indexService, key)
	if err != nil {
		w.log.Error("Listing endpoint slices from the informer cache", zap.String("service", key), zap.Error(err))
	}
	sls := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			sls = append(sls, sl)
		}
	}
	// Deterministic order (the join's result does not depend on it, but problems are reported in it).
	slices.SortFunc(sls, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	ks, problems, err := Build(svc, sls)
	if err != nil {
		w.m.errors.WithLabelValues("invalid_service").Inc()
		w.log.Error("Service cannot be programmed; removed until it changes (fail closed)", zap.String("service", key),
			zap.Error(err))
		w.remove(k)
		return
	}
	if len(problems) > 0 {
		msg := errors.Join(problems...).Error()
		if w.problems[k] != msg {
			w.m.errors.WithLabelValues("invalid_endpoints").Add(float64(len(problems)))
			w.log.Warn("Endpoints skipped", zap.String("service", key), zap.String("problems", msg))
		}
		w.problems[k] = msg
	} else {
		delete(w.problems, k)
	}
	if prev, ok := w.last[k]; ok && reflect.DeepEqual(prev, ks) {
		return
	}
	w.setGauges(w.last[k], ks)
	w.last[k] = ks
	w.m.updates.WithLabelValues("upsert").Inc()
	w.opts.Sink.UpsertKubeService(ks)
}

func (w *Watcher) remove(k model.ServiceKey) {
	delete(w.problems, k)
	prev, ok := w.last[k]
	if !ok {
		return
	}
	w.setGauges(prev, nil)
	delete(w.last, k)
	w.m.updates.WithLabelValues("remove").Inc()
	w.opts.Sink.RemoveKubeService(k)
}

func (w *Watcher) setGauges(prev, next *model.KubeService) {
	count := func(ks *model.KubeService) (svcs, backends float64) {
		if ks == nil {
			return 0, 0
		}
		for _, p := range ks.Ports {
			backends += float64(len(p.Backends))
		}
		return 1, backends
	}
	ps, pb := count(prev)
	ns, nb := count(next)
	w.m.services.Add(ns - ps)
	w.m.backends.Add(nb - pb)
}
