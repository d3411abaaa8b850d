// Package felixsim emulates Felix's side of the external dataplane driver protocol: it launches a driver
// binary exactly as Felix does (os/exec, no arguments, fd 3 = read end of the Felix→driver pipe, fd 4 =
// write end of the driver→Felix pipe, Felix's environment inherited, stdout/stderr copied), replays
// ToDataplane streams (JSONL, see Stream) with optional pauses at step markers, collects the driver's
// FromDataplane replies, and can SIGTERM the driver or simulate a Felix restart (new driver, new stream).
//
// It owns the emulator and the stream format; it must not know about calico-p4's internals (it talks to
// any driver through the pipes only).
package felixsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/projectcalico/calico/felix/proto"

	"github.com/calico-p4/calico-p4/driver/framing"
)

// Driver is one running driver process, as Felix sees it.
type Driver struct {
	cmd      *exec.Cmd
	toDriver *os.File // our end of fd 3
	frames   *framing.Writer

	mu       sync.Mutex
	replies  []*proto.FromDataplane
	readErr  error
	wake     chan struct{}
	exited   chan struct{}
	exitErr  error
	readDone chan struct{}
}

// Options configures Start.
type Options struct {
	// Env is the driver's environment; nil inherits this process's (as Felix does).
	Env []string
	// Stdout and Stderr receive the driver's output (Felix copies it to its own); nil discards it.
	Stdout, Stderr io.Writer
}

// Start launches path like Felix: no arguments, fd 3 / fd 4 pipes, environment inherited.
func Start(path string, opts Options) (*Driver, error) {
	felixToDriverR, felixToDriverW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	driverToFelixR, driverToFelixW, err := os.Pipe()
	if err != nil {
		felixToDriverR.Close()
		felixToDriverW.Close()
		return nil, err
	}
	cmd := exec.Command(path)
	cmd.Env = opts.Env
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = opts.Stdout
	cmd.Stderr = opts.Stderr
	cmd.ExtraFiles = []*os.File{felixToDriverR, driverToFelixW} // fd 3, fd 4
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{felixToDriverR, felixToDriverW, driverToFelixR, driverToFelixW} {
			f.Close()
		}
		return nil, fmt.Errorf("starting driver %s: %w", path, err)
	}
	// Like Felix: close our copies of the child's ends.
	felixToDriverR.Close()
	driverToFelixW.Close()

	d := &Driver{cmd: cmd, toDriver: felixToDriverW, frames: framing.NewWriter(felixToDriverW),
		wake: make(chan struct{}), exited: make(chan struct{}), readDone: make(chan struct{})}
	go func() {
		d.exitErr = cmd.Wait()
		close(d.exited)
	}()
	go d.readReplies(driverToFelixR)
	return d, nil
}

func (d *Driver) readReplies(r *os.File) {
	defer close(d.readDone)
	defer r.Close()
	fr := framing.NewReader(r)
	for {
		b, err := fr.ReadFrame()
		if err != nil {
			d.mu.Lock()
			if !errors.Is(err, io.EOF) {
				d.readErr = err
			}
			d.signal()
			d.mu.Unlock()
			return
		}
		msg := &proto.FromDataplane{}
		if err := msg.Unmarshal(b); err != nil {
			d.mu.Lock()
			d.readErr = fmt.Errorf("undecodable FromDataplane: %w", err)
			d.signal()
			d.mu.Unlock()
			return
		}
		d.mu.Lock()
		d.replies = append(d.replies, msg)
		d.signal()
		d.mu.Unlock()
	}
}

func (d *Driver) signal() {
	close(d.wake)
	d.wake = make(chan struct{})
}

// PID is the driver's process id.
func (d *Driver) PID() int { return d.cmd.Process.Pid }

// Send writes messages to fd 3 (blocking, like Felix).
func (d *Driver) Send(msgs ...*proto.ToDataplane) error {
	for _, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			return fmt.Errorf("encoding seq %d: %w", m.SequenceNumber, err)
		}
		if err := d.frames.WriteFrame(b); err != nil {
			return err
		}
	}
	return nil
}

