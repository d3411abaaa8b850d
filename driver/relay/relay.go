// Package relay is the calico-p4-driver process: what Felix execs. It relays Felix's frames from fd 3 to
// the manager over the infrastructure API and the manager's frames back to fd 4.
//
// It owns connecting (with backoff, bounded), the relay loops, and the SIGTERM drain. It must not hold
// state or decode Felix's messages: frames are opaque bytes (only their length prefix is read).
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/calico-p4/calico-p4/driver/framing"
	"github.com/calico-p4/calico-p4/driver/infraapi"
)

// Config configures one relay run.
type Config struct {
	// Manager is the manager's address (infraapi.ParseAddress syntax).
	Manager string
	// TLS: required for a TCP manager address, ignored for unix sockets.
	TLS infraapi.TLSFiles
	// ConnectTimeout bounds connecting (default 30 s); DrainTimeout bounds the SIGTERM drain (default 1 s).
	ConnectTimeout time.Duration
	DrainTimeout   time.Duration
	Version        string
	Log            *zap.Logger
}

// ErrConnect wraps failures to reach the manager within ConnectTimeout.
var ErrConnect = errors.New("cannot reach calico-p4-manager")

// Result says how a relay ended.
type Result struct {
	// Reason is a one-line reason.
	Reason string
	// Clean is true when the end is normal (Felix closed the pipe, SIGTERM): exit 0.
	Clean bool
}

// Run relays between felixIn (fd 3) / felixOut (fd 4) and the manager until Felix closes the pipe, the
// manager ends the session, a framing error, or terminate fires (SIGTERM: drain for up to DrainTimeout).
func Run(ctx context.Context, cfg Config, felixIn io.Reader, felixOut io.Writer, terminate <-chan os.Signal) (Result, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = time.Second
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}

	// Frames from Felix are read from the start, so that a SIGTERM during connect still sees them queued.
	frames := make(chan []byte, 256)
	readErr := make(chan error, 1)
	go func() {
		r := framing.NewReader(felixIn)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				readErr <- err
				close(frames)
				return
			}
			frames <- f
		}
	}()

	conn, stream, ack, err := connect(ctx, cfg, log, terminate)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	log.Info("Connected to calico-p4-manager", zap.String("manager", cfg.Manager),
		zap.Uint64("session", ack.GetSessionId()), zap.String("managerVersion", ack.GetManagerVersion()))

	// Manager → Felix.
	recvDone := make(chan error, 1)
	go func() {
		w := framing.NewWriter(felixOut)
		for {
			m, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			for _, f := range m.GetFromDataplane().GetFrames() {
				if err := w.WriteFrame(f); err != nil {
					recvDone <- fmt.Errorf("writing to Felix (fd 4): %w", err)
					return
				}
			}
		}
	}()

	// Felix → manager, batching whatever is already queued into one gRPC message.
	var drainDeadline <-chan time.Time
	var idle *time.Timer
	send := func(first []byte) error {
		batch := [][]byte{first}
		size := len(first)
	more:
		for size < infraapi.BatchBytes {
			select {
			case f, ok := <-frames:
				if !ok {
					break more
				}
				batch = append(batch, f)
				size += len(f)
			default:
				break more
			}
		}
		return stream.Send(&infraapi.DriverMessage{Msg: &infraapi.DriverMessage_ToDataplane{
			ToDataplane: &infraapi.Frames{Frames: batch}}})
	}
	finish := func(res Result, goodbye *infraapi.Goodbye, err error) (Result, error) {
		if goodbye != nil {
			_ = stream.Send(&infraapi.DriverMessage{Msg: &infraapi.DriverMessage_Goodbye{Goodbye: goodbye}})
			_ = stream.CloseSend()
			// Wait (briefly) for the manager to end the stream: it has then received everything sent.
			select {
			case <-recvDone:
			case <-time.After(500 * time.Millisecond):
			}
		}
		return res, err
	}
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				rerr := <-readErr
				if errors.Is(rerr, io.EOF) {
					return finish(Result{Reason: "Felix closed the pipe (fd 3)", Clean: true},
						&infraapi.Goodbye{Reason: "felix closed the pipe"}, nil)
				}
				reason := framing.Reason(rerr)
				err := fmt.Errorf("framing error on fd 3 (%s): %w", reason, rerr)
				return finish(Result{Reason: err.Error()},
					&infraapi.Goodbye{Reason: err.Error(), FramingError: reason != "io"}, err)
			}
			if err := send(f); err != nil {
				return finish(Result{}, nil, fmt.Errorf("sending to calico-p4-manager: %w", sessionErr(err, recvDone)))
			}
			if idle != nil {
				idle.Reset(100 * time.Millisecond)
			}
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				err = errors.New("calico-p4-manager ended the session")
			}
			return Result{}, fmt.Errorf("session with calico-p4-manager lost: %w", err)
		case <-terminate:
			if drainDeadline == nil {
				log.Info("SIGTERM: relaying what is left in the pipe, then exiting", zap.Duration("max", cfg.DrainTimeout))
				drainDeadline = time.After(cfg.DrainTimeout)
				idle = time.NewTimer(100 * time.Millisecond)
			}
		case <-idleC(idle):
			return finish(Result{Reason: "SIGTERM (pipe drained)", Clean: true}, &infraapi.Goodbye{Reason: "SIGTERM"}, nil)
		case <-drainDeadline:
			return finish(Result{Reason: "SIGTERM (drain time over)", Clean: true}, &infraapi.Goodbye{Reason: "SIGTERM"}, nil)
		case <-ctx.Done():
			return finish(Result{Reason: "stopped", Clean: true}, &infraapi.Goodbye{Reason: "stopped"}, nil)
		}
	}
}

