package softswitch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

// APIVersion is the P4Runtime version the server implements (Capabilities).
const APIVersion = "1.4.1"

// Config configures a Server.
type Config struct {
	// DeviceID is the P4Runtime device id the server answers for (infrap4d's convention: 1).
	DeviceID uint64
	// Logger receives the server's logs (default: no logs).
	Logger *zap.Logger
	// Registry receives the calico_p4_softswitch_* metrics (default: not registered).
	Registry prometheus.Registerer
	// Store is the table store to serve; default: a new store built with StoreOptions.
	Store        *tables.Store
	StoreOptions tables.Options
	// MaxStreamsPerRole bounds the StreamChannels per role (default 16).
	MaxStreamsPerRole int
	// StreamQueue is the per-stream queue of outgoing messages; packet-in, digests and idle
	// notifications are dropped (and counted) when it is full (default 4096).
	StreamQueue int
	// ReadChunkEntities and ReadChunkBytes bound one ReadResponse (defaults 1000 and 1 MiB).
	ReadChunkEntities int
	ReadChunkBytes    int
	// SweepInterval is the period of the idle-timeout / learner-expiry scan (default 200ms).
	SweepInterval time.Duration
	// GRPCOptions are added to the gRPC server built by Serve (credentials, interceptors, …). Interceptors
	// must not keep a WriteRequest after they return (clone it): the server reuses the memory it was decoded
	// into once the call has returned through every chained interceptor (grpc.ChainUnaryInterceptor; a
	// grpc.UnaryInterceptor runs outside the server's own and must not touch the request after its handler
	// returns).
	GRPCOptions []grpc.ServerOption
	// MaxRecvMsgSize is the largest request accepted (default 256 MiB: 100k-entry batches).
	MaxRecvMsgSize int
}

// Packet is a packet-in or packet-out: the payload and the controller header fields in P4Info order
// (Metadata[i] is the value of field i of the packet_in / packet_out header, big-endian; any length
// whose value fits the field's bitwidth).
type Packet struct {
	Payload  []byte
	Metadata [][]byte
}

// PacketOutHandler receives packet-outs from the primary controller (the CPU port's transmit side).
// It must not block for long; the payload is owned by the handler.
type PacketOutHandler func(Packet) error

// ErrNoPrimary is returned by SendPacketIn when no primary controller is connected.
var ErrNoPrimary = errors.New("softswitch: no primary controller connected")

// Server is the embedded target's P4Runtime server.
type Server struct {
	p4.UnimplementedP4RuntimeServer

	cfg     Config
	log     *zap.Logger
	store   *tables.Store
	metrics *metrics
	arb     arbiter
	digests *digestEngine

	streamSeq atomic.Uint64
	packetOut atomic.Pointer[PacketOutHandler]

	mu      sync.Mutex
	servers []*grpc.Server
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup

	okDetail *anypb.Any
}

// New builds a server and starts its background work (idle-timeout and expiry sweeps). Call Stop to
// release it.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Store == nil {
		cfg.Store = tables.NewStore(cfg.StoreOptions)
	}
	if cfg.MaxStreamsPerRole <= 0 {
		cfg.MaxStreamsPerRole = 16
	}
	if cfg.StreamQueue <= 0 {
		cfg.StreamQueue = 4096
	}
	if cfg.ReadChunkEntities <= 0 {
		cfg.ReadChunkEntities = 1000
	}
	if cfg.ReadChunkBytes <= 0 {
		cfg.ReadChunkBytes = 1 << 20
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 200 * time.Millisecond
	}
	if cfg.MaxRecvMsgSize <= 0 {
		cfg.MaxRecvMsgSize = 256 << 20
	}
	ok, err := anypb.New(&p4.Error{CanonicalCode: int32(codes.OK)})
	if err != nil {
		return nil, fmt.Errorf("softswitch: building status details: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    cfg.Store,
		arb:      arbiter{roles: map[string]*role{}},
		stop:     make(chan struct{}),
		okDetail: ok,
	}
	s.metrics = newMetrics(cfg.Registry, s.store)
	s.digests = newDigestEngine(s)
	s.store.OnCommit(func(st *tables.State) {
		s.log.Info("forwarding pipeline config committed", zap.Int("tables", len(st.Schema.Tables)),
			zap.String("program", st.Schema.P4Info.GetPkgInfo().GetName()))
	})
	s.wg.Add(1)
	go s.sweepLoop()
	return s, nil
}

