package services

import (
	"slices"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// memStore is an in-memory collection of one resource that lists and watches the way an API server does
// for a client-go reflector: every change gets the next resource version, a list carries the version it
// reflects, a watch replays the changes after the version it is asked for (or answers "expired" when they
// are no longer kept: the reflector then lists again), and objects labelled
// service.kubernetes.io/service-proxy-name are filtered out as APISource's label selector does (an update
// that adds the label is a deletion for the watcher). It implements cache.ListerWatcher.
type memStore struct {
	mu       sync.Mutex
	rv       uint64
	objs     map[string]runtime.Object
	events   []memEvent // the last maxMemEvents changes
	watchers map[*memWatcher]struct{}
	newList  func([]runtime.Object) runtime.Object
}

type memEvent struct {
	rv uint64
	ev watch.Event
}

const maxMemEvents = 4096

func newMemStore(newList func([]runtime.Object) runtime.Object) *memStore {
	return &memStore{objs: map[string]runtime.Object{}, watchers: map[*memWatcher]struct{}{}, newList: newList}
}

func selected(o runtime.Object) bool {
	m, err := meta.Accessor(o)
	if err != nil {
		return false
	}
	_, other := m.GetLabels()[labelServiceProxyName]
	return !other
}

func withRV(o runtime.Object, rv uint64) runtime.Object {
	o = o.DeepCopyObject()
	if m, err := meta.Accessor(o); err == nil {
		m.SetResourceVersion(strconv.FormatUint(rv, 10))
	}
	return o
}

// keys are the keys ("<ns>/<name>") of the objects watchers see, sorted.
func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, o := range s.objs {
		if selected(o) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// replace makes the store hold exactly next (by key): each object in next is written (a new version),
// the others deleted.
func (s *memStore) replace(next map[string]runtime.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s.rv++
		o := withRV(next[k], s.rv)
		old, had := s.objs[k]
		s.objs[k] = o
		oldSel, newSel := had && selected(old), selected(o)
		switch {
		case oldSel && newSel:
			s.emit(watch.Modified, o)
		case newSel:
			s.emit(watch.Added, o)
		case oldSel:
			s.emit(watch.Deleted, withRV(old, s.rv))
		}
	}
	var gone []string
	for k := range s.objs {
		if _, keep := next[k]; !keep {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	for _, k := range gone {
		s.rv++
		old := s.objs[k]
		delete(s.objs, k)
		if selected(old) {
			s.emit(watch.Deleted, withRV(old, s.rv))
		}
	}
}

// emit records an event and hands it to the watchers (with s.mu held).
func (s *memStore) emit(t watch.EventType, o runtime.Object) {
	e := memEvent{rv: s.rv, ev: watch.Event{Type: t, Object: o}}
	s.events = append(s.events, e)
	if len(s.events) > maxMemEvents {
		s.events = slices.Clone(s.events[len(s.events)-maxMemEvents:])
	}
	for w := range s.watchers {
		w.push(e.ev)
	}
}

// List implements cache.Lister.
func (s *memStore) List(metav1.ListOptions) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.objs))
	for k, o := range s.objs {
		if selected(o) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	items := make([]runtime.Object, 0, len(keys))
	for _, k := range keys {
		items = append(items, s.objs[k].DeepCopyObject())
	}
	l := s.newList(items)
	if lm, err := meta.ListAccessor(l); err == nil {
		lm.SetResourceVersion(strconv.FormatUint(s.rv, 10))
	}
	return l, nil
}

// Watch implements cache.Watcher: the changes after opts.ResourceVersion, then every new one.
func (s *memStore) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.rv
	if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		v, err := strconv.ParseUint(opts.ResourceVersion, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest("resourceVersion " + opts.ResourceVersion)
		}
		from = v
	}
	if from < s.rv && (len(s.events) == 0 || s.events[0].rv > from+1) {
		return nil, apierrors.NewResourceExpired("resourceVersion " + opts.ResourceVersion + " is too old")
	}
	w := newMemWatcher(func(w *memWatcher) {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	})
	for _, e := range s.events {
		if e.rv > from {
			w.push(e.ev)
		}
	}
	s.watchers[w] = struct{}{}
	return w, nil
}

// memWatcher delivers events in order without ever blocking the store (an unbounded queue drained by its
// own goroutine).
type memWatcher struct {
	ch     chan watch.Event
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []watch.Event
	done   bool
	stop   sync.Once
	remove func(*memWatcher)
}

func newMemWatcher(remove func(*memWatcher)) *memWatcher {
	w := &memWatcher{ch: make(chan watch.Event), remove: remove}
	w.cond = sync.NewCond(&w.mu)
	go w.forward()
	return w
}

func (w *memWatcher) push(e watch.Event) {
	w.mu.Lock()
	w.queue = append(w.queue, watch.Event{Type: e.Type, Object: e.Object.DeepCopyObject()})
	w.mu.Unlock()
	w.cond.Signal()
}

func (w *memWatcher) forward() {
	defer close(w.ch)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.done {
			w.cond.Wait()
		}
		if w.done {
			w.mu.Unlock()
			return
		}
		e := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()
		w.ch <- e
	}
}

// ResultChan implements watch.Interface.
func (w *memWatcher) ResultChan() <-chan watch.Event { return w.ch }

// Stop implements watch.Interface.
func (w *memWatcher) Stop() {
	w.stop.Do(func() {
		w.remove(w)
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
		w.cond.Broadcast()
		// Unblock a send in progress.
		go func() {
			for range w.ch { //nolint:revive // drain until forward closes the channel
			}
		}()
	})
}
