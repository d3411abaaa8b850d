package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/calico-p4/calico-p4/driver/infraapi"
	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
)

// maxRetry caps the delay between retries of a failed apply.
const maxRetry = 30 * time.Second

type session struct {
	m      *Manager
	id     uint64
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc
	prev   *session      // the session this one replaced: must be done before this one touches m.live
	done   chan struct{} // closed when the loop has exited and no apply of this session is in flight
	start  time.Time

	phase   Phase
	pending *model.State // the snapshot being accumulated before InSync; nil afterwards

	applying      bool
	applyDone     chan applyResult
	resyncPending bool // the next apply is the InSync hand-over (Changes.Resync)
	retryDelay    time.Duration
	retryTimer    *time.Timer
	retryDue      bool
	lastSeq       int64 // sequence number of the last message handled; -1 before the first
	lastApplyOK   bool  // the last apply of this session succeeded

	statusInterval time.Duration
	statusTicker   *time.Ticker
	firstStatus    bool

	out chan *infraapi.ManagerMessage
	seq uint64

	wepStatus    map[model.WorkloadEndpointKey]string // last status sent in this session
	hepStatus    map[string]string
	reportedAll  bool
	rejectedWEPs map[model.WorkloadEndpointKey]bool // rejected as invalid (reported "error", not "remove")
	rejectedHEPs map[string]bool
}

type applyResult struct {
	changes model.Changes
	desired *model.State
	seq     int64 // the last message handled when the apply started
	err     error
}

// event is what the receive goroutine hands the loop: decoded messages, a goodbye, or the end.
type event struct {
	msgs    []decoded
	goodbye *infraapi.Goodbye
	err     error
}

type decoded struct {
	msg *proto.ToDataplane
	err error // *model.UnknownPayloadError (msg still set)
}

// errDriverClosed ends the loop when the driver closes its side (a normal end).
var errDriverClosed = errors.New("driver closed the session")

// errUndecodable marks a frame that is not a ToDataplane.
var errUndecodable = errors.New("undecodable frame")

func (s *session) setPhase(p Phase) {
	s.phase = p
	s.m.metrics.setPhase(p)
}

// run is the session loop.
func (s *session) run(conn Conn) error {
	inbox := make(chan event, 16)
	go s.recvLoop(conn, inbox)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for msg := range s.out {
			if err := conn.Send(msg); err != nil {
				s.log.Info("Cannot send to the driver", zap.Error(err))
				s.cancel(fmt.Errorf("sending to the driver: %w", err))
				for range s.out { //nolint:revive // drain so the loop never blocks
				}
				return
			}
		}
	}()
	s.retryDelay = s.m.configFor(s).ApplyRetry
	s.resetStatusTicker(s.m.configFor(s).ReportingInterval)

	err := s.loop(inbox)
	if errors.Is(err, errDriverClosed) {
		err = nil
	}
	s.finish(err)
	close(s.out)
	select {
	case <-sendDone:
	case <-time.After(time.Second):
	}
	return err
}

func (s *session) loop(inbox chan event) error {
	for {
		select {
		case ev := <-inbox:
			if err := s.handle(ev); err != nil {
				return err
			}
			// Coalesce: take everything already queued before applying.
		drain:
			for {
				select {
				case ev := <-inbox:
					if err := s.handle(ev); err != nil {
						return err
					}
				default:
					break drain
				}
			}
			s.maybeApply()
		case r := <-s.applyDone:
			s.applied(r)
			s.maybeApply()
		case <-timerC(s.retryTimer):
			s.retryTimer = nil
			s.retryDue = true
			s.maybeApply()
		case <-tickerC(s.statusTicker):
			s.sendProcessStatus()
		case <-s.m.wake:
			// The Kubernetes services watch or the CNI server changed the desired state.
			if s.m.takePodRetry() && s.retryTimer != nil {
				s.retryDue = true // a pod's MAC may be what the failed apply lacked
			}
			s.maybeApply()
		case <-s.ctx.Done():
			cause := context.Cause(s.ctx)
			s.log.Info("Felix session stopped", zap.Error(cause))
			return status.Error(codes.Aborted, cause.Error())
		}
	}
}