// Store returns the table store the server serves (the packet pipeline's view of the tables).
func (s *Server) Store() *tables.Store { return s.store }

// DeviceID returns the P4Runtime device id.
func (s *Server) DeviceID() uint64 { return s.cfg.DeviceID }

// Register registers the P4Runtime service on an existing gRPC server (for embedding next to other
// services). Serve does this itself.
func (s *Server) Register(r grpc.ServiceRegistrar) { p4.RegisterP4RuntimeServer(r, s) }

// Serve serves P4Runtime on lis (a TCP or unix listener) until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	decoded := new(sync.Map)
	opts := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(s.cfg.MaxRecvMsgSize), grpc.ForceServerCodecV2(newWriteCodec(decoded)),
		grpc.ChainUnaryInterceptor(releaseWrites(decoded))}, s.cfg.GRPCOptions...)
	g := grpc.NewServer(opts...)
	s.Register(g)
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return errors.New("softswitch: server stopped")
	}
	s.servers = append(s.servers, g)
	s.mu.Unlock()
	s.log.Info("serving P4Runtime", zap.String("addr", lis.Addr().String()), zap.Uint64("device_id", s.cfg.DeviceID))
	if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("softswitch: serving P4Runtime on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Stop closes every listener and stream and stops background work. The store stays usable.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	servers := s.servers
	close(s.stop)
	s.mu.Unlock()
	for _, g := range servers {
		g.Stop()
	}
	s.digests.close()
	s.wg.Wait()
}

// SetPacketOutHandler installs the receiver of packet-outs (nil removes it: packet-outs are then
// answered with a FAILED_PRECONDITION stream error).
func (s *Server) SetPacketOutHandler(h PacketOutHandler) {
	if h == nil {
		s.packetOut.Store(nil)
		return
	}
	s.packetOut.Store(&h)
}

// Capabilities implements P4Runtime.Capabilities.
func (s *Server) Capabilities(context.Context, *p4.CapabilitiesRequest) (*p4.CapabilitiesResponse, error) {
	return &p4.CapabilitiesResponse{P4RuntimeApiVersion: APIVersion}, nil
}

// SetForwardingPipelineConfig implements P4Runtime.SetForwardingPipelineConfig.
func (s *Server) SetForwardingPipelineConfig(_ context.Context, req *p4.SetForwardingPipelineConfigRequest) (*p4.SetForwardingPipelineConfigResponse, error) {
	err := s.checkPrimary(req.DeviceId, req.Role, req.ElectionId)
	if err == nil {
		if serr := s.store.SetPipeline(req.Action, req.Config); serr != nil {
			err = grpcstatus.Error(tables.CodeOf(serr), serr.Error())
		}
	}
	code := grpcstatus.Code(err)
	s.metrics.pipeline.WithLabelValues(req.Action.String(), code.String()).Inc()
	if err != nil {
		s.log.Warn("SetForwardingPipelineConfig failed", zap.Stringer("action", req.Action), zap.Error(err))
		return nil, err
	}
	s.log.Info("SetForwardingPipelineConfig", zap.Stringer("action", req.Action), zap.Uint64("cookie", req.GetConfig().GetCookie().GetCookie()))
	return &p4.SetForwardingPipelineConfigResponse{}, nil
}

