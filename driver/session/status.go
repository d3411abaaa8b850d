package session

import (
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/driver/infraapi"
	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
)

// Endpoint statuses sent to Felix ("remove" means a ...StatusRemove message).
const (
	statusUp     = "up"
	statusDown   = "down"
	statusError  = "error"
	statusRemove = "remove"
)

func (s *session) resetStatusTicker(interval time.Duration) {
	if interval == s.statusInterval && (s.statusTicker != nil || interval <= 0) {
		return
	}
	s.statusInterval = interval
	if s.statusTicker != nil {
		s.statusTicker.Stop()
		s.statusTicker = nil
	}
	if interval > 0 {
		s.statusTicker = time.NewTicker(interval)
	}
}

func (s *session) send(msg *proto.FromDataplane) {
	s.seq++
	msg.SequenceNumber = s.seq
	b, err := msg.Marshal()
	if err != nil {
		s.log.Error("Cannot encode a status message", zap.Error(err))
		return
	}
	select {
	case s.out <- &infraapi.ManagerMessage{Msg: &infraapi.ManagerMessage_FromDataplane{
		FromDataplane: &infraapi.Frames{Frames: [][]byte{b}}}}:
	case <-s.ctx.Done():
	}
}

// sendProcessStatus sends Felix's heartbeat: RFC 3339 UTC time and the session's uptime in seconds.
func (s *session) sendProcessStatus() {
	s.send(&proto.FromDataplane{Payload: &proto.FromDataplane_ProcessStatusUpdate{ProcessStatusUpdate: &proto.ProcessStatusUpdate{
		IsoTimestamp: time.Now().UTC().Format(time.RFC3339), Uptime: time.Since(s.start).Seconds()}}})
	s.m.metrics.statusSent.WithLabelValues("process", "").Inc()
}

func (s *session) sendWEPStatus(k model.WorkloadEndpointKey, st string) {
	if s.wepStatus[k] == st {
		return
	}
	id := &proto.WorkloadEndpointID{OrchestratorId: k.OrchestratorID, WorkloadId: k.WorkloadID, EndpointId: k.EndpointID}
	if st == statusRemove {
		delete(s.wepStatus, k)
		s.send(&proto.FromDataplane{Payload: &proto.FromDataplane_WorkloadEndpointStatusRemove{
			WorkloadEndpointStatusRemove: &proto.WorkloadEndpointStatusRemove{Id: id}}})
	} else {
		s.wepStatus[k] = st
		s.send(&proto.FromDataplane{Payload: &proto.FromDataplane_WorkloadEndpointStatusUpdate{
			WorkloadEndpointStatusUpdate: &proto.WorkloadEndpointStatusUpdate{Id: id, Status: &proto.EndpointStatus{Status: st}}}})
	}
	s.m.metrics.statusSent.WithLabelValues("workload_endpoint", st).Inc()
}

func (s *session) sendHEPStatus(id string, st string) {
	if s.hepStatus[id] == st {
		return
	}
	pid := &proto.HostEndpointID{EndpointId: id}
	if st == statusRemove {
		delete(s.hepStatus, id)
		s.send(&proto.FromDataplane{Payload: &proto.FromDataplane_HostEndpointStatusRemove{
			HostEndpointStatusRemove: &proto.HostEndpointStatusRemove{Id: pid}}})
	} else {
		s.hepStatus[id] = st
		s.send(&proto.FromDataplane{Payload: &proto.FromDataplane_HostEndpointStatusUpdate{
			HostEndpointStatusUpdate: &proto.HostEndpointStatusUpdate{Id: pid, Status: &proto.EndpointStatus{Status: st}}}})
	}
	s.m.metrics.statusSent.WithLabelValues("host_endpoint", st).Inc()
}

