package p4rt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Uint128 is a P4Runtime election id.
type Uint128 struct{ High, Low uint64 }

func (u Uint128) proto() *p4v1.Uint128 { return &p4v1.Uint128{High: u.High, Low: u.Low} }

func fromProto(p *p4v1.Uint128) Uint128 { return Uint128{High: p.GetHigh(), Low: p.GetLow()} }

func (u Uint128) String() string {
	if u.High == 0 {
		return fmt.Sprint(u.Low)
	}
	return fmt.Sprintf("%#x:%016x", u.High, u.Low)
}

// TLSConfig configures TLS to the target. With only CAFile the server is
// verified; with CertFile and KeyFile too the client authenticates itself
// (mutual TLS).
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the target's certificate
	// (empty: the system roots).
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key (mTLS).
	CertFile, KeyFile string
	// ServerName overrides the name verified in the target's certificate
	// (default: the host part of the address).
	ServerName string
}

// Config configures a Client.
type Config struct {
	// Address of the target: "host:port", "unix:///path/to/sock" or an
	// absolute socket path.
	Address string
	// DeviceID is the P4Runtime device id (infrap4d and the softswitch use 1).
	DeviceID uint64
	// ElectionID is this controller's election id; the highest live one is
	// primary.
	ElectionID Uint128
	// Role is the P4Runtime role ("" is the default, full-access role).
	Role string
	// TLS enables TLS (nil: plaintext, for unix sockets and loopback).
	TLS *TLSConfig
	// Logger (nil: no logging).
	Logger *zap.Logger
	// Metrics (nil: not collected).
	Metrics *Metrics
	// MinBackoff and MaxBackoff bound the waits between reconnection and
	// re-arbitration attempts (defaults 100ms and 10s).
	MinBackoff, MaxBackoff time.Duration
	// MaxMsgSize bounds gRPC messages both ways (default 256 MiB: pipeline
	// configs and large reads).
	MaxMsgSize int
}

// Status is the client's view of its session with the target.
type Status struct {
	// Connected is true while the stream channel is up.
	Connected bool
	// Primary is true while the target has confirmed this client as primary.
	Primary bool
	// Epoch increases every time the client becomes primary. Anything may
	// have happened to the target between two epochs (a restart, another
	// controller's writes): whoever relies on the target's state re-reads it
	// at a new epoch.
	Epoch uint64
	// HighestElectionID is the highest election id the target has seen.
	HighestElectionID Uint128
	// LastError is the error that ended the last stream (nil if none).
	LastError error
}

// ErrNotPrimary is returned by writes attempted while not primary.
var ErrNotPrimary = errors.New("p4rt: not the primary controller")

// Client is a P4Runtime session with one device. It keeps its stream
// channel open, arbitrating for primary, and reconnects when the target goes
// away. It is safe for concurrent use.
type Client struct {
	cfg  Config
	log  *zap.Logger
	m    *Metrics
	conn *grpc.ClientConn
	rt   p4v1.P4RuntimeClient

	cancel context.CancelFunc
	done   chan struct{}
	rearb  chan struct{}

	mu      sync.Mutex
	st      Status
	waiters []chan struct{}
}