// GetForwardingPipelineConfig implements P4Runtime.GetForwardingPipelineConfig.
func (s *Server) GetForwardingPipelineConfig(_ context.Context, req *p4.GetForwardingPipelineConfigRequest) (*p4.GetForwardingPipelineConfigResponse, error) {
	if req.DeviceId != s.cfg.DeviceID {
		return nil, rpcErr(codes.NotFound, "unknown device id %d", req.DeviceId)
	}
	st := s.store.ReadView()
	if st.Schema == nil {
		return &p4.GetForwardingPipelineConfigResponse{}, nil
	}
	cfg := &p4.ForwardingPipelineConfig{Cookie: st.Cookie()}
	switch req.ResponseType {
	case p4.GetForwardingPipelineConfigRequest_ALL:
		cfg.P4Info, cfg.P4DeviceConfig = st.Schema.P4Info, st.DeviceConfig()
	case p4.GetForwardingPipelineConfigRequest_COOKIE_ONLY:
	case p4.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE:
		cfg.P4Info = st.Schema.P4Info
	case p4.GetForwardingPipelineConfigRequest_DEVICE_CONFIG_AND_COOKIE:
		cfg.P4DeviceConfig = st.DeviceConfig()
	default:
		return nil, rpcErr(codes.InvalidArgument, "unknown response type %v", req.ResponseType)
	}
	return &p4.GetForwardingPipelineConfigResponse{Config: cfg}, nil
}

// Write implements P4Runtime.Write.
func (s *Server) Write(_ context.Context, req *p4.WriteRequest) (*p4.WriteResponse, error) {
	start := time.Now()
	err := s.write(req)
	s.metrics.writeDuration.Observe(time.Since(start).Seconds())
	s.metrics.writes.WithLabelValues(grpcstatus.Code(err).String()).Inc()
	if err != nil {
		return nil, err
	}
	return &p4.WriteResponse{}, nil
}

func (s *Server) write(req *p4.WriteRequest) error {
	if err := s.checkPrimary(req.DeviceId, req.Role, req.ElectionId); err != nil {
		return err
	}
	errs, berr := s.store.Write(req.Updates, req.Atomicity)
	if berr != nil {
		return grpcstatus.Error(tables.CodeOf(berr), berr.Error())
	}
	type key struct {
		typ    p4.Update_Type
		entity string
		code   codes.Code
	}
	counts := map[key]int{}
	failed := 0
	var firstErr error
	for i, u := range req.Updates {
		c := tables.CodeOf(errs[i])
		counts[key{u.GetType(), entityName(u.GetEntity()), c}]++
		if c != codes.OK {
			failed++
			if firstErr == nil {
				firstErr = errs[i]
			}
		}
	}
	for k, n := range counts {
		s.metrics.updates.WithLabelValues(k.typ.String(), k.entity, k.code.String()).Add(float64(n))
	}
	if failed == 0 {
		return nil
	}
	s.log.Debug("write batch with failed updates", zap.Int("updates", len(req.Updates)), zap.Int("failed", failed), zap.Error(firstErr))
	msg := fmt.Sprintf("%d of %d updates failed; first: %v", failed, len(req.Updates), firstErr)
	details, err := s.errorDetails(errs)
	if err != nil {
		return err
	}
	return grpcstatus.ErrorProto(&spb.Status{Code: int32(codes.Unknown), Message: msg, Details: details})
}

// maxDetailMessages bounds the failures reported with a message: the details travel in a gRPC
// trailer, which clients cap (16 MiB in grpc-go); beyond this many failures only the codes are sent.
const maxDetailMessages = 1000

// errorDetails builds one p4.v1.Error per update or request (OK ones shared).
func (s *Server) errorDetails(errs []error) ([]*anypb.Any, error) {
	out := make([]*anypb.Any, len(errs))
	bare := map[codes.Code]*anypb.Any{}
	failed := 0
	for i, e := range errs {
		if e == nil {
			out[i] = s.okDetail
			continue
		}
		c := tables.CodeOf(e)
		failed++
		if failed > maxDetailMessages {
			if a := bare[c]; a != nil {
				out[i] = a
				continue
			}
		}
		pe := &p4.Error{CanonicalCode: int32(c), Space: "calico-p4-softswitch"}
		if failed <= maxDetailMessages {
			pe.Message = e.Error()
			var te *tables.Error
			if errors.As(e, &te) {
				pe.Message = te.Msg
			}
		}
		a, err := anypb.New(pe)
		if err != nil {
			return nil, rpcErr(codes.Internal, "encoding error details: %v", err)
		}
		if failed > maxDetailMessages {
			bare[c] = a
		}
		out[i] = a
	}
	return out, nil
}