func idleC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// sessionErr prefers the receive side's error (it carries the manager's status) over Send's io.EOF.
func sessionErr(sendErr error, recvDone chan error) error {
	if errors.Is(sendErr, io.EOF) {
		select {
		case err := <-recvDone:
			recvDone <- err
			return err
		case <-time.After(time.Second):
		}
	}
	return sendErr
}

// connect dials, opens the session and exchanges Hello / HelloAck, retrying with backoff for up to
// ConnectTimeout. A SIGTERM while connecting ends the attempt.
func connect(ctx context.Context, cfg Config, log *zap.Logger, terminate <-chan os.Signal) (*grpc.ClientConn, infraapi.FelixRelay_SessionClient, *infraapi.HelloAck, error) {
	addr, err := infraapi.ParseAddress(cfg.Manager)
	if err != nil {
		return nil, nil, nil, err
	}
	creds := insecure.NewCredentials()
	if addr.Network == "tcp" {
		host, _, _ := net.SplitHostPort(addr.Addr)
		tcfg, err := infraapi.ClientTLS(cfg.TLS, host)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("manager %s is TCP, which needs mTLS (CALICO_P4_TLS_CERT, _KEY, _CA): %w", cfg.Manager, err)
		}
		creds = credentials.NewTLS(tcfg)
	}
	hostname, _ := os.Hostname()
	hello := &infraapi.Hello{ProtocolVersion: infraapi.ProtocolVersion, DriverVersion: cfg.Version,
		FelixPid: int32(os.Getppid()), DriverPid: int32(os.Getpid()), Hostname: hostname}

	deadline := time.Now().Add(cfg.ConnectTimeout)
	backoff := 100 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		conn, stream, ack, err := tryConnect(ctx, addr, creds, hello, min(5*time.Second, time.Until(deadline)))
		if err == nil {
			return conn, stream, ack, nil
		}
		last = err
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("calico-p4-manager not reachable yet; retrying", zap.String("manager", cfg.Manager),
				zap.Int("attempt", attempt), zap.Error(err))
		}
		wait := min(backoff, time.Until(deadline))
		if wait <= 0 {
			break
		}
		select {
		case <-time.After(wait):
		case <-terminate:
			return nil, nil, nil, fmt.Errorf("%w at %s: SIGTERM while connecting (last error: %v)", ErrConnect, cfg.Manager, last)
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		}
		backoff = min(backoff*2, 2*time.Second)
	}
	return nil, nil, nil, fmt.Errorf("%w at %s after %s: %v", ErrConnect, cfg.Manager, cfg.ConnectTimeout, last)
}

func tryConnect(ctx context.Context, addr infraapi.Address, creds credentials.TransportCredentials, hello *infraapi.Hello, timeout time.Duration) (*grpc.ClientConn, infraapi.FelixRelay_SessionClient, *infraapi.HelloAck, error) {
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(infraapi.MaxMessageSize), grpc.MaxCallSendMsgSize(infraapi.MaxMessageSize)))
	if err != nil {
		return nil, nil, nil, err
	}
	// The stream lives as long as the process; only the handshake is bounded by the timeout.
	stream, err := infraapi.NewFelixRelayClient(conn).Session(ctx)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	type result struct {
		ack *infraapi.HelloAck
		err error
	}
	done := make(chan result, 1)
	go func() {
		if err := stream.Send(&infraapi.DriverMessage{Msg: &infraapi.DriverMessage_Hello{Hello: hello}}); err != nil {
			_, rerr := stream.Recv()
			done <- result{err: errors.Join(err, rerr)}
			return
		}
		m, err := stream.Recv()
		if err != nil {
			done <- result{err: err}
			return
		}
		if m.GetHelloAck() == nil {
			done <- result{err: errors.New("manager did not answer Hello with HelloAck")}
			return
		}
		done <- result{ack: m.GetHelloAck()}
	}()
	var once sync.Once
	fail := func(err error) (*grpc.ClientConn, infraapi.FelixRelay_SessionClient, *infraapi.HelloAck, error) {
		once.Do(func() { conn.Close() })
		return nil, nil, nil, err
	}
	select {
	case r := <-done:
		if r.err != nil {
			return fail(r.err)
		}
		return conn, stream, r.ack, nil
	case <-time.After(timeout):
		return fail(fmt.Errorf("no HelloAck within %s", timeout))
	}
}