// Dial creates a client and starts arbitrating in the background; it does
// not wait for the target (see WaitPrimary). The session ends when ctx is
// done or Close is called.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("p4rt: no target address")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.MaxMsgSize <= 0 {
		cfg.MaxMsgSize = 256 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	target := cfg.Address
	if strings.HasPrefix(target, "/") {
		target = "unix://" + target
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		tc, err := cfg.TLS.build()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMsgSize), grpc.MaxCallSendMsgSize(cfg.MaxMsgSize)))
	if err != nil {
		return nil, fmt.Errorf("p4rt: dial %s: %w", cfg.Address, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Client{
		cfg: cfg, log: cfg.Logger.With(zap.String("target", cfg.Address), zap.Uint64("device_id", cfg.DeviceID),
			zap.Stringer("election_id", cfg.ElectionID), zap.String("role", cfg.Role)),
		m: cfg.Metrics, conn: conn, rt: p4v1.NewP4RuntimeClient(conn),
		cancel: cancel, done: make(chan struct{}), rearb: make(chan struct{}, 1),
	}
	go c.run(ctx)
	return c, nil
}

func (t *TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("p4rt: read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("p4rt: no certificates in CA bundle %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("p4rt: mTLS needs both a client certificate and a key")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("p4rt: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Close ends the session (the target drops primary for this client) and
// releases the connection.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return c.conn.Close()
}

// Config returns the client's configuration (with defaults filled in).
func (c *Client) Config() Config { return c.cfg }

// Status returns the current session status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// IsPrimary reports whether the client may write.
func (c *Client) IsPrimary() bool { return c.Status().Primary }

// Changed returns a channel that is closed at the next status change.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.waiters = append(c.waiters, ch)
	return ch
}

// WaitPrimary blocks until the client is primary or ctx is done.
func (c *Client) WaitPrimary(ctx context.Context) (Status, error) {
	for {
		ch := c.Changed()
		if st := c.Status(); st.Primary {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			st := c.Status()
			if st.LastError != nil {
				return st, fmt.Errorf("p4rt: waiting to become primary: %w (last stream error: %v)", ctx.Err(), st.LastError)
			}
			return st, fmt.Errorf("p4rt: waiting to become primary: %w", ctx.Err())
		}
	}
}

func (c *Client) update(f func(*Status)) {
	c.mu.Lock()
	old := c.st
	f(&c.st)
	st := c.st
	var ws []chan struct{}
	if st.Connected != old.Connected || st.Primary != old.Primary || st.Epoch != old.Epoch || st.HighestElectionID != old.HighestElectionID {
		ws, c.waiters = c.waiters, nil
	}
	c.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
	if st.Primary != old.Primary {
		if st.Primary {
			c.m.Primary.Set(1)
			c.m.PrimaryChanges.WithLabelValues("primary").Inc()
			c.log.Info("Became primary controller", zap.Uint64("epoch", st.Epoch))
		} else {
			c.m.Primary.Set(0)
			c.m.PrimaryChanges.WithLabelValues("backup").Inc()
			c.log.Warn("Not primary controller any more: writes stop until primary again",
				zap.Stringer("highest_election_id", st.HighestElectionID), zap.Error(st.LastError))
		}
	}
	if st.Connected != old.Connected {
		if st.Connected {
			c.m.Connected.Set(1)
		} else {
			c.m.Connected.Set(0)
		}
	}
}

// lostPrimary is called when the target rejects a write as not primary.
func (c *Client) lostPrimary() {
	c.update(func(s *Status) { s.Primary = false })
	select {
	case c.rearb <- struct{}{}:
	default:
	}
}

type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	// Up to 25% jitter so that several clients do not retry in step.
	return b.cur - time.Duration(rand.Int64N(int64(b.cur)/4+1))
}

func (b *backoff) reset() { b.cur = 0 }

func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	bo := backoff{min: c.cfg.MinBackoff, max: c.cfg.MaxBackoff}
	for {
		err := c.stream(ctx, &bo)
		c.update(func(s *Status) {
			s.Connected, s.Primary = false, false
			if ctx.Err() == nil {
				s.LastError = err
			}
		})
		if ctx.Err() != nil {
			return
		}
		wait := bo.next()
		c.log.Info("P4Runtime stream down; reconnecting", zap.Error(err), zap.Duration("after", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (c *Client) arbitration() *p4v1.StreamMessageRequest {
	arb := &p4v1.MasterArbitrationUpdate{DeviceId: c.cfg.DeviceID, ElectionId: c.cfg.ElectionID.proto()}
	if c.cfg.Role != "" {
		arb.Role = &p4v1.Role{Name: c.cfg.Role}
	}
	return &p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: arb}}
}

// stream runs one stream channel until it fails.
func (c *Client) stream(ctx context.Context, bo *backoff) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.rt.StreamChannel(sctx)
	if err != nil {
		return fmt.Errorf("open stream channel: %w", err)
	}
	c.m.StreamReconnects.Inc()
	if err := s.Send(c.arbitration()); err != nil {
		return fmt.Errorf("send arbitration: %w", err)
	}
	msgs := make(chan *p4v1.StreamMessageResponse)
	errc := make(chan error, 1)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- r:
			case <-sctx.Done():
				return
			}
		}
	}()
	rebo := backoff{min: c.cfg.MinBackoff, max: c.cfg.MaxBackoff}
	var retry <-chan time.Time
	for {
		select {
		case <-sctx.Done():
			return sctx.Err()
		case err := <-errc:
			if err == io.EOF {
				return errors.New("target closed the stream channel")
			}
			return fmt.Errorf("stream channel: %w", err)
		case <-retry:
			retry = nil
			if err := s.Send(c.arbitration()); err != nil {
				return fmt.Errorf("send arbitration: %w", err)
			}
		case <-c.rearb:
			if err := s.Send(c.arbitration()); err != nil {
				return fmt.Errorf("send arbitration: %w", err)
			}
		case r := <-msgs:
			switch u := r.GetUpdate().(type) {
			case *p4v1.StreamMessageResponse_Arbitration:
				arb := u.Arbitration
				if arb.GetDeviceId() != c.cfg.DeviceID {
					c.log.Warn("Arbitration update for another device ignored", zap.Uint64("got_device_id", arb.GetDeviceId()))
					continue
				}
				primary := arb.GetStatus().GetCode() == int32(code.Code_OK)
				result := "primary"
				switch {
				case primary:
				case arb.GetStatus().GetCode() == int32(code.Code_NOT_FOUND):
					result = "no_primary"
				default:
					result = "backup"
				}
				c.m.Arbitrations.WithLabelValues(result).Inc()
				c.update(func(s *Status) {
					s.Connected = true
					if primary && !s.Primary {
						s.Epoch++
					}
					s.Primary = primary
					s.HighestElectionID = fromProto(arb.GetElectionId())
				})
				if primary {
					bo.reset()
					rebo.reset()
					retry = nil
				} else if retry == nil {
					// Backup: ask again later; we become primary if the
					// target's highest election id drops to ours or below
					// (a restart, or a controller that lowered its id).
					retry = time.After(rebo.next())
				}
			case *p4v1.StreamMessageResponse_Error:
				c.log.Warn("Stream error from target", zap.String("message", u.Error.GetMessage()),
					zap.Int32("code", u.Error.GetCanonicalCode()))
			default:
				// Packet-ins, digests and idle-timeout notifications are not
				// this client's business.
			}
		}
	}
}