func entityName(e *p4.Entity) string {
	switch e.GetEntity().(type) {
	case *p4.Entity_TableEntry:
		return "table_entry"
	case *p4.Entity_ActionProfileMember:
		return "action_profile_member"
	case *p4.Entity_ActionProfileGroup:
		return "action_profile_group"
	case *p4.Entity_CounterEntry:
		return "counter_entry"
	case *p4.Entity_DirectCounterEntry:
		return "direct_counter_entry"
	case *p4.Entity_RegisterEntry:
		return "register_entry"
	case *p4.Entity_DigestEntry:
		return "digest_entry"
	case *p4.Entity_MeterEntry, *p4.Entity_DirectMeterEntry:
		return "meter"
	case nil:
		return "none"
	}
	return "other"
}

// Read implements P4Runtime.Read: every request entity is answered from one snapshot; responses are
// streamed in chunks of at most ReadChunkEntities entities / ReadChunkBytes bytes.
func (s *Server) Read(req *p4.ReadRequest, rs p4.P4Runtime_ReadServer) error {
	err := s.read(req, rs)
	s.metrics.reads.WithLabelValues(grpcstatus.Code(err).String()).Inc()
	return err
}

func (s *Server) read(req *p4.ReadRequest, rs p4.P4Runtime_ReadServer) error {
	if req.DeviceId != s.cfg.DeviceID {
		return rpcErr(codes.NotFound, "unknown device id %d", req.DeviceId)
	}
	st := s.store.ReadView()
	if st.Schema == nil {
		return rpcErr(codes.FailedPrecondition, "no forwarding pipeline config")
	}
	resp := &p4.ReadResponse{}
	size := 0
	flush := func() error {
		if len(resp.Entities) == 0 {
			return nil
		}
		s.metrics.readEntities.Add(float64(len(resp.Entities)))
		err := rs.Send(resp)
		resp = &p4.ReadResponse{Entities: make([]*p4.Entity, 0, len(resp.Entities))}
		size = 0
		return err
	}
	var sendErr error
	emit := func(e *p4.Entity) error {
		resp.Entities = append(resp.Entities, e)
		size += entitySize(e)
		if len(resp.Entities) >= s.cfg.ReadChunkEntities || size >= s.cfg.ReadChunkBytes {
			if err := flush(); err != nil {
				sendErr = err
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(req.Entities))
	failed := 0
	for i, ent := range req.Entities {
		if err := st.Read(ent, emit); err != nil {
			if sendErr != nil {
				return sendErr
			}
			errs[i] = err
			failed++
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if failed == 0 {
		return nil
	}
	details, err := s.errorDetails(errs)
	if err != nil {
		return err
	}
	return grpcstatus.ErrorProto(&spb.Status{Code: int32(codes.Unknown), Message: fmt.Sprintf("%d of %d read requests failed", failed, len(req.Entities)), Details: details})
}

// StreamChannel implements P4Runtime.StreamChannel: arbitration, packet-out, digest acks in; arbitration
// updates, packet-in, digest lists, idle-timeout notifications and stream errors out.
func (s *Server) StreamChannel(ss p4.P4Runtime_StreamChannelServer) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	st := &stream{id: s.streamSeq.Add(1), out: make(chan *p4.StreamMessageResponse, s.cfg.StreamQueue),
		ctrl: make(chan *p4.StreamMessageResponse, 256), ctx: ctx}
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for {
			var m *p4.StreamMessageResponse
			select {
			case m = <-st.ctrl:
			default:
				select {
				case m = <-st.ctrl:
				case m = <-st.out:
				case <-ctx.Done():
					return
				}
			}
			if err := ss.Send(m); err != nil {
				cancel()
				return
			}
		}
	}()
	defer func() {
		cancel()
		select {
		case <-senderDone:
		case <-time.After(5 * time.Second):
		}
	}()
	defer s.leave(st)
	for {
		req, err := ss.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch x := req.Update.(type) {
		case *p4.StreamMessageRequest_Arbitration:
			if err := s.arbitrate(st, x.Arbitration); err != nil {
				s.metrics.arbitration.WithLabelValues("rejected").Inc()
				s.log.Info("arbitration rejected", zap.Uint64("stream", st.id), zap.Error(err))
				return err
			}
		case *p4.StreamMessageRequest_Packet:
			s.handlePacketOut(st, x.Packet)
		case *p4.StreamMessageRequest_DigestAck:
			s.digests.ack(st, x.DigestAck)
		default:
			s.streamError(st, codes.Unimplemented, "unsupported stream message", &p4.StreamError_Other{Other: &p4.StreamOtherError{Other: req.GetOther()}})
		}
	}
}

func (s *Server) streamError(st *stream, c codes.Code, msg string, details any) {
	se := &p4.StreamError{CanonicalCode: int32(c), Message: msg, Space: "calico-p4-softswitch"}
	switch d := details.(type) {
	case *p4.StreamError_PacketOut:
		se.Details = d
	case *p4.StreamError_DigestListAck:
		se.Details = d
	case *p4.StreamError_Other:
		se.Details = d
	}
	s.metrics.streamErrors.WithLabelValues(c.String()).Inc()
	st.trySend(&p4.StreamMessageResponse{Update: &p4.StreamMessageResponse_Error{Error: se}})
}

// sweepLoop runs the idle-timeout / learner-expiry scan.
func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweepOnce()
		}
	}
}

