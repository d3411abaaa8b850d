package session

import (
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/driver/model"
)

// The desired state's third input: pod interfaces (host interface name → pod MAC) from the manager's CNI
// server (driver/cni, which calls these methods as its Sink). Like the services watch's changes they
// change the live desired state directly, in every session phase, and wake the current session, whose
// loop applies them through the same Applier. A pod's MAC is a new fact that an endpoint in error may be
// waiting for, so it also cuts short a failed apply's retry delay.

// SetPodInterface stores the pod interface the CNI server created (cni.Sink). An invalid one is rejected
// (and any previous version removed: fail closed), counted and logged.
func (m *Manager) SetPodInterface(p *model.PodInterface) {
	m.mu.Lock()
	err := m.live.SetPodInterface(p)
	m.podRetry = true
	m.mu.Unlock()
	if err != nil {
		m.metrics.invalid.WithLabelValues(model.KindPodInterface.String()).Inc()
		m.log.Error("Invalid pod interface from the CNI server; its MAC is not used", zap.Error(err))
	}
	m.poke()
}

// RemovePodInterface forgets a pod interface the CNI server deleted (cni.Sink).
func (m *Manager) RemovePodInterface(hostInterface string) {
	m.mu.Lock()
	m.live.RemovePodInterface(hostInterface)
	m.mu.Unlock()
	m.poke()
}

// takePodRetry reports (and clears) whether a pod interface arrived since the last call.
func (m *Manager) takePodRetry() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.podRetry
	m.podRetry = false
	return r
}
