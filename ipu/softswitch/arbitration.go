package softswitch

import (
	"context"
	"sync"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// Arbitration (P4Runtime §5): per role, the controller whose election id is the highest the server has
// ever seen for that role is the primary. When the primary's stream closes, the role has no primary
// until some controller sends an election id >= that highest value (so a backup with a lower id does
// not take over by itself). Controllers without an election id are always backups.

type electionID struct{ high, low uint64 }

func toElection(u *p4.Uint128) *electionID {
	if u == nil {
		return nil
	}
	return &electionID{u.High, u.Low}
}

func (e *electionID) cmp(o *electionID) int {
	switch {
	case e.high != o.high:
		if e.high < o.high {
			return -1
		}
		return 1
	case e.low != o.low:
		if e.low < o.low {
			return -1
		}
		return 1
	}
	return 0
}

func (e *electionID) proto() *p4.Uint128 {
	if e == nil {
		return nil
	}
	return &p4.Uint128{High: e.high, Low: e.low}
}

func sameElection(a *electionID, b *p4.Uint128) bool {
	if a == nil || b == nil {
		return false
	}
	return a.high == b.High && a.low == b.Low
}

type role struct {
	name    string
	streams map[*stream]struct{}
	primary *stream
	highest *electionID // nil: no election id seen yet
}

// stream is one controller's StreamChannel. Arbitration updates have their own queue, sent first and
// never blocked behind packet-ins, so a slow controller cannot stall arbitration for the others.
type stream struct {
	id         uint64
	out        chan *p4.StreamMessageResponse
	ctrl       chan *p4.StreamMessageResponse
	ctx        context.Context
	arbitrated bool
	role       string
	election   *electionID
}

// send queues an arbitration update without blocking; a controller with this many unread updates
// is not reading its stream, and loses the oldest news only.
func (st *stream) send(m *p4.StreamMessageResponse) {
	select {
	case st.ctrl <- m:
	default:
	}
}

// trySend queues a message unless the queue is full.
func (st *stream) trySend(m *p4.StreamMessageResponse) bool {
	select {
	case st.out <- m:
		return true
	default:
		return false
	}
}

type arbiter struct {
	mu    sync.Mutex
	roles map[string]*role
}

func rpcErr(c codes.Code, format string, args ...any) error {
	return grpcstatus.Errorf(c, format, args...)
}

// arbitrate applies one MasterArbitrationUpdate from st. A non-nil error terminates the stream.
func (s *Server) arbitrate(st *stream, u *p4.MasterArbitrationUpdate) error {
	a := &s.arb
	a.mu.Lock()
	defer a.mu.Unlock()
	roleName := u.GetRole().GetName()
	if !st.arbitrated {
		if u.DeviceId != s.cfg.DeviceID {
			return rpcErr(codes.NotFound, "unknown device id %d", u.DeviceId)
		}
	} else {
		if u.DeviceId != s.cfg.DeviceID {
			return rpcErr(codes.FailedPrecondition, "device id %d differs from this stream's %d", u.DeviceId, s.cfg.DeviceID)
		}
		if roleName != st.role {
			return rpcErr(codes.FailedPrecondition, "role %q differs from this stream's %q: open a new stream", roleName, st.role)
		}
	}
	if u.GetRole().GetConfig() != nil {
		return rpcErr(codes.InvalidArgument, "role config is not supported: every role has full pipeline access")
	}
	r := a.roles[roleName]
	if r == nil {
		r = &role{name: roleName, streams: map[*stream]struct{}{}}
		a.roles[roleName] = r
	}
	eid := toElection(u.ElectionId)
	if eid != nil {
		for o := range r.streams {
			if o != st && o.election != nil && o.election.cmp(eid) == 0 {
				return rpcErr(codes.InvalidArgument, "election id %d:%d is already used in role %q", eid.high, eid.low, roleName)
			}
		}
	}
	if !st.arbitrated {
		if len(r.streams) >= s.cfg.MaxStreamsPerRole {
			return rpcErr(codes.ResourceExhausted, "role %q already has %d streams", roleName, len(r.streams))
		}
		r.streams[st] = struct{}{}
		st.arbitrated, st.role = true, roleName
	}
	st.election = eid
	prev := r.primary
	if eid != nil && (r.highest == nil || eid.cmp(r.highest) >= 0) {
		r.highest = eid
		r.primary = st
		s.metrics.arbitration.WithLabelValues("primary").Inc()
		s.metrics.primary.WithLabelValues(roleName).Set(1)
		if prev != st {
			s.log.Info("primary controller elected", zap.String("role", roleName), zap.Uint64("stream", st.id),
				zap.Uint64("election_high", eid.high), zap.Uint64("election_low", eid.low))
		}
		s.notifyAll(r)
		return nil
	}
	s.metrics.arbitration.WithLabelValues("backup").Inc()
	if prev == st {
		// The primary downgraded itself: no primary until an id >= highest arrives.
		r.primary = nil
		s.metrics.primary.WithLabelValues(roleName).Set(0)
		s.log.Info("primary controller downgraded to backup", zap.String("role", roleName), zap.Uint64("stream", st.id))
		s.notifyAll(r)
		return nil
	}
	st.send(s.arbitrationMsg(r, st))
	return nil
}

// leave removes a closed stream; if it was primary, the others learn there is no primary.
func (s *Server) leave(st *stream) {
	a := &s.arb
	a.mu.Lock()
	defer a.mu.Unlock()
	if !st.arbitrated {
		return
	}
	r := a.roles[st.role]
	if r == nil {
		return
	}
	delete(r.streams, st)
	if r.primary == st {
		r.primary = nil
		s.metrics.primary.WithLabelValues(r.name).Set(0)
		s.log.Info("primary controller disconnected", zap.String("role", r.name), zap.Uint64("stream", st.id))
		s.notifyAll(r)
	}
}

func (s *Server) notifyAll(r *role) {
	for o := range r.streams {
		o.send(s.arbitrationMsg(r, o))
	}
}

func (s *Server) arbitrationMsg(r *role, to *stream) *p4.StreamMessageResponse {
	u := &p4.MasterArbitrationUpdate{DeviceId: s.cfg.DeviceID, ElectionId: r.highest.proto()}
	if r.name != "" {
		u.Role = &p4.Role{Name: r.name}
	}
	switch {
	case r.primary == to:
		u.Status = &status.Status{Code: int32(codes.OK)}
	case r.primary != nil:
		u.Status = &status.Status{Code: int32(codes.AlreadyExists), Message: "a primary controller is connected; this stream is a backup"}
	default:
		u.Status = &status.Status{Code: int32(codes.NotFound), Message: "no primary controller is connected"}
	}
	return &p4.StreamMessageResponse{Update: &p4.StreamMessageResponse_Arbitration{Arbitration: u}}
}

// checkPrimary implements the first checks of Write and SetForwardingPipelineConfig: device,
// role, primary (by device, role and election id).
func (s *Server) checkPrimary(device uint64, roleName string, eid *p4.Uint128) error {
	if device != s.cfg.DeviceID {
		return rpcErr(codes.NotFound, "unknown device id %d", device)
	}
	a := &s.arb
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roles[roleName]
	if r == nil {
		if roleName == "" {
			return rpcErr(codes.PermissionDenied, "not the primary controller: no controller has arbitrated")
		}
		return rpcErr(codes.NotFound, "unknown role %q", roleName)
	}
	if r.primary == nil || !sameElection(r.primary.election, eid) {
		return rpcErr(codes.PermissionDenied, "not the primary controller of role %q (election id %v)", roleName, eid)
	}
	return nil
}

// primaries returns the streams that are primary for some role (packet-in, digests and idle
// notifications go to them).
func (s *Server) primaries() []*stream {
	a := &s.arb
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*stream
	for _, r := range a.roles {
		if r.primary != nil {
			out = append(out, r.primary)
		}
	}
	return out
}

// isPrimary reports whether st is currently the primary of its role.
func (s *Server) isPrimary(st *stream) bool {
	a := &s.arb
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roles[st.role]
	return st.arbitrated && r != nil && r.primary == st
}