// sweepOnce runs one scan and sends the idle-timeout notifications.
func (s *Server) sweepOnce() {
	res := s.store.Sweep()
	if res.Expired > 0 {
		s.metrics.expired.Add(float64(res.Expired))
	}
	if res.Collapsed > 0 {
		s.metrics.collapsed.Add(float64(res.Collapsed))
	}
	if len(res.Idle) == 0 {
		return
	}
	s.metrics.idleNotices.Add(float64(len(res.Idle)))
	st := s.store.Load()
	byTable := map[*tables.Table][]*p4.TableEntry{}
	var order []*tables.Table
	for _, ie := range res.Idle {
		te := st.EncodeEntry(ie.Table, ie.Entry)
		te.CounterData = nil
		if _, ok := byTable[ie.Table]; !ok {
			order = append(order, ie.Table)
		}
		byTable[ie.Table] = append(byTable[ie.Table], te)
	}
	now := time.Now().UnixNano()
	for _, t := range order {
		msg := &p4.StreamMessageResponse{Update: &p4.StreamMessageResponse_IdleTimeoutNotification{
			IdleTimeoutNotification: &p4.IdleTimeoutNotification{TableEntry: byTable[t], Timestamp: now}}}
		for _, p := range s.primaries() {
			p.trySend(msg)
		}
	}
}

// entitySize bounds the encoded size of an entity for chunking reads. Table entries, the bulk of large
// reads, are estimated from their byte strings (an over-estimate: every field counted with a generous
// tag/length overhead) instead of a full proto.Size walk.
func entitySize(e *p4.Entity) int {
	te := e.GetTableEntry()
	if te == nil || te.Action.GetActionProfileActionSet() != nil {
		return proto.Size(e)
	}
	n := 64 + len(te.Metadata)
	for _, m := range te.Match {
		n += 24
		switch x := m.FieldMatchType.(type) {
		case *p4.FieldMatch_Exact_:
			n += len(x.Exact.GetValue())
		case *p4.FieldMatch_Lpm:
			n += len(x.Lpm.GetValue())
		case *p4.FieldMatch_Ternary_:
			n += len(x.Ternary.GetValue()) + len(x.Ternary.GetMask())
		case *p4.FieldMatch_Range_:
			n += len(x.Range.GetLow()) + len(x.Range.GetHigh())
		case *p4.FieldMatch_Optional_:
			n += len(x.Optional.GetValue())
		default:
			return proto.Size(e)
		}
	}
	for _, p := range te.Action.GetAction().GetParams() {
		n += 16 + len(p.Value)
	}
	return n
}
