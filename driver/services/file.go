package services

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// FileSource feeds the Watcher from a file instead of an API server: it keeps two in-memory stores that
// list and watch like an API server (resource versions, watches resumed from a version, the
// service-proxy-name label selector) equal to the file, and runs the very same Watcher — client-go
// informers, event handlers, the join — on them. When the watch has handed a file revision over completely
// it calls Sink.KubeServicesSynced(revision). For tests and nodes without an API server; production uses
// APISource (--kubeconfig).
type FileSource struct {
	path string
	opts Options
	// Poll is how often the file is checked for changes (default 100 ms).
	Poll time.Duration
}

// NewFileSource returns a source for path (opts.Services and opts.Slices are ignored: the source makes
// its own).
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
	st := &fileState{
		svcs: newMemStore(func(items []runtime.Object) runtime.Object {
			l := &corev1.ServiceList{}
			for _, o := range items {
				l.Items = append(l.Items, *o.(*corev1.Service))
			}
			return l
		}),
		slices: newMemStore(func(items []runtime.Object) runtime.Object {
			l := &discoveryv1.EndpointSliceList{}
			for _, o := range items {
				l.Items = append(l.Items, *o.(*discoveryv1.EndpointSlice))
			}
			return l
		}),
	}
	opts := f.opts
	opts.Services, opts.Slices = st.svcs, st.slices
	w, err := NewWatcher(opts)
	if err != nil {
		return err
	}
	var last []byte
	var rev uint64
	load := func() error {
		data, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			data = []byte("objects: []")
		} else if err != nil {
			return err
		}
		if last != nil && bytes.Equal(data, last) {
			m.loads.WithLabelValues("unchanged").Inc()
			return nil
		}
		last = data // a bad file is not retried until it changes
		fileRev, content, err := ParseFile(data)
		if err != nil {
			return err
		}
		rev = max(fileRev, rev+1)
		st.apply(rev, content)
		m.loads.WithLabelValues("ok").Inc()
		return nil
	}
	loadLogged := func() {
		if err := load(); err != nil {
			m.loads.WithLabelValues("error").Inc()
			m.errors.WithLabelValues("invalid_file").Inc()
			log.Error("Services file does not load; keeping the previous content", zap.String("path", f.path), zap.Error(err))
		}
	}
	loadLogged()
	errc := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- w.Run(wctx) }()
	handed := uint64(0)
	nextLoad := time.Now().Add(f.Poll)
	for {
		if handed != rev && w.caughtUp(st.want()) {
			// The watch has handed the whole revision over.
			handed = rev
			m.revision.Set(float64(rev))
			f.opts.Sink.KubeServicesSynced(rev)
			log.Info("Services file handed over", zap.Uint64("revision", rev), zap.Int("objects", len(st.want())))
		}
		if !time.Now().Before(nextLoad) {
			nextLoad = time.Now().Add(f.Poll)
			loadLogged()
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

// fileState is the file's content as the two stores hold it.
type fileState struct {
	svcs, slices *memStore
	rev          string
}

// want is what the watch must have seen to have caught up: every object the stores serve (the label
// selector leaves another service proxy's out), at the current revision.
func (s *fileState) want() map[string]string {
	out := map[string]string{}
	for _, k := range s.svcs.keys() {
		out["svc/"+k] = s.rev
	}
	for _, k := range s.slices.keys() {
		out["eps/"+k] = s.rev
	}
	return out
}

// apply makes the stores hold exactly content, every object stamped with the revision.
func (s *fileState) apply(rev uint64, content *FileContent) {
	s.rev = strconv.FormatUint(rev, 10)
	stamp := func(m *metav1.ObjectMeta) {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[AnnotationRevision] = s.rev
	}
	svcs := map[string]runtime.Object{}
	for _, o := range content.Services {
		o = o.DeepCopy()
		stamp(&o.ObjectMeta)
		svcs[o.Namespace+"/"+o.Name] = o
	}
	sls := map[string]runtime.Object{}
	for _, o := range content.Slices {
		o = o.DeepCopy()
		stamp(&o.ObjectMeta)
		sls[o.Namespace+"/"+o.Name] = o
	}
	s.svcs.replace(svcs)
	s.slices.replace(sls)
}
