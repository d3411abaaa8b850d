package services

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// AnnotationRevision is set by FileSource on every object it writes: the file revision the object
// belongs to (how it knows the watch has caught up with a file).
const AnnotationRevision = "calico-p4.projectcalico.org/services-file-revision"

// File is the services file: Kubernetes Services and EndpointSlices as the API server would hold them.
//
//	revision: 3            # increases with every change; the manager exports the last applied one
//	objects:
//	- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: x}, spec: {...}, status: {...}}
//	- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: web-1, namespace: x,
//	   labels: {kubernetes.io/service-name: web}}, addressType: IPv4, endpoints: [...], ports: [...]}
type File struct {
	Revision uint64            `json:"revision"`
	Objects  []json.RawMessage `json:"objects"`
}

// FileContent are the objects of a services file.
type FileContent struct {
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
}

// ParseFile decodes a services file (YAML or JSON).
func ParseFile(data []byte) (uint64, *FileContent, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return 0, nil, fmt.Errorf("services file: %w", err)
	}
	c := &FileContent{}
	for i, raw := range f.Objects {
		var tm metav1.TypeMeta
		if err := json.Unmarshal(raw, &tm); err != nil {
			return 0, nil, fmt.Errorf("services file: objects[%d]: %w", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		switch {
		case tm.Kind == "Service" && tm.APIVersion == "v1":
			var s corev1.Service
			if err := dec.Decode(&s); err != nil {
				return 0, nil, fmt.Errorf("services file: objects[%d] (Service): %w", i, err)
			}
			c.Services = append(c.Services, &s)
		case tm.Kind == "EndpointSlice" && tm.APIVersion == "discovery.k8s.io/v1":
			var s discoveryv1.EndpointSlice
			if err := dec.Decode(&s); err != nil {
				return 0, nil, fmt.Errorf("services file: objects[%d] (EndpointSlice): %w", i, err)
			}
			c.Slices = append(c.Slices, &s)
		default:
			return 0, nil, fmt.Errorf("services file: objects[%d]: %s %s is not a v1 Service or a discovery.k8s.io/v1 EndpointSlice",
				i, tm.APIVersion, tm.Kind)
		}
	}
	for _, s := range c.Services {
		if s.Name == "" || s.Namespace == "" {
			return 0, nil, errors.New("services file: a Service without a name or namespace")
		}
	}
	for _, s := range c.Slices {
		if s.Name == "" || s.Namespace == "" {
			return 0, nil, errors.New("services file: an EndpointSlice without a name or namespace")
		}
	}
	return f.Revision, c, nil
}

// FileSource feeds the Watcher from a file instead of an API server: it keeps client-go's fake clientset
// equal to the file (creates, updates and deletes objects when the file changes) and runs the very same
// Watcher — informers, event handlers, the join — against it. When the watch has handed over a file
// revision completely it calls Sink.KubeServicesSynced(revision). For tests and nodes without an API
// server; production uses a real clientset (--kubeconfig).
type FileSource struct {
	path string
	opts Options
	// Poll is how often the file is checked for changes (default 100 ms).
	Poll time.Duration
}

// NewFileSource returns a source for path (opts.Client is ignored: the source makes its own).
func NewFileSource(path string, opts Options) (*FileSource, error) {
	if opts.Sink == nil {
		return nil, errors.New("services: a file source needs a sink")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	return &FileSource{path: path, opts: opts, Poll: 100 * time.Millisecond}, nil
}

// Run follows the file until ctx ends. A file that does not exist yet is an empty one; a file that does not
// parse is logged and counted, and the previous content stays.
func (f *FileSource) Run(ctx context.Context) error {
	log, m := f.opts.Logger, f.opts.Metrics
	cs := fake.NewClientset()
	// Informers list, then watch; the fake clientset's watch only sees changes made after it exists, so
	// changes are made only once both watches are registered (tracker watches made here, then signalled).
	var mu sync.Mutex
	started := map[string]bool{}
	startedC := make(chan struct{})
	cs.PrependWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		gvr := action.GetResource()
		w, err := cs.Tracker().Watch(gvr, action.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		mu.Lock()
		if !started[gvr.Resource] {
			started[gvr.Resource] = true
			if started["services"] && started["endpointslices"] {
				close(startedC)
			}
		}
		mu.Unlock()
		return true, w, nil
	})
	opts := f.opts
	opts.Client = cs
	w, err := NewWatcher(opts)
	if err != nil {
		return err
	}
	st := &fileState{cs: cs, have: map[string]runtime.Object{}}
	var last []byte
	var rev uint64
	load := func() (bool, error) {
		data, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			data = []byte("objects: []")
		} else if err != nil {
			return false, err
		}
		if last != nil && bytes.Equal(data, last) {
			m.loads.WithLabelValues("unchanged").Inc()
			return false, nil
		}
		fileRev, content, err := ParseFile(data)
		if err != nil {
			last = data // not retried until it changes
			return false, err
		}
		last = data
		if fileRev <= rev {
			fileRev = rev + 1
		}
		rev = fileRev
		if err := st.apply(ctx, rev, content); err != nil {
			return false, err
		}
		m.loads.WithLabelValues("ok").Inc()
		return true, nil
	}
	if _, err := load(); err != nil {
		m.loads.WithLabelValues("error").Inc()
		m.errors.WithLabelValues("invalid_file").Inc()
		log.Error("Services file", zap.String("path", f.path), zap.Error(err))
	}
	errc := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- w.Run(wctx) }()
	select {
	case <-startedC:
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
	handed := uint64(0)
	nextLoad := time.Now().Add(f.Poll)
	for {
		if handed != rev && w.caughtUp(st.want()) {
			// The watch has handed the whole revision over.
			handed = rev
			m.revision.Set(float64(rev))
			f.opts.Sink.KubeServicesSynced(rev)
			log.Info("Services file handed over", zap.Uint64("revision", rev), zap.Int("objects", len(st.have)))
		}
		if !time.Now().Before(nextLoad) {
			nextLoad = time.Now().Add(f.Poll)
			if _, err := load(); err != nil {
				m.loads.WithLabelValues("error").Inc()
				m.errors.WithLabelValues("invalid_file").Inc()
				log.Error("Services file; keeping the previous content", zap.String("path", f.path), zap.Error(err))
			}
		}
		wait := time.Until(nextLoad)
		if handed != rev {
			wait = min(wait, 5*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-time.After(wait):
		}
	}
}

// fileState is what the source has written to the fake clientset.
type fileState struct {
	cs   *fake.Clientset
	have map[string]runtime.Object // by object key ("svc/<ns>/<name>", "eps/<ns>/<name>")
	rev  string
}

// want is what the watch must have seen to have caught up: every object, except those its label selector
// leaves out (another service proxy's).
func (s *fileState) want() map[string]string {
	out := make(map[string]string, len(s.have))
	for k, o := range s.have {
		if m, ok := o.(metav1.Object); ok {
			if _, other := m.GetLabels()[labelServiceProxyName]; other {
				continue
			}
		}
		out[k] = s.rev
	}
	return out
}

// apply makes the fake clientset hold exactly content, every object stamped with the revision.
func (s *fileState) apply(ctx context.Context, rev uint64, content *FileContent) error {
	s.rev = strconv.FormatUint(rev, 10)
	next := map[string]runtime.Object{}
	stamp := func(m *metav1.ObjectMeta) {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[AnnotationRevision] = s.rev
		m.ResourceVersion = ""
	}
	for _, o := range content.Services {
		o = o.DeepCopy()
		stamp(&o.ObjectMeta)
		next["svc/"+o.Namespace+"/"+o.Name] = o
	}
	for _, o := range content.Slices {
		o = o.DeepCopy()
		stamp(&o.ObjectMeta)
		next["eps/"+o.Namespace+"/"+o.Name] = o
	}
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		_, exists := s.have[k]
		var err error
		switch o := next[k].(type) {
		case *corev1.Service:
			c := s.cs.CoreV1().Services(o.Namespace)
			if exists {
				_, err = c.Update(ctx, o, metav1.UpdateOptions{})
			} else {
				_, err = c.Create(ctx, o, metav1.CreateOptions{})
			}
		case *discoveryv1.EndpointSlice:
			c := s.cs.DiscoveryV1().EndpointSlices(o.Namespace)
			if exists {
				_, err = c.Update(ctx, o, metav1.UpdateOptions{})
			} else {
				_, err = c.Create(ctx, o, metav1.CreateOptions{})
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		s.have[k] = next[k]
	}
	for k, o := range s.have {
		if _, keep := next[k]; keep {
			continue
		}
		var err error
		switch o := o.(type) {
		case *corev1.Service:
			err = s.cs.CoreV1().Services(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})
		case *discoveryv1.EndpointSlice:
			err = s.cs.DiscoveryV1().EndpointSlices(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		delete(s.have, k)
	}
	return errors.Join(errs...)
}