// finish ends the session: waits for an in-flight apply, then marks it done.
func (s *session) finish(err error) {
	if s.applying {
		r := <-s.applyDone
		s.applied(r)
	}
	if s.retryTimer != nil {
		s.retryTimer.Stop()
	}
	if s.statusTicker != nil {
		s.statusTicker.Stop()
	}
	s.cancel(errors.New("session finished"))
	s.m.mu.Lock()
	if s.m.cur == s {
		s.m.cur = nil
		s.setPhase(PhaseClosed)
	}
	s.m.mu.Unlock()
	if err != nil && status.Code(err) != codes.Aborted {
		s.log.Warn("Felix session closed; desired state and dataplane left as they are", zap.Error(err))
	} else {
		s.log.Info("Felix session closed; desired state and dataplane left as they are")
	}
	close(s.done)
}

// recvLoop reads and decodes the driver's messages (decoding off the main loop).
func (s *session) recvLoop(conn Conn, inbox chan<- event) {
	put := func(ev event) bool {
		select {
		case inbox <- ev:
			return true
		case <-s.ctx.Done():
			return false
		}
	}
	for {
		msg, err := conn.Recv()
		if err != nil {
			put(event{err: err})
			return
		}
		switch m := msg.Msg.(type) {
		case *infraapi.DriverMessage_ToDataplane:
			ev := event{msgs: make([]decoded, 0, len(m.ToDataplane.Frames))}
			for _, f := range m.ToDataplane.Frames {
				d, err := model.Unmarshal(f)
				if err != nil {
					if _, unknown := model.IsUnknownPayload(err); !unknown {
						// Keep what decoded before the bad frame, then end the session.
						if len(ev.msgs) > 0 && !put(ev) {
							return
						}
						put(event{err: fmt.Errorf("%w: %v", errUndecodable, err)})
						return
					}
				}
				ev.msgs = append(ev.msgs, decoded{msg: d, err: err})
			}
			if !put(ev) {
				return
			}
		case *infraapi.DriverMessage_Goodbye:
			if !put(event{goodbye: m.Goodbye}) {
				return
			}
		default:
			put(event{err: status.Errorf(codes.InvalidArgument, "unexpected driver message %T", msg.Msg)})
			return
		}
	}
}

// handle processes one event; a non-nil error ends the session.
func (s *session) handle(ev event) error {
	switch {
	case ev.err != nil:
		if errors.Is(ev.err, io.EOF) {
			return errDriverClosed
		}
		if errors.Is(ev.err, errUndecodable) {
			s.m.metrics.framingErrors.WithLabelValues("undecodable").Inc()
			s.log.Error("Corrupt stream from Felix: closing the session", zap.Error(ev.err))
			return status.Error(codes.InvalidArgument, ev.err.Error())
		}
		if status.Code(ev.err) == codes.Canceled {
			return status.Error(codes.Aborted, "driver went away")
		}
		return ev.err
	case ev.goodbye != nil:
		if ev.goodbye.FramingError {
			s.m.metrics.framingErrors.WithLabelValues("driver").Inc()
			s.log.Error("Driver reports a corrupt stream from Felix", zap.String("reason", ev.goodbye.Reason))
		} else {
			s.log.Info("Driver says goodbye", zap.String("reason", ev.goodbye.Reason))
		}
		return nil
	}
	for _, d := range ev.msgs {
		s.handleMsg(d)
	}
	return nil
}

func (s *session) handleMsg(d decoded) {
	s.lastSeq = int64(d.msg.SequenceNumber)
	name := model.PayloadName(d.msg)
	if u, ok := model.IsUnknownPayload(d.err); ok {
		s.m.metrics.unknown.WithLabelValues(u.Type).Inc()
		if s.m.noteUnknown(u.Type) {
			s.log.Warn("Ignoring a ToDataplane payload this build does not know (newer Felix?); logged once per type",
				zap.String("type", u.Type), zap.Uint64("seq", d.msg.SequenceNumber))
		}
		return
	}
	s.m.metrics.messages.WithLabelValues(name).Inc()
	if s.phase == PhaseConnected {
		s.setPhase(PhaseSyncing)
	}
	if model.IsInSync(d.msg) {
		s.inSync(d.msg.SequenceNumber)
		return
	}
	var err error
	if s.pending != nil {
		err = s.pending.Apply(d.msg)
	} else {
		s.m.withLive(func(live *model.State) { err = live.Apply(d.msg) })
	}
	s.noteErrors(d.msg, err)
	if _, ok := d.msg.Payload.(*proto.ToDataplane_ConfigUpdate); ok {
		s.resetStatusTicker(s.m.configFor(s).ReportingInterval)
		s.retryDelay = s.m.configFor(s).ApplyRetry
	}
}

