package session

import (
	"time"

	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/driver/model"
)

// The desired state's second input: Services with their backends from the manager's own Kubernetes
// watch (driver/services, which calls these methods as its Sink). They change the live desired state
// directly — in every session phase, since they are not Felix's — and wake the current session, whose
// loop applies them like Felix's changes (coalesced, through the same Applier). A new Felix session's
// snapshot does not replace them (model.State.Replace leaves KubeServices alone).

// WithKubeServices says a Kubernetes services watch feeds the manager: applies wait for its first synced
// mark (so a restarted manager does not remove the services it programmed before the watch has listed
// them again), but at most wait after a session reaches in-sync; after that the dataplane is programmed
// without the services not yet known, and a warning says so.
func WithKubeServices(wait time.Duration) Option {
	return func(m *Manager) {
		m.kube.expected = true
		m.kube.wait = wait
	}
}

// kubeState is the manager's record of the watch (guarded by Manager.mu).
type kubeState struct {
	expected bool
	wait     time.Duration
	synced   bool
	// gen counts the watch's changes to the desired state; barriers are the synced revisions with the gen
	// they follow. A revision is applied once an apply that started at or after its gen succeeded.
	gen      uint64
	barriers []kubeBarrier
	applied  uint64 // the last revision the dataplane reflects
	// gateUntil: when a session in sync stops waiting for the first synced mark (zero: not started).
	gateUntil time.Time
	gateTimer *time.Timer
	gateLog   bool // the "waiting" / "giving up" lines were logged
}

type kubeBarrier struct {
	rev uint64
	gen uint64
}

// UpsertKubeService stores a service of the watch (services.Sink). An invalid one is rejected (and any
// previous version removed: fail closed), counted and logged.
func (m *Manager) UpsertKubeService(ks *model.KubeService) {
	m.mu.Lock()
	err := m.live.SetKubeService(ks)
	m.kube.gen++
	m.mu.Unlock()
	if err != nil {
		m.metrics.invalid.WithLabelValues(model.KindKubeService.String()).Inc()
		m.log.Error("Invalid service from the Kubernetes watch; not programmed", zap.Error(err))
	}
	m.poke()
}

// RemoveKubeService removes a service of the watch (services.Sink).
func (m *Manager) RemoveKubeService(k model.ServiceKey) {
	m.mu.Lock()
	m.live.RemoveKubeService(k)
	m.kube.gen++
	m.mu.Unlock()
	m.poke()
}

// KubeServicesSynced records that the watch has handed over everything up to revision (services.Sink).
func (m *Manager) KubeServicesSynced(revision uint64) {
	m.mu.Lock()
	first := !m.kube.synced
	m.kube.synced = true
	m.kube.barriers = append(m.kube.barriers, kubeBarrier{rev: revision, gen: m.kube.gen})
	if m.kube.gateTimer != nil {
		m.kube.gateTimer.Stop()
		m.kube.gateTimer = nil
	}
	m.mu.Unlock()
	if first {
		m.log.Info("Kubernetes services watch in sync", zap.Uint64("revision", revision))
	}
	m.poke()
}

// poke wakes the current session's loop (never blocks).
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// kubeGate reports whether an apply must wait for the watch's first synced mark (called by the session
// loop with the desired state unlocked).
func (m *Manager) kubeGate() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := &m.kube
	if !k.expected || k.synced {
		return false
	}
	now := time.Now()
	if k.gateUntil.IsZero() {
		k.gateUntil = now.Add(k.wait)
		k.gateTimer = time.AfterFunc(k.wait, m.poke)
	}
	if now.Before(k.gateUntil) {
		if !k.gateLog {
			k.gateLog = true
			m.log.Info("Waiting for the Kubernetes services watch before programming", zap.Duration("atMost", k.wait))
		}
		return true
	}
	if k.gateLog {
		k.gateLog = false
		m.log.Warn("The Kubernetes services watch has not synced: programming without the services it has not listed yet",
			zap.Duration("waited", k.wait))
	}
	return false
}

// kubeApplied records that an apply that started at watch generation gen succeeded.
func (m *Manager) kubeApplied(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := &m.kube
	n := 0
	for _, b := range k.barriers {
		if b.gen <= gen {
			k.applied = max(k.applied, b.rev)
			continue
		}
		k.barriers[n] = b
		n++
	}
	k.barriers = k.barriers[:n]
	m.metrics.kubeApplied.Set(float64(k.applied))
}

// kubeGen is the watch's generation (with the desired state locked).
func (m *Manager) kubeGenLocked() uint64 { return m.kube.gen }
