package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/projectcalico/calico/felix/proto"

	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

// FelixStopGrace is how long Felix waits after SIGTERM before killing its driver.
const FelixStopGrace = 4 * time.Second

// Felix is the emulated Felix of one node: one driver process (the real calico-p4-driver) at a time, fed a
// compiled scenario step by step, waiting after each step until the manager has applied it.
type Felix struct {
	bin     string
	mgr     *Manager
	log     *logBuffer
	tee     io.Writer
	d       *felixsim.Driver
	stream  *scenario.Stream
	pos     int     // next item of stream to send
	step    int     // steps sent (0 = snapshot only)
	lastSeq uint64  // sequence number of the last message sent
	session float64 // the manager's session count this driver's session has
}

// StartFelix starts a driver connected to mgr (CALICO_P4_MANAGER) and feeds it the snapshot of st (through
// InSync), then waits until the manager has applied it.
func StartFelix(ctx context.Context, bin Binaries, mgr *Manager, st *scenario.Stream, tee io.Writer) (*Felix, error) {
	f := &Felix{bin: bin.Path(DriverBin), mgr: mgr, log: &logBuffer{max: MaxLog}, tee: tee}
	if err := f.start(ctx, st); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Felix) start(ctx context.Context, st *scenario.Stream) error {
	before, err := f.mgr.Sessions(ctx)
	if err != nil {
		return fmt.Errorf("felix: manager metrics: %w", err)
	}
	env := append(os.Environ(), "CALICO_P4_MANAGER="+f.mgr.Listen, "CALICO_P4_CONNECT_TIMEOUT=20s")
	var out io.Writer = f.log
	if f.tee != nil {
		out = io.MultiWriter(f.log, f.tee)
	}
	d, err := felixsim.Start(f.bin, felixsim.Options{Env: env, Stdout: out, Stderr: out})
	if err != nil {
		return err
	}
	f.d, f.stream, f.pos, f.step, f.session = d, st, 0, 0, before+1
	return f.sendUntilStep(ctx)
}

// Restart is a Felix restart: the driver is stopped as Felix stops it (SIGTERM, then SIGKILL) and a new
// driver gets st's snapshot (st may be the same stream: same model; or a new scenario).
func (f *Felix) Restart(ctx context.Context, st *scenario.Stream) error {
	if _, err := f.d.Stop(FelixStopGrace); err != nil {
		return fmt.Errorf("felix: stopping the driver: %w", err)
	}
	return f.start(ctx, st)
}

// SetManager points the next (re)started driver at another manager process.
func (f *Felix) SetManager(m *Manager) { f.mgr = m }

// Steps is the number of steps of the current stream; Step the number already sent.
func (f *Felix) Steps() int { return len(f.stream.States) - 1 }

// Step is the number of steps sent.
func (f *Felix) Step() int { return f.step }

// Stream is the stream being replayed.
func (f *Felix) Stream() *scenario.Stream { return f.stream }

// Driver is the current driver process.
func (f *Felix) Driver() *felixsim.Driver { return f.d }

// Log is the drivers' output.
func (f *Felix) Log() string { return f.log.String() }

// NextStep sends the next step's messages and waits until the manager has applied them; it returns the
// step's title.
func (f *Felix) NextStep(ctx context.Context) (string, error) {
	if f.pos >= len(f.stream.Items) {
		return "", fmt.Errorf("felix: no step after %d", f.step)
	}
	title := f.stream.Items[f.pos].Step
	f.pos++ // the marker
	f.step++
	return title, f.sendUntilStep(ctx)
}

// sendUntilStep sends messages up to the next step marker (or the end) and waits for the apply.
func (f *Felix) sendUntilStep(ctx context.Context) error {
	var batch []*proto.ToDataplane
	for f.pos < len(f.stream.Items) && f.stream.Items[f.pos].Step == "" {
		batch = append(batch, f.stream.Items[f.pos].Msg)
		f.pos++
	}
	if len(batch) > 0 {
		if err := f.d.Send(batch...); err != nil {
			return fmt.Errorf("felix: sending to the driver: %w\n%s", err, tail(f.Log(), 4000))
		}
		f.lastSeq = batch[len(batch)-1].SequenceNumber
	}
	return f.WaitApplied(ctx)
}

// WaitApplied waits until the manager reflects everything sent so far.
func (f *Felix) WaitApplied(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return f.mgr.WaitApplied(ctx, f.session, f.lastSeq, f.alive)
}

func (f *Felix) alive() error {
	select {
	case <-f.d.Exited():
		code, _ := f.d.Wait(context.Background())
		return fmt.Errorf("driver exited (code %d):\n%s", code, tail(f.Log(), 4000))
	default:
		return nil
	}
}

// Replies are the FromDataplane messages the current driver got back.
func (f *Felix) Replies() []*proto.FromDataplane { return f.d.Replies() }

// Stop stops the driver as Felix does on shutdown.
func (f *Felix) Stop() error {
	if f.d == nil {
		return nil
	}
	_, err := f.d.Stop(FelixStopGrace)
	return err
}