func (s *session) noteErrors(msg *proto.ToDataplane, err error) {
	if err == nil {
		s.clearRejection(msg)
		return
	}
	ies := model.InvalidErrors(err)
	for _, ie := range ies {
		s.m.metrics.invalid.WithLabelValues(ie.Kind.String()).Inc()
		s.log.Error("Invalid object from Felix", zap.Stringer("kind", ie.Kind), zap.String("key", ie.Key),
			zap.Bool("rejected", ie.Rejected), zap.Uint64("seq", msg.SequenceNumber), zap.Error(ie.Err))
		if !ie.Rejected {
			continue
		}
		// A rejected endpoint is reported "error" (at once when in sync, else at the first apply).
		switch k := ie.ID.(type) {
		case model.WorkloadEndpointKey:
			s.rejectedWEPs[k] = true
			if s.pending == nil && s.m.configFor(s).EndpointStatus {
				s.sendWEPStatus(k, statusError)
			}
		case string:
			if ie.Kind == model.KindHostEndpoint {
				s.rejectedHEPs[k] = true
				if s.pending == nil && s.m.configFor(s).EndpointStatus {
					s.sendHEPStatus(k, statusError)
				}
			}
		}
	}
	if len(ies) == 0 {
		s.log.Error("Cannot apply message from Felix", zap.Uint64("seq", msg.SequenceNumber), zap.Error(err))
	}
}

// clearRejection forgets an endpoint's rejection once Felix sends a valid update or removes it.
func (s *session) clearRejection(msg *proto.ToDataplane) {
	switch p := msg.Payload.(type) {
	case *proto.ToDataplane_WorkloadEndpointUpdate:
		delete(s.rejectedWEPs, wepKey(p.WorkloadEndpointUpdate.GetId()))
	case *proto.ToDataplane_WorkloadEndpointRemove:
		k := wepKey(p.WorkloadEndpointRemove.GetId())
		if s.rejectedWEPs[k] {
			delete(s.rejectedWEPs, k)
			s.sendWEPStatus(k, "remove")
		}
	case *proto.ToDataplane_HostEndpointUpdate:
		delete(s.rejectedHEPs, p.HostEndpointUpdate.GetId().GetEndpointId())
	case *proto.ToDataplane_HostEndpointRemove:
		id := p.HostEndpointRemove.GetId().GetEndpointId()
		if s.rejectedHEPs[id] {
			delete(s.rejectedHEPs, id)
			s.sendHEPStatus(id, "remove")
		}
	}
}

func wepKey(id *proto.WorkloadEndpointID) model.WorkloadEndpointKey {
	return model.WorkloadEndpointKey{OrchestratorID: id.GetOrchestratorId(), WorkloadID: id.GetWorkloadId(),
		EndpointID: id.GetEndpointId()}
}

// inSync hands the snapshot over: it replaces the desired state (true differences recorded) and the next
// apply carries Changes.Resync.
func (s *session) inSync(seq uint64) {
	if s.pending == nil {
		s.log.Warn("Second InSync in one session; ignored", zap.Uint64("seq", seq))
		return
	}
	if s.prev != nil {
		// The replaced session must have stopped touching the desired state (its apply finished).
		select {
		case <-s.prev.done:
		case <-s.ctx.Done():
			return
		}
		s.prev = nil
	}
	n := s.pending.Len()
	s.m.mu.Lock()
	s.m.live.Replace(s.pending)
	s.m.inSync = true
	s.m.mu.Unlock()
	s.pending = nil
	s.resyncPending = true
	s.setPhase(PhaseInSync)
	s.m.updateObjectGauges()
	s.log.Info("Felix in sync: the snapshot is now the desired state", zap.Uint64("seq", seq), zap.Int("objects", n),
		zap.Duration("syncTime", time.Since(s.start)))
}