// reportEndpoints tells Felix the outcome of an apply for the endpoints it concerned: "up" only when the
// Applier programmed them without error, "error" otherwise (or when Felix's object was rejected as
// invalid), and a removal for endpoints that left the desired state.
func (s *session) reportEndpoints(r applyResult) {
	if !r.desired.Config().EndpointStatus {
		return
	}
	var epErrs *EndpointErrors
	errors.As(r.err, &epErrs)
	// A programmed endpoint whose Felix state is not "active" is "down", as Felix's own dataplane reports it
	// (its traffic is dropped).
	programmed := func(k model.WorkloadEndpointKey) string {
		if ep, ok := r.desired.WorkloadEndpoints.Get(k); ok && ep.State != "" && ep.State != "active" {
			return statusDown
		}
		return statusUp
	}
	wepOutcome := func(k model.WorkloadEndpointKey) string {
		switch {
		case r.err == nil:
			return programmed(k)
		case epErrs != nil:
			if _, failed := epErrs.Workloads[k]; failed {
				return statusError
			}
			return programmed(k)
		}
		return statusError
	}
	hepOutcome := func(id string) string {
		switch {
		case r.err == nil:
			return statusUp
		case epErrs != nil:
			if _, failed := epErrs.Hosts[id]; failed {
				return statusError
			}
			return statusUp
		}
		return statusError
	}

	// Workload endpoints: changed ones, ones not "up" yet in this session, ones the apply failed for, and at
	// the session's first apply all of them (a new Felix knows no status).
	weps := map[model.WorkloadEndpointKey]bool{}
	for k := range r.changes.WorkloadEndpoints.All() {
		weps[k] = true
	}
	for k, st := range s.wepStatus {
		if st != statusUp {
			weps[k] = true
		}
	}
	if !s.reportedAll {
		for _, k := range r.desired.WorkloadEndpoints.Keys() {
			weps[k] = true
		}
	}
	for k := range s.rejectedWEPs {
		weps[k] = true
	}
	if epErrs != nil {
		// Endpoints the apply failed for, also unchanged ones: an input other than Felix's (a pod's MAC from
		// the CNI server) can take away what an endpoint that was "up" needs.
		for k := range epErrs.Workloads {
			weps[k] = true
		}
	}
	for _, k := range sortedWEPKeys(weps) {
		switch {
		case s.rejectedWEPs[k]:
			s.sendWEPStatus(k, statusError)
		case r.desired.WorkloadEndpoints.Has(k):
			s.sendWEPStatus(k, wepOutcome(k))
		case r.changes.WorkloadEndpoints.Get(k) == model.Removed:
			if _, known := s.wepStatus[k]; !known {
				s.wepStatus[k] = "" // a removal Felix may not have heard of: send it once anyway
			}
			s.sendWEPStatus(k, statusRemove)
		}
	}

	heps := map[string]bool{}
	for k := range r.changes.HostEndpoints.All() {
		heps[k] = true
	}
	for k, st := range s.hepStatus {
		if st != statusUp {
			heps[k] = true
		}
	}
	if !s.reportedAll {
		for _, k := range r.desired.HostEndpoints.Keys() {
			heps[k] = true
		}
	}
	for k := range s.rejectedHEPs {
		heps[k] = true
	}
	if epErrs != nil {
		for k := range epErrs.Hosts {
			heps[k] = true
		}
	}
	for _, k := range sortedStrings(heps) {
		switch {
		case s.rejectedHEPs[k]:
			s.sendHEPStatus(k, statusError)
		case r.desired.HostEndpoints.Has(k):
			s.sendHEPStatus(k, hepOutcome(k))
		case r.changes.HostEndpoints.Get(k) == model.Removed:
			if _, known := s.hepStatus[k]; !known {
				s.hepStatus[k] = ""
			}
			s.sendHEPStatus(k, statusRemove)
		}
	}
	s.reportedAll = true
}

func sortedWEPKeys(m map[model.WorkloadEndpointKey]bool) []model.WorkloadEndpointKey {
	out := make([]model.WorkloadEndpointKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, model.CompareWorkloadEndpointKeys)
	return out
}

func sortedStrings(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