func (c *Client) observe(rpc string, start time.Time, err error) {
	c.m.RPCDuration.WithLabelValues(rpc).Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.RPCErrors.WithLabelValues(rpc, status.Code(err).String()).Inc()
	}
}

// Capabilities returns the target's P4Runtime API version.
func (c *Client) Capabilities(ctx context.Context) (string, error) {
	start := time.Now()
	r, err := c.rt.Capabilities(ctx, &p4v1.CapabilitiesRequest{})
	c.observe("Capabilities", start, err)
	if err != nil {
		return "", fmt.Errorf("p4rt: capabilities: %w", err)
	}
	return r.GetP4RuntimeApiVersion(), nil
}

// UpdateStatus is the outcome of one update of a failed Write.
type UpdateStatus struct {
	Code    codes.Code
	Message string
	Space   string
	// VendorCode is the target-specific code (p4.v1.Error.code).
	VendorCode int32
}

// WriteError is a failed Write. When the target reported per-update
// outcomes, Updates has one per update sent, in order.
type WriteError struct {
	Code    codes.Code
	Message string
	Updates []UpdateStatus
	err     error
}

func (e *WriteError) Error() string {
	if len(e.Updates) == 0 {
		return fmt.Sprintf("p4rt: write: %s: %s", e.Code, e.Message)
	}
	failed := 0
	first := ""
	for i, u := range e.Updates {
		if u.Code != codes.OK {
			if failed == 0 {
				first = fmt.Sprintf("update %d: %s: %s", i, u.Code, u.Message)
			}
			failed++
		}
	}
	return fmt.Sprintf("p4rt: write: %d of %d updates failed (first: %s)", failed, len(e.Updates), first)
}

func (e *WriteError) Unwrap() error { return e.err }

// Write sends one batch (CONTINUE_ON_ERROR). It refuses to send while not
// primary (ErrNotPrimary); a PERMISSION_DENIED from the target marks the
// client not primary and re-arbitrates. Failures are *WriteError.
func (c *Client) Write(ctx context.Context, updates []*p4v1.Update) error {
	if !c.IsPrimary() {
		return ErrNotPrimary
	}
	req := &p4v1.WriteRequest{DeviceId: c.cfg.DeviceID, Role: c.cfg.Role, ElectionId: c.cfg.ElectionID.proto(),
		Updates: updates, Atomicity: p4v1.WriteRequest_CONTINUE_ON_ERROR}
	start := time.Now()
	_, err := c.rt.Write(ctx, req)
	c.observe("Write", start, err)
	return c.writeError(err, len(updates))
}

// WriteEncoded is Write for updates already encoded as `updates` elements
// of a WriteRequest (see Info.AppendUpdate): n is their number. The client
// adds device id, role, election id and atomicity and sends the bytes as
// they are, which saves building and marshalling messages per update.
// updates is not used after WriteEncoded returns.
// With ROLLBACK_ON_ERROR or DATAPLANE_ATOMIC a failed request changes
// nothing on a conforming target: the failing updates carry their error and
// the others ABORTED.
func (c *Client) WriteEncoded(ctx context.Context, updates []byte, n int, atomicity p4v1.WriteRequest_Atomicity) error {
	if !c.IsPrimary() {
		return ErrNotPrimary
	}
	hdr, _ := proto.Marshal(&p4v1.WriteRequest{DeviceId: c.cfg.DeviceID, Role: c.cfg.Role, ElectionId: c.cfg.ElectionID.proto(),
		Atomicity: atomicity})
	buf := requestBuffers.Get().(*[]byte)
	req := append(append((*buf)[:0], hdr...), updates...)
	start := time.Now()
	err := c.conn.Invoke(ctx, p4v1.P4Runtime_Write_FullMethodName, &encoded{req}, &p4v1.WriteResponse{}, grpc.ForceCodec(passthrough{}))
	c.observe("Write", start, err)
	// A call that got its response has sent the whole request: the buffer can serve the next Write.
	// After an error (a cancelled context, a broken connection) the transport may still hold it.
	if err == nil && cap(req) <= maxPooledRequest {
		*buf = req[:0]
		requestBuffers.Put(buf)
	}
	return c.writeError(err, n)
}

