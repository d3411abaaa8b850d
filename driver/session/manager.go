package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/calico-p4/calico-p4/driver/infraapi"
	"github.com/calico-p4/calico-p4/driver/model"
)

// Conn is the manager's side of one driver connection (infraapi.FelixRelay_SessionServer satisfies it).
type Conn interface {
	Context() context.Context
	Recv() (*infraapi.DriverMessage, error)
	Send(*infraapi.ManagerMessage) error
}

// Manager holds the desired state across Felix sessions and runs one session at a time. It implements
// the infrastructure API's FelixRelay service.
type Manager struct {
	infraapi.UnimplementedFelixRelayServer

	log     *zap.Logger
	applier Applier
	metrics *metrics
	version string
	ctx     context.Context
	cancel  context.CancelFunc

	// applyMu serialises Apply calls (across sessions).
	applyMu sync.Mutex

	mu       sync.Mutex
	live     *model.State // the desired state of the latest in-sync session
	cur      *session
	nextID   uint64
	inSync   bool  // some session reached in-sync
	applied  bool  // an apply has completed
	applyErr error // result of the last apply
	unknown  map[string]bool
	kube     kubeState // the Kubernetes services watch (kube.go)
	podRetry bool      // a pod interface arrived: retry a failed apply now (podiface.go)

	// wake is poked by the services watch: the current session's loop then applies.
	wake chan struct{}
}

// Option configures a Manager.
type Option func(*Manager)

// WithApplier sets the apply stage (default NoDataplane).
func WithApplier(a Applier) Option { return func(m *Manager) { m.applier = a } }

// WithLogger sets the logger (default: no logging).
func WithLogger(l *zap.Logger) Option { return func(m *Manager) { m.log = l } }

// WithVersion sets the version reported in HelloAck.
func WithVersion(v string) Option { return func(m *Manager) { m.version = v } }

// NewManager returns a manager registering its metrics on reg.
func NewManager(reg prometheus.Registerer, opts ...Option) (*Manager, error) {
	m := &Manager{log: zap.NewNop(), applier: NoDataplane{}, version: "dev", live: model.NewState(),
		unknown: map[string]bool{}, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(m)
	}
	var err error
	if m.metrics, err = newMetrics(reg); err != nil {
		return nil, fmt.Errorf("registering session metrics: %w", err)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Close stops the current session and cancels in-flight applies' context.
func (m *Manager) Close() {
	m.mu.Lock()
	cur := m.cur
	m.mu.Unlock()
	if cur != nil {
		cur.cancel(errors.New("manager stopping"))
		<-cur.done
	}
	m.mu.Lock()
	if m.kube.gateTimer != nil {
		m.kube.gateTimer.Stop()
	}
	m.mu.Unlock()
	m.cancel()
}

// Ready reports whether a session reached in-sync and the last apply succeeded, with a reason if not.
func (m *Manager) Ready() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.inSync:
		return false, "no Felix session has reached in-sync yet"
	case !m.applied:
		return false, "waiting for the first apply"
	case m.applyErr != nil:
		return false, "last apply failed: " + m.applyErr.Error()
	}
	return true, "ok"
}

// Session implements infraapi.FelixRelayServer.
func (m *Manager) Session(stream infraapi.FelixRelay_SessionServer) error { return m.Serve(stream) }

// Serve runs one session on conn until it ends. A newer session replaces it.
func (m *Manager) Serve(conn Conn) error {
	first, err := conn.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "the first message of a session must be Hello")
	}
	if hello.ProtocolVersion != infraapi.ProtocolVersion {
		return status.Errorf(codes.FailedPrecondition, "protocol version %d not supported (want %d)",
			hello.ProtocolVersion, infraapi.ProtocolVersion)
	}
	s := m.startSession(conn, hello)
	if err := conn.Send(&infraapi.ManagerMessage{Msg: &infraapi.ManagerMessage_HelloAck{HelloAck: &infraapi.HelloAck{
		ProtocolVersion: infraapi.ProtocolVersion, ManagerVersion: m.version, SessionId: s.id}}}); err != nil {
		s.finish(err)
		return err
	}
	return s.run(conn)
}

func (m *Manager) startSession(conn Conn, hello *infraapi.Hello) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	ctx, cancel := context.WithCancelCause(conn.Context())
	s := &session{
		m: m, id: m.nextID, ctx: ctx, cancel: cancel, prev: m.cur, done: make(chan struct{}),
		pending: model.NewState(), start: time.Now(), lastSeq: -1,
		log: m.log.With(zap.Uint64("session", m.nextID), zap.Int32("felixPID", hello.FelixPid),
			zap.Int32("driverPID", hello.DriverPid)),
		applyDone: make(chan applyResult, 1),
		wepStatus: map[model.WorkloadEndpointKey]string{}, hepStatus: map[string]string{},
		rejectedWEPs: map[model.WorkloadEndpointKey]bool{}, rejectedHEPs: map[string]bool{},
		out: make(chan *infraapi.ManagerMessage, 1024),
	}
	if m.cur != nil {
		m.cur.cancel(fmt.Errorf("replaced by session %d", s.id))
		s.log.Info("New Felix session replaces the current one", zap.Uint64("replaced", m.cur.id))
	}
	m.cur = s
	m.metrics.appliedSeq.Set(-1)
	m.metrics.sessions.Inc()
	s.setPhase(PhaseConnected)
	s.log.Info("Felix session connected", zap.String("driverVersion", hello.DriverVersion),
		zap.String("hostname", hello.Hostname))
	return s
}

// noteUnknown reports whether this unknown payload type is new (to log it once per type).
func (m *Manager) noteUnknown(typ string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unknown[typ] {
		return false
	}
	m.unknown[typ] = true
	return true
}

func (m *Manager) setApplyResult(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = true
	m.applyErr = err
	if err == nil && m.inSync {
		m.metrics.ready.Set(1)
	} else {
		m.metrics.ready.Set(0)
	}
}

// withLive runs f with the desired state locked.
func (m *Manager) withLive(f func(live *model.State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.live)
}

// DesiredSnapshot returns a snapshot of the current desired state (for the ctl API and tests).
func (m *Manager) DesiredSnapshot() *model.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live.Clone()
}