// SendRaw writes bytes to fd 3 as they are (to inject broken frames).
func (d *Driver) SendRaw(b []byte) error {
	_, err := d.toDriver.Write(b)
	return err
}

// CloseInput closes Felix's end of fd 3 (what happens when Felix dies).
func (d *Driver) CloseInput() error { return d.toDriver.Close() }

// Terminate sends SIGTERM (what Felix does when it shuts down).
func (d *Driver) Terminate() error { return d.cmd.Process.Signal(syscall.SIGTERM) }

// Kill sends SIGKILL.
func (d *Driver) Kill() error { return d.cmd.Process.Kill() }

// Exited is closed when the driver process has exited.
func (d *Driver) Exited() <-chan struct{} { return d.exited }

// Wait waits for the driver to exit (or ctx) and returns its exit code.
func (d *Driver) Wait(ctx context.Context) (int, error) {
	select {
	case <-d.exited:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	d.toDriver.Close()
	if d.exitErr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(d.exitErr, &ee) {
		return ee.ExitCode(), nil
	}
	return -1, d.exitErr
}

// Stop does what Felix does on shutdown: SIGTERM, wait up to grace, then SIGKILL. It returns the exit code.
func (d *Driver) Stop(grace time.Duration) (int, error) {
	select {
	case <-d.exited:
	default:
		_ = d.Terminate()
		select {
		case <-d.exited:
		case <-time.After(grace):
			_ = d.Kill()
		}
	}
	return d.Wait(context.Background())
}

// Replies returns the FromDataplane messages received so far.
func (d *Driver) Replies() []*proto.FromDataplane {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*proto.FromDataplane(nil), d.replies...)
}

// WaitReplies waits until cond holds for the replies so far, the driver's fd 4 closes, or ctx ends.
func (d *Driver) WaitReplies(ctx context.Context, cond func([]*proto.FromDataplane) bool) ([]*proto.FromDataplane, error) {
	for {
		d.mu.Lock()
		replies := append([]*proto.FromDataplane(nil), d.replies...)
		wake, readErr := d.wake, d.readErr
		d.mu.Unlock()
		if cond(replies) {
			return replies, nil
		}
		select {
		case <-d.readDone:
			if cond(d.Replies()) {
				return d.Replies(), nil
			}
			return replies, fmt.Errorf("driver closed fd 4 (read error: %v) before the condition held", readErr)
		default:
		}
		select {
		case <-wake:
		case <-d.readDone:
		case <-ctx.Done():
			return replies, fmt.Errorf("waiting for replies (have %d): %w", len(replies), ctx.Err())
		}
	}
}

// ReplayOptions controls Replay.
type ReplayOptions struct {
	// AtStep, if set, is called at each step marker before the step's messages are sent (pause there).
	AtStep func(ctx context.Context, step string) error
	// OnSend, if set, is called after each message is written.
	OnSend func(msg *proto.ToDataplane)
}

// Replay sends a stream's messages to the driver in order, calling AtStep at step markers.
func Replay(ctx context.Context, d *Driver, s *Stream, opts ReplayOptions) error {
	for _, it := range s.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if it.Msg == nil {
			if opts.AtStep != nil {
				if err := opts.AtStep(ctx, it.Step); err != nil {
					return err
				}
			}
			continue
		}
		if err := d.Send(it.Msg); err != nil {
			return fmt.Errorf("line %d (seq %d): %w", it.Line, it.Msg.SequenceNumber, err)
		}
		if opts.OnSend != nil {
			opts.OnSend(it.Msg)
		}
	}
	return nil
}

// Restart simulates a Felix restart: the old driver is stopped as Felix stops it (SIGTERM, then SIGKILL
// after grace) and a new driver is started; the caller replays a new stream to it.
func Restart(old *Driver, path string, opts Options, grace time.Duration) (*Driver, int, error) {
	code, err := old.Stop(grace)
	if err != nil {
		return nil, code, err
	}
	d, err := Start(path, opts)
	return d, code, err
}