// requestBuffers recycles WriteEncoded's request buffers (one incremental sync of 1000 updates is
// ≈ 64 KiB, garbage for every sync otherwise); buffers above maxPooledRequest go back to the GC.
var requestBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledRequest = 4 << 20

// encoded is a message already in wire form.
type encoded struct{ b []byte }

// passthrough sends encoded as is and (un)marshals anything else as protobuf.
type passthrough struct{}

func (passthrough) Marshal(v any) ([]byte, error) {
	if e, ok := v.(*encoded); ok {
		return e.b, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("p4rt: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (passthrough) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("p4rt: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (passthrough) Name() string { return "proto" }

// writeError turns a Write RPC error into a *WriteError (nil for nil).
func (c *Client) writeError(err error, n int) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	we := &WriteError{Code: st.Code(), Message: st.Message(), err: err}
	if st.Code() == codes.PermissionDenied {
		c.lostPrimary()
		we.err = errors.Join(ErrNotPrimary, err)
		return we
	}
	for _, d := range st.Proto().GetDetails() {
		pe := &p4v1.Error{}
		if d.UnmarshalTo(pe) != nil {
			continue
		}
		we.Updates = append(we.Updates, UpdateStatus{Code: codes.Code(pe.GetCanonicalCode()), Message: pe.GetMessage(),
			Space: pe.GetSpace(), VendorCode: pe.GetCode()})
	}
	if len(we.Updates) != 0 && len(we.Updates) != n {
		c.log.Warn("Target returned per-update errors that do not match the batch; ignoring them",
			zap.Int("updates", n), zap.Int("errors", len(we.Updates)))
		we.Updates = nil
	}
	return we
}

// Read streams the entities matching the (wildcard) entities given, calling
// fn for each.
func (c *Client) Read(ctx context.Context, entities []*p4v1.Entity, fn func(*p4v1.Entity) error) error {
	start := time.Now()
	err := c.read(ctx, entities, fn)
	c.observe("Read", start, err)
	return err
}

func (c *Client) read(ctx context.Context, entities []*p4v1.Entity, fn func(*p4v1.Entity) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.rt.Read(ctx, &p4v1.ReadRequest{DeviceId: c.cfg.DeviceID, Role: c.cfg.Role, Entities: entities})
	if err != nil {
		return fmt.Errorf("p4rt: read: %w", err)
	}
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("p4rt: read: %w", err)
		}
		for _, e := range r.GetEntities() {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// GetPipeline returns the target's forwarding pipeline config (the parts
// selected by rt). A target without a pipeline returns FAILED_PRECONDITION
// or an empty config.
func (c *Client) GetPipeline(ctx context.Context, rt p4v1.GetForwardingPipelineConfigRequest_ResponseType) (*p4v1.ForwardingPipelineConfig, error) {
	start := time.Now()
	r, err := c.rt.GetForwardingPipelineConfig(ctx, &p4v1.GetForwardingPipelineConfigRequest{DeviceId: c.cfg.DeviceID, ResponseType: rt})
	c.observe("GetForwardingPipelineConfig", start, err)
	if err != nil {
		return nil, fmt.Errorf("p4rt: get pipeline: %w", err)
	}
	return r.GetConfig(), nil
}

// SetPipeline sends SetForwardingPipelineConfig (primary only).
func (c *Client) SetPipeline(ctx context.Context, action p4v1.SetForwardingPipelineConfigRequest_Action, cfg *p4v1.ForwardingPipelineConfig) error {
	if !c.IsPrimary() {
		return ErrNotPrimary
	}
	start := time.Now()
	_, err := c.rt.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: c.cfg.DeviceID, Role: c.cfg.Role, ElectionId: c.cfg.ElectionID.proto(), Action: action, Config: cfg})
	c.observe("SetForwardingPipelineConfig", start, err)
	if err != nil {
		if status.Code(err) == codes.PermissionDenied {
			c.lostPrimary()
			return fmt.Errorf("p4rt: set pipeline (%s): %w", action, errors.Join(ErrNotPrimary, err))
		}
		return fmt.Errorf("p4rt: set pipeline (%s): %w", action, err)
	}
	c.m.PipelinePushes.WithLabelValues(action.String()).Inc()
	return nil
}
