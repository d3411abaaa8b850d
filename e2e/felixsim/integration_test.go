package felixsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/projectcalico/calico/felix/proto"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/e2e/felixsim"
)

// hangGuard bounds waits; it is never a timing assertion.
const hangGuard = 60 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds calico-p4-driver and calico-p4-manager once per test binary.
func binaries(t *testing.T) (driver, manager string) {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		binDir, buildErr = os.MkdirTemp("", "cp4-bin")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/calico-p4-driver", "./cmd/calico-p4-manager")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "calico-p4-driver"), filepath.Join(binDir, "calico-p4-manager")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type managerProc struct {
	cmd     *exec.Cmd
	listen  string
	metrics string
	log     *syncBuffer
	exited  chan struct{}
}

// startManager runs the real manager binary on a temp unix socket (or with extra args) and a free
// metrics port, in test mode (recording applier).
func startManager(t *testing.T, manager string, extra ...string) *managerProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "cp4") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	args := []string{"--listen", "unix://" + filepath.Join(dir, "felix.sock"), "--metrics-listen", "127.0.0.1:0",
		"--addr-file", filepath.Join(dir, "addr.json"), "--target", "record", "--log-format", "console", "--log-level", "debug", "--cni-listen", ""}
	args = append(args, extra...)
	p := &managerProc{cmd: exec.Command(manager, args...), log: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("manager log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(hangGuard)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "addr.json"))
		if err == nil {
			var a map[string]string
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			p.listen, p.metrics = a["listen"], a["metrics"]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("manager exited:\n%s", p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager did not start:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *managerProc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.metrics + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of one series from /metrics ("name{labels}"), or -1 when absent.
func (p *managerProc) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := p.get(t, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

func (p *managerProc) sumMetric(t *testing.T, name string) float64 {
	t.Helper()
	_, body := p.get(t, "/metrics")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			f, _ := strconv.ParseFloat(m[2], 64)
			sum += f
		}
	}
	return sum
}

type applySummary struct {
	Changes string         `json:"changes"`
	Resync  bool           `json:"resync"`
	Objects map[string]int `json:"objects"`
}

func (p *managerProc) applies(t *testing.T) []applySummary {
	t.Helper()
	_, body := p.get(t, "/debug/applies")
	var out []applySummary
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("/debug/applies: %v: %s", err, body)
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startDriver(t *testing.T, driver string, env ...string) (*felixsim.Driver, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	d, err := felixsim.Start(driver, felixsim.Options{Env: append(os.Environ(), env...), Stdout: log, Stderr: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = d.Stop(time.Second)
		if t.Failed() {
			t.Logf("driver %d log:\n%s", d.PID(), log.String())
		}
	})
	return d, log
}

func replay(t *testing.T, d *felixsim.Driver, capture string) *felixsim.Stream {
	t.Helper()
	s, err := felixsim.LoadStream(felixsim.CapturePath(capture))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := felixsim.Replay(ctx, d, s, felixsim.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// statuses folds endpoint status replies into workload/host id → last status ("remove" for removals).
func statuses(replies []*proto.FromDataplane) map[string]string {
	out := map[string]string{}
	for _, r := range replies {
		switch {
		case r.GetWorkloadEndpointStatusUpdate() != nil:
			u := r.GetWorkloadEndpointStatusUpdate()
			out[u.Id.WorkloadId] = u.Status.Status
		case r.GetWorkloadEndpointStatusRemove() != nil:
			out[r.GetWorkloadEndpointStatusRemove().Id.WorkloadId] = "remove"
		case r.GetHostEndpointStatusUpdate() != nil:
			u := r.GetHostEndpointStatusUpdate()
			out["hep:"+u.Id.EndpointId] = u.Status.Status
		case r.GetHostEndpointStatusRemove() != nil:
			out["hep:"+r.GetHostEndpointStatusRemove().Id.EndpointId] = "remove"
		}
	}
	return out
}

func waitReplies(t *testing.T, d *felixsim.Driver, what string, cond func([]*proto.FromDataplane) bool) []*proto.FromDataplane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r, err := d.WaitReplies(ctx, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return r
}

func TestRealDriverRelaysToARealManagerAcrossFelixRestarts(t *testing.T) {
	driver, manager := binaries(t)
	m := startManager(t, manager)
	env := "CALICO_P4_MANAGER=" + m.listen

	// Felix #1: the basic-resync snapshot (3 workloads and a host endpoint).
	d1, _ := startDriver(t, driver, env)
	replay(t, d1, "basic-resync.jsonl")
	waitReplies(t, d1, "up statuses and a heartbeat", func(r []*proto.FromDataplane) bool {
		s := statuses(r)
		heartbeat := false
		for _, x := range r {
			heartbeat = heartbeat || x.GetProcessStatusUpdate() != nil
		}
		return heartbeat && s["default/frontend-1"] == "up" && s["default/frontend-2"] == "up" &&
			s["default/backend-1"] == "up" && s["hep:node1-eth0"] == "up"
	})
	waitUntil(t, "ready", func() bool { code, _ := m.get(t, "/readyz"); return code == 200 })

	// Killing the driver (as if Felix died hard) leaves the manager running and ready.
	if err := d1.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d1.Exited()
	waitUntil(t, "session closed", func() bool { return m.metric(t, `calico_p4_session_state{state="closed"}`) == 1 })
	if code, _ := m.get(t, "/livez"); code != 200 {
		t.Fatalf("livez %d after the driver died", code)
	}
	if code, body := m.get(t, "/readyz"); code != 200 {
		t.Fatalf("readyz %d (%s) after the driver died", code, body)
	}

	// Felix #2 (a restart onto the Kubernetes-datastore capture): its InSync sweeps the old endpoints.
	d2, _ := startDriver(t, driver, env)
	replay(t, d2, "k8s-services.jsonl")
	waitReplies(t, d2, "new pods up, old endpoints removed", func(r []*proto.FromDataplane) bool {
		s := statuses(r)
		return s["default/frontend-1"] == "remove" && s["hep:node1-eth0"] == "remove" && s["svc/client"] == "up"
	})
	applies := m.applies(t)
	resyncs := 0
	for _, a := range applies {
		if a.Resync {
			resyncs++
		}
	}
	if resyncs != 2 {
		t.Errorf("%d in-sync hand-overs recorded, want 2: %+v", resyncs, applies)
	}

	// Felix #3 and #4: the other two captures, so that all four pass through the real binaries. Each Felix
	// is stopped as Felix stops it (SIGTERM) once its messages have arrived.
	if code, err := d2.Stop(4 * time.Second); err != nil || code != 0 {
		t.Fatalf("driver 2 exited %d (%v) after SIGTERM", code, err)
	}
	for _, c := range []string{"calico-tiers.jsonl", "basic.jsonl"} {
		before := m.sumMetric(t, "calico_p4_felix_messages_total")
		d, _ := startDriver(t, driver, env)
		s := replay(t, d, c)
		waitUntil(t, c+" relayed", func() bool {
			return m.sumMetric(t, "calico_p4_felix_messages_total") == before+float64(len(s.Messages()))
		})
		if code, err := d.Stop(4 * time.Second); err != nil || code != 0 {
			t.Fatalf("%s: driver exited %d (%v) after SIGTERM", c, code, err)
		}
	}

	// Metrics: every message of the four captures counted, none invalid, none unknown.
	total := 0
	perType := map[string]float64{}
	for _, c := range []string{"basic-resync.jsonl", "k8s-services.jsonl", "calico-tiers.jsonl", "basic.jsonl"} {
		s, _ := felixsim.LoadStream(felixsim.CapturePath(c))
		total += len(s.Messages())
		for _, msg := range s.Messages() {
			perType[model.PayloadName(msg)]++
		}
	}
	waitUntil(t, "all messages counted", func() bool { return m.sumMetric(t, "calico_p4_felix_messages_total") == float64(total) })
	if n := m.sumMetric(t, "calico_p4_model_invalid_objects_total"); n != 0 {
		t.Errorf("%v invalid objects", n)
	}
	if n := m.sumMetric(t, "calico_p4_felix_unknown_payloads_total"); n != 0 {
		t.Errorf("%v unknown payloads", n)
	}
	if n := m.metric(t, "calico_p4_sessions_total"); n != 4 {
		t.Errorf("sessions_total = %v, want 4", n)
	}
	for typ, want := range perType {
		if n := m.metric(t, `calico_p4_felix_messages_total{type="`+typ+`"}`); n != want {
			t.Errorf("messages of type %s = %v, want %v", typ, n, want)
		}
	}
	if n := m.metric(t, `calico_p4_model_invalid_objects_total{kind="policy"}`); n != 0 {
		t.Errorf(`invalid{kind="policy"} = %v, want a zero series`, n)
	}
}

func TestSIGTERMDrainsWhatIsAlreadyInThePipe(t *testing.T) {
	driver, manager := binaries(t)
	m := startManager(t, manager)
	d, _ := startDriver(t, driver, "CALICO_P4_MANAGER="+m.listen)
	s, _ := felixsim.LoadStream(felixsim.CapturePath("calico-tiers.jsonl"))
	// The driver is up (its SIGTERM handler installed) once its session exists.
	waitUntil(t, "session", func() bool { return m.metric(t, "calico_p4_sessions_total") == 1 })
	// Write the whole stream, then SIGTERM at once: everything written must still reach the manager.
	if err := d.Send(s.Messages()...); err != nil {
		t.Fatal(err)
	}
	if err := d.Terminate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	code, err := d.Wait(ctx)
	if err != nil || code != 0 {
		t.Fatalf("driver exit %d, %v", code, err)
	}
	waitUntil(t, "all messages relayed", func() bool {
		return m.sumMetric(t, "calico_p4_felix_messages_total") == float64(len(s.Messages()))
	})
}

func TestFramingErrorEndsTheSessionButNotTheManager(t *testing.T) {
	driver, manager := binaries(t)
	m := startManager(t, manager)
	env := "CALICO_P4_MANAGER=" + m.listen
	d, log := startDriver(t, driver, env)
	replay(t, d, "basic-resync.jsonl")
	waitUntil(t, "ready", func() bool { code, _ := m.get(t, "/readyz"); return code == 200 })
	before := m.applies(t)

	// A length prefix over 64 MiB.
	if err := d.SendRaw([]byte{0, 0, 0, 0x10, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	code, err := d.Wait(ctx)
	if err != nil || code == 0 {
		t.Fatalf("driver exit %d (%v), want non-zero", code, err)
	}
	if !strings.Contains(log.String(), "calico-p4-driver: framing error on fd 3 (oversized)") {
		t.Errorf("no one-line reason in the driver's output:\n%s", log.String())
	}
	waitUntil(t, "framing error counted", func() bool {
		return m.metric(t, `calico_p4_framing_errors_total{reason="driver"}`) == 1
	})
	if code, _ := m.get(t, "/readyz"); code != 200 {
		t.Error("manager not ready after a session's framing error")
	}
	if after := m.applies(t); len(after) != len(before) {
		t.Errorf("the dataplane was touched after the framing error: %d → %d applies", len(before), len(after))
	}

	// The next Felix gets a working session.
	d2, _ := startDriver(t, driver, env)
	replay(t, d2, "basic-resync.jsonl")
	waitReplies(t, d2, "statuses from the new session", func(r []*proto.FromDataplane) bool {
		return statuses(r)["default/frontend-1"] == "up"
	})
}

func TestDriverGivesUpWithOneLineWhenTheManagerIsAbsent(t *testing.T) {
	driver, _ := binaries(t)
	dir, err := os.MkdirTemp("", "cp4")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d, log := startDriver(t, driver, "CALICO_P4_MANAGER=unix://"+filepath.Join(dir, "absent.sock"),
		"CALICO_P4_CONNECT_TIMEOUT=1s")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	code, err := d.Wait(ctx)
	if err != nil || code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		last = l
	}
	if !strings.HasPrefix(last, "calico-p4-driver: cannot reach calico-p4-manager at unix://") ||
		!strings.Contains(last, "after 1s") {
		t.Errorf("last line %q is not the one-line reason", last)
	}
}

func TestManagerReplacesTheSessionWhenASecondDriverConnects(t *testing.T) {
	driver, manager := binaries(t)
	m := startManager(t, manager)
	env := "CALICO_P4_MANAGER=" + m.listen
	d1, _ := startDriver(t, driver, env)
	replay(t, d1, "basic-resync.jsonl")
	waitUntil(t, "ready", func() bool { code, _ := m.get(t, "/readyz"); return code == 200 })
	d2, _ := startDriver(t, driver, env)
	replay(t, d2, "basic-resync.jsonl")
	// The replaced driver loses its session and exits non-zero (its Felix would restart).
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if code, err := d1.Wait(ctx); err != nil || code == 0 {
		t.Fatalf("replaced driver exit %d (%v), want non-zero", code, err)
	}
	waitReplies(t, d2, "statuses for the new session", func(r []*proto.FromDataplane) bool {
		return statuses(r)["default/backend-1"] == "up"
	})
	// Same snapshot: the second hand-over changes nothing but the config's source map.
	waitUntil(t, "two hand-overs", func() bool {
		n := 0
		for _, a := range m.applies(t) {
			if a.Resync {
				n++
			}
		}
		return n == 2
	})
	applies := m.applies(t)
	if last := applies[len(applies)-1]; last.Changes != "resync none" {
		t.Errorf("identical snapshot produced changes: %q", last.Changes)
	}
}

func TestFelixClosingThePipeEndsTheDriverCleanlyAndTheManagerStopsOnSIGTERM(t *testing.T) {
	driver, manager := binaries(t)
	m := startManager(t, manager)
	d, _ := startDriver(t, driver, "CALICO_P4_MANAGER="+m.listen)
	s := replay(t, d, "basic-resync.jsonl")
	waitUntil(t, "relayed", func() bool {
		return m.sumMetric(t, "calico_p4_felix_messages_total") == float64(len(s.Messages()))
	})
	if err := d.CloseInput(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if code, err := d.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("driver exit %d (%v) after Felix closed fd 3, want 0", code, err)
	}
	waitUntil(t, "goodbye logged", func() bool { return strings.Contains(m.log.String(), "felix closed the pipe") })

	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.exited:
	case <-time.After(hangGuard):
		t.Fatal("manager did not stop on SIGTERM")
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("manager exit %d after SIGTERM", code)
	}
}
