package session

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/calico-p4/calico-p4/driver/model"
)

func kubeSvc(name string, backends ...string) *model.KubeService {
	ks := &model.KubeService{Key: model.ServiceKey{Namespace: "x", Name: name}, Type: model.ServiceTypeClusterIP,
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:      []model.KubeServicePort{{Protocol: model.ProtoTCP, Port: 80}}}
	for _, b := range backends {
		ks.Ports[0].Backends = append(ks.Ports[0].Backends, model.Backend{Addr: netip.MustParseAddr(b), Port: 8080, Ready: true, Serving: true})
	}
	return ks
}

func kubeApplied(m *Manager) float64 { return testutil.ToFloat64(m.metrics.kubeApplied) }

// The services watch is a second input of the desired state: its changes are applied through the same
// Applier as Felix's (listed in Changes.KubeServices), and a new Felix session's snapshot keeps them.
func TestServicesWatchChangesAreAppliedAndSurviveAFelixRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.m.UpsertKubeService(kubeSvc("web", "10.65.0.51"))
	c, _ := h.start()
	c.send(t, through(t, "basic.jsonl", "")...)
	calls := h.waitApplies("the in-sync apply", atLeast(1))
	if !calls[0].Changes.Resync || calls[0].Desired.KubeServices.Len() != 1 {
		t.Fatalf("the in-sync apply has %d watch services (resync %v), want the one known before it",
			calls[0].Desired.KubeServices.Len(), calls[0].Changes.Resync)
	}

	// A change from the watch alone triggers an apply that lists it.
	h.m.UpsertKubeService(kubeSvc("web", "10.65.0.51", "10.65.0.52"))
	calls = h.waitApplies("the watch's apply", atLeast(2))
	ch := calls[1].Changes
	if ch.KubeServices.Get(model.ServiceKey{Namespace: "x", Name: "web"}) != model.Updated || ch.Len() != 1 {
		t.Errorf("the watch's apply lists %v, want x/web updated only", ch)
	}

	// Felix restarts: the new snapshot (which never has watch services) does not remove it.
	c2, _ := h.start()
	c2.send(t, through(t, "basic.jsonl", "")...)
	calls = h.waitApplies("the new session's in-sync apply", func(c []RecordedApply) bool {
		return len(c) >= 3 && c[len(c)-1].Changes.Resync && !c[len(c)-1].Pending
	})
	last := calls[len(calls)-1]
	if got := last.Desired.KubeServices.Len(); got != 1 {
		t.Errorf("after a Felix restart the desired state has %d watch services, want 1", got)
	}
	if last.Changes.KubeServices.Len() != 0 {
		t.Errorf("the Felix restart reports watch service changes: %v", last.Changes)
	}

	// Removal.
	h.m.RemoveKubeService(model.ServiceKey{Namespace: "x", Name: "web"})
	calls = h.waitApplies("the removal", atLeast(len(calls)+1))
	if got := calls[len(calls)-1].Changes.KubeServices.Of(model.Removed); len(got) != 1 {
		t.Errorf("removal apply lists %v", calls[len(calls)-1].Changes)
	}
}

// calico_p4_services_applied_revision moves to a synced revision only once an apply covering every change
// before it succeeded; a failing apply holds it back.
func TestServicesAppliedRevisionFollowsSuccessfulApplies(t *testing.T) {
	var fail atomic.Bool
	h := newHarness(t, func(_ int, _ *model.State, _ model.Changes) error {
		if fail.Load() {
			return errors.New("target refuses")
		}
		return nil
	})
	c, _ := h.start()
	c.send(t, through(t, "basic.jsonl", "")...)
	h.waitApplies("the in-sync apply", atLeast(1))

	h.m.UpsertKubeService(kubeSvc("web", "10.65.0.51"))
	h.m.KubeServicesSynced(1)
	waitFor(t, "revision 1 applied", func() bool { return kubeApplied(h.m) == 1 })

	// A revision that changes nothing is reflected at once.
	h.m.UpsertKubeService(kubeSvc("web", "10.65.0.51"))
	h.m.KubeServicesSynced(2)
	waitFor(t, "revision 2 (no change) applied", func() bool { return kubeApplied(h.m) == 2 })

	fail.Store(true)
	n := len(h.rec.Applies())
	h.m.UpsertKubeService(kubeSvc("web", "10.65.0.52"))
	h.m.KubeServicesSynced(3)
	h.waitApplies("the failing apply", atLeast(n+1))
	if got := kubeApplied(h.m); got != 2 {
		t.Errorf("after a failed apply the applied revision is %v, want 2", got)
	}
	fail.Store(false)
	waitFor(t, "revision 3 applied by the retry", func() bool { return kubeApplied(h.m) == 3 })
}

// With a watch configured, the first apply waits for the watch's first sync — so a restarted manager does
// not remove the services it programmed before — but only a bounded time.
func TestFirstApplyWaitsForTheWatchBoundedly(t *testing.T) {
	t.Run("the watch syncs: the first apply has its services", func(t *testing.T) {
		rec := &Recorder{}
		m, err := NewManager(prometheus.NewRegistry(), WithApplier(rec), WithKubeServices(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		h := &harness{t: t, m: m, rec: rec}
		c, _ := h.start()
		c.send(t, through(t, "basic.jsonl", "")...)
		waitFor(t, "the session in sync", func() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.inSync })
		time.Sleep(50 * time.Millisecond) // (only makes an early apply likelier to show)
		if n := len(rec.Applies()); n != 0 {
			t.Fatalf("%d applies before the watch synced", n)
		}
		m.UpsertKubeService(kubeSvc("web", "10.65.0.51"))
		m.KubeServicesSynced(0)
		calls := h.waitApplies("the first apply", atLeast(1))
		if !calls[0].Changes.Resync || calls[0].Desired.KubeServices.Len() != 1 {
			t.Errorf("first apply: resync %v, %d watch services", calls[0].Changes.Resync, calls[0].Desired.KubeServices.Len())
		}
	})
	t.Run("the watch never syncs: applied without it after the wait", func(t *testing.T) {
		rec := &Recorder{}
		m, err := NewManager(prometheus.NewRegistry(), WithApplier(rec), WithKubeServices(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		h := &harness{t: t, m: m, rec: rec}
		c, _ := h.start()
		c.send(t, through(t, "basic.jsonl", "")...)
		calls := h.waitApplies("the first apply", atLeast(1))
		if !calls[0].Changes.Resync {
			t.Errorf("first apply is not the in-sync one: %v", calls[0].Changes)
		}
	})
}

// An invalid service from the watch is rejected (fail closed: the previous version goes too) and counted.
func TestInvalidWatchServiceIsRejectedAndCounted(t *testing.T) {
	h := newHarness(t, nil)
	h.m.UpsertKubeService(kubeSvc("web", "10.65.0.51"))
	bad := kubeSvc("web", "10.65.0.52", "10.65.0.51") // backends out of order
	h.m.UpsertKubeService(bad)
	if h.m.DesiredSnapshot().KubeServices.Len() != 0 {
		t.Error("the invalid version did not remove the service")
	}
	if got := testutil.ToFloat64(h.m.metrics.invalid.WithLabelValues(model.KindKubeService.String())); got != 1 {
		t.Errorf("invalid kube_service count = %v, want 1", got)
	}
}
