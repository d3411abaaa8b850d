// Command calico-p4-felixsim plays Felix for a dataplane driver: it execs the driver exactly like Felix
// (no arguments, fd 3 / fd 4 pipes, environment inherited), replays JSONL ToDataplane streams and prints the
// driver's FromDataplane replies as JSON lines on stdout. Each further stream is a simulated Felix restart
// (the driver is stopped like Felix stops it, a new driver gets the new stream).
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/spf13/cobra"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/projectcalico/calico/felix/proto"
)

type options struct {
	driver    string
	manager   string
	pause     bool
	stepDelay time.Duration
	linger    time.Duration
	hold      bool
	grace     time.Duration
}

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "calico-p4-felixsim: %v\n", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "calico-p4-felixsim [flags] STREAM.jsonl [RESTART-STREAM.jsonl ...]",
		Short: "Play Felix for a dataplane driver: replay captured ToDataplane streams, print the replies",
		Long: `Streams are JSONL, one ToDataplane per line in proto3 JSON (as in testdata/felix-streams); a line
{"step":"<name>"} marks a step (never sent), and "<name>.summary.txt" headings beside "<name>.jsonl" are
merged as step markers. With --pause, felixsim waits for Enter at every step; --step-delay sleeps instead.
Replies are printed on stdout as {"reply":{...}} lines; progress goes to stderr.`,
		Args:          cobra.MinimumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return run(ctx, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.driver, "driver", "", "driver binary (default: calico-p4-driver beside this binary, then on PATH)")
	f.StringVar(&o.manager, "manager", "", "set CALICO_P4_MANAGER in the driver's environment")
	f.BoolVar(&o.pause, "pause", false, "wait for Enter on stdin at every step marker")
	f.DurationVar(&o.stepDelay, "step-delay", 0, "sleep this long at every step marker")
	f.DurationVar(&o.linger, "linger", 2*time.Second, "after the last stream, keep collecting replies this long, then stop the driver")
	f.BoolVar(&o.hold, "hold", false, "after the last stream, keep the driver running until interrupted")
	f.DurationVar(&o.grace, "grace", 4*time.Second, "SIGTERM-to-SIGKILL grace when stopping a driver (Felix: 4 s)")
	return cmd
}

func findDriver(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "calico-p4-driver")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("calico-p4-driver")
}

func run(ctx context.Context, o *options, streams []string) error {
	path, err := findDriver(o.driver)
	if err != nil {
		return fmt.Errorf("driver: %w", err)
	}
	var env []string
	if o.manager != "" {
		env = append(os.Environ(), "CALICO_P4_MANAGER="+o.manager)
	}
	var loaded []*felixsim.Stream
	for _, p := range streams {
		s, err := felixsim.LoadStream(p)
		if err != nil {
			return err
		}
		loaded = append(loaded, s)
	}
	var out sync.Mutex
	marshaler := jsonpb.Marshaler{}
	stdin := bufio.NewReader(os.Stdin)
	atStep := func(ctx context.Context, step string) error {
		fmt.Fprintf(os.Stderr, "---- %s\n", step)
		if o.pause {
			fmt.Fprint(os.Stderr, "(Enter to continue) ")
			if _, err := stdin.ReadString('\n'); err != nil {
				return err
			}
		}
		if o.stepDelay > 0 {
			select {
			case <-time.After(o.stepDelay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}

	var d *felixsim.Driver
	printed := 0
	printReplies := func() {
		out.Lock()
		defer out.Unlock()
		if d == nil {
			return
		}
		r := d.Replies()
		for ; printed < len(r); printed++ {
			s, err := marshaler.MarshalToString(r[printed])
			if err != nil {
				s = fmt.Sprintf("%q", err.Error())
			}
			fmt.Printf("{\"reply\":%s}\n", s)
		}
	}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	go func() {
		for range ticker.C {
			printReplies()
		}
	}()

	dopts := felixsim.Options{Env: env, Stdout: os.Stderr, Stderr: os.Stderr}
	for i, s := range loaded {
		if i == 0 {
			d, err = felixsim.Start(path, dopts)
		} else {
			fmt.Fprintf(os.Stderr, "==== Felix restart: stopping driver %d, new driver, stream %s\n", d.PID(), streams[i])
			var code int
			printReplies()
			out.Lock()
			old := d
			out.Unlock()
			var nd *felixsim.Driver
			nd, code, err = felixsim.Restart(old, path, dopts, o.grace)
			fmt.Fprintf(os.Stderr, "old driver exited with %d\n", code)
			out.Lock()
			d, printed = nd, 0
			out.Unlock()
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "==== driver %s pid %d: replaying %s (%d messages)\n", path, d.PID(), streams[i], len(s.Messages()))
		n := 0
		if err := felixsim.Replay(ctx, d, s, felixsim.ReplayOptions{AtStep: atStep, OnSend: func(m *proto.ToDataplane) {
			n++
			if model.IsInSync(m) {
				fmt.Fprintf(os.Stderr, "sent InSync (message %d)\n", n)
			}
		}}); err != nil {
			return fmt.Errorf("replaying %s: %w", streams[i], err)
		}
	}
	if o.hold {
		fmt.Fprintln(os.Stderr, "holding; interrupt to stop")
		select {
		case <-ctx.Done():
		case <-d.Exited():
		}
	} else {
		select {
		case <-time.After(o.linger):
		case <-ctx.Done():
		case <-d.Exited():
		}
	}
	printReplies()
	code, err := d.Stop(o.grace)
	printReplies()
	fmt.Fprintf(os.Stderr, "driver exited with %d\n", code)
	return err
}