// maybeApply starts an apply if the session is in sync, none is running, and there is something to do.
func (s *session) maybeApply() {
	if s.phase != PhaseInSync || s.applying || s.ctx.Err() != nil {
		return
	}
	if s.retryTimer != nil && !s.retryDue {
		return // a failed apply is waiting for its retry time
	}
	if s.m.kubeGate() {
		return // waiting (a bounded time) for the services watch's first sync
	}
	var changes model.Changes
	var desired *model.State
	s.m.mu.Lock()
	kubeGen := s.m.kubeGenLocked()
	if s.m.live.PendingChanges() == 0 && !s.resyncPending && !s.retryDue {
		s.m.mu.Unlock()
		s.idle(kubeGen)
		return
	}
	changes = s.m.live.TakeChanges()
	changes.Resync = s.resyncPending
	desired = s.m.live.Clone()
	s.m.mu.Unlock()
	s.m.updateObjectGauges()
	if changes.Empty() && !changes.Resync && !s.retryDue {
		s.idle(kubeGen)
		return
	}
	seq := s.lastSeq
	s.resyncPending = false
	s.retryDue = false
	s.applying = true
	go func() {
		m := s.m
		m.applyMu.Lock()
		start := time.Now()
		err := m.applier.Apply(m.ctx, desired, changes)
		elapsed := time.Since(start)
		m.applyMu.Unlock()
		m.metrics.applySeconds.Observe(elapsed.Seconds())
		m.metrics.applyObjects.Observe(float64(changes.Len()))
		if err != nil {
			m.metrics.applies.WithLabelValues("error").Inc()
			m.withLive(func(live *model.State) { live.RestoreChanges(changes) })
		} else {
			m.metrics.applies.WithLabelValues("ok").Inc()
			m.kubeApplied(kubeGen)
		}
		m.setApplyResult(err)
		s.applyDone <- applyResult{changes: changes, desired: desired, seq: seq, err: err}
	}()
}

// idle is called when there is nothing to apply: messages that changed nothing (and services watch
// revisions up to kubeGen) are reflected by the dataplane as soon as everything before them is.
func (s *session) idle(kubeGen uint64) {
	if s.lastApplyOK && s.retryTimer == nil {
		s.markApplied(s.lastSeq)
		s.m.kubeApplied(kubeGen)
	}
}

// markApplied publishes the sequence number the dataplane reflects, for the current session only (an
// apply of a replaced session may finish after its successor started).
func (s *session) markApplied(seq int64) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.cur == s {
		s.m.metrics.appliedSeq.Set(float64(seq))
	}
}

func (s *session) applied(r applyResult) {
	s.applying = false
	s.lastApplyOK = r.err == nil
	if r.err == nil {
		s.markApplied(r.seq)
	}
	if r.err != nil {
		if r.changes.Resync {
			s.resyncPending = true
		}
		delay := s.retryDelay
		s.retryDelay = min(2*s.retryDelay, maxRetry)
		s.log.Error("Apply failed; will retry", zap.Stringer("changes", r.changes), zap.Duration("retryIn", delay),
			zap.Error(r.err))
		if s.retryTimer != nil {
			s.retryTimer.Stop()
		}
		s.retryTimer = time.NewTimer(delay)
	} else {
		s.retryDelay = s.m.configFor(s).ApplyRetry
		if s.retryTimer != nil {
			s.retryTimer.Stop()
			s.retryTimer = nil
		}
		s.log.Debug("Applied", zap.Stringer("changes", r.changes))
	}
	if s.ctx.Err() == nil {
		s.reportEndpoints(r)
		if !s.firstStatus {
			s.firstStatus = true
			s.sendProcessStatus()
		}
	}
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func tickerC(t *time.Ticker) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// configFor returns the config the session currently sees (its snapshot's before InSync).
func (m *Manager) configFor(s *session) *model.Config {
	if s.pending != nil {
		return s.pending.Config()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live.Config()
}

func (m *Manager) updateObjectGauges() {
	m.mu.Lock()
	counts := m.live.Counts()
	m.mu.Unlock()
	for k, n := range counts {
		m.metrics.objects.WithLabelValues(k.String()).Set(float64(n))
	}
}
