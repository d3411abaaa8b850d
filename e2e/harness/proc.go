package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/vishvananda/netns"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// Binary names the harness runs.
const (
	ManagerBin    = "calico-p4-manager"
	DriverBin     = "calico-p4-driver"
	SoftswitchBin = "calico-p4-softswitch"
	CtlBin        = "calico-p4ctl"
)

// BinEnv names the directory holding the built binaries (the Makefile's e2e-test target sets it to bin/).
const BinEnv = "CALICO_P4_BIN"

// Binaries is a directory of calico-p4 binaries.
type Binaries struct{ Dir string }

// Path returns the path of a binary.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// FindBinaries returns $CALICO_P4_BIN if it holds the binaries the harness runs, else builds them into a
// temporary directory (removed by the returned cleanup).
func FindBinaries() (Binaries, func(), error) {
	if dir := os.Getenv(BinEnv); dir != "" {
		b := Binaries{Dir: dir}
		for _, n := range []string{ManagerBin, DriverBin, SoftswitchBin, CtlBin} {
			if _, err := os.Stat(b.Path(n)); err != nil {
				return Binaries{}, nil, fmt.Errorf("%s=%s: %w (run make build)", BinEnv, dir, err)
			}
		}
		return b, func() {}, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir, err := os.MkdirTemp("", "cp4-bin")
	if err != nil {
		return Binaries{}, nil, err
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/"+ManagerBin, "./cmd/"+DriverBin, "./cmd/"+SoftswitchBin, "./cmd/"+CtlBin)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return Binaries{}, nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return Binaries{Dir: dir}, func() { os.RemoveAll(dir) }, nil
}

// logBuffer keeps a process's output (bounded: the last MaxLog bytes).
type logBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

// MaxLog bounds the output kept per process.
const MaxLog = 4 << 20

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if l.b.Len() > l.max {
		keep := l.b.Bytes()[l.b.Len()-l.max/2:]
		l.b = *bytes.NewBuffer(append([]byte("…(earlier output dropped)\n"), keep...))
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Process is a child process started inside a network namespace.
type Process struct {
	Name   string
	NetNS  string // namespace path ("" = this process's)
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
	err    error
}

// startIn starts bin with args on a thread switched into the namespace at nsPath, so the child (and
// everything it opens) lives there. Its output is kept (Log) and, if tee is set, copied there.
func startIn(nsPath, name, bin string, args []string, tee io.Writer) (*Process, error) {
	p := &Process{Name: name, NetNS: nsPath, log: &logBuffer{max: MaxLog}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	var out io.Writer = p.log
	if tee != nil {
		out = io.MultiWriter(p.log, tee)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	// The child must not outlive a harness that dies without cleaning up. The death signal follows the
	// thread that forked the child, so that thread stays alive (waiting for the child) as long as the
	// child runs.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread may be in another namespace
		if nsPath != "" {
			h, err := netns.GetFromPath(nsPath)
			if err == nil {
				err = netns.Set(h)
				h.Close()
			}
			if err != nil {
				started <- fmt.Errorf("enter netns %s: %w", nsPath, err)
				return
			}
		}
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// PID of the process.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log returns the process's output so far.
func (p *Process) Log() string { return p.log.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL; it returns the exit error (nil for exit 0).
func (p *Process) Stop(grace time.Duration) error {
	if p.Alive() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	return p.err
}

// Kill ends the process at once (what a crash looks like).
func (p *Process) Kill() {
	if p.Alive() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// waitFile waits for a JSON file a process writes after binding (its --addr-file), or its exit.
func (p *Process) waitFile(ctx context.Context, path string, into any) error {
	for {
		if b, err := os.ReadFile(path); err == nil {
			return json.Unmarshal(b, into)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before writing %s: %v\n%s", p.Name, filepath.Base(path), p.err, tail(p.Log(), 4000))
		case <-ctx.Done():
			return fmt.Errorf("%s did not write %s: %w\n%s", p.Name, filepath.Base(path), ctx.Err(), tail(p.Log(), 4000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitSocket waits until a unix socket accepts connections.
func (p *Process) waitSocket(ctx context.Context, path string) error {
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before serving %s: %v\n%s", p.Name, path, p.err, tail(p.Log(), 4000))
		case <-ctx.Done():
			return fmt.Errorf("%s does not serve %s: %w\n%s", p.Name, path, ctx.Err(), tail(p.Log(), 4000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// HTTPClient is an HTTP client whose TCP connections are made inside a network namespace (for the
// manager's metrics and ctl API, which listen on the node namespace's loopback), or over a unix socket.
type HTTPClient struct {
	base string
	c    *http.Client
}

// NewHTTPClient returns a client for addr ("host:port" reached from inside nsPath, or "unix:///path").
func NewHTTPClient(nsPath, addr string) *HTTPClient {
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://" + addr
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		base = "http://unix"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	} else if nsPath != "" {
		tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			var c net.Conn
			err := netnsutil.DoPath(nsPath, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, a)
				return err
			})
			return c, err
		}
	}
	return &HTTPClient{base: base, c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Do sends a request with an optional JSON body and returns the response body; a status ≥ 300 is an error.
func (h *HTTPClient) Do(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return b, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// Get is Do(GET).
func (h *HTTPClient) Get(ctx context.Context, path string) ([]byte, error) {
	return h.Do(ctx, http.MethodGet, path, nil)
}

// Metrics are parsed Prometheus metric families.
type Metrics map[string]*dto.MetricFamily

// Scrape reads /metrics.
func (h *HTTPClient) Scrape(ctx context.Context) (Metrics, error) {
	b, err := h.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return mfs, nil
}

// Sum adds the values of every series of a counter or gauge whose labels include the given pairs
// ("label", "value", …). A missing family sums to 0.
func (m Metrics) Sum(name string, labels ...string) float64 {
	mf, ok := m[name]
	if !ok {
		return 0
	}
	var n float64
	for _, s := range mf.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			n += s.Counter.GetValue()
		case s.Gauge != nil:
			n += s.Gauge.GetValue()
		case s.Untyped != nil:
			n += s.Untyped.GetValue()
		}
	}
	return n
}

// Has reports whether the family exists.
func (m Metrics) Has(name string) bool { _, ok := m[name]; return ok }

// ByLabel returns the value of each series of a family keyed by one label's value.
func (m Metrics) ByLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	mf, ok := m[name]
	if !ok {
		return out
	}
	for _, s := range mf.GetMetric() {
		var key string
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		switch {
		case s.Counter != nil:
			out[key] += s.Counter.GetValue()
		case s.Gauge != nil:
			out[key] += s.Gauge.GetValue()
		case s.Untyped != nil:
			out[key] += s.Untyped.GetValue()
		}
	}
	return out
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// errStopped is returned by waits when the process being waited on has exited.
var errStopped = errors.New("process exited")

// RunIn runs a short command inside the namespace at nsPath and returns its combined output.
func RunIn(ctx context.Context, nsPath, bin string, args ...string) ([]byte, error) {
	var out []byte
	err := netnsutil.DoPath(nsPath, func() error {
		var err error
		out, err = exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return err
	})
	return out, err
}
