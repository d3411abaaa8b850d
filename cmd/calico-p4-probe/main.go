// Command calico-p4-probe answers and sends the end-to-end reachability probes from a shell, e.g. inside a
// namespace created by the e2e harness:
//
//	ip netns exec <pod-netns> calico-p4-probe serve --identity x/a --tcp 80,81 --udp 53
//	ip netns exec <pod-netns> calico-p4-probe connect --proto tcp --to 10.65.0.12 --port 80 --expect x/b
//	calico-p4-probe sweep    # remove namespaces left by crashed e2e runs
//
// The logic lives in e2e/probe and e2e/topology; this is wiring only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/topology"
)

// selfNetNS is the calling thread's namespace (the one `ip netns exec` put the process in).
const selfNetNS = "/proc/thread-self/ns/net"

func main() {
	root := &cobra.Command{Use: "calico-p4-probe", Short: "Reachability probes for the calico-p4 end-to-end tests", SilenceUsage: true}
	root.AddCommand(serveCmd(), connectCmd(), sweepCmd())
	if err := root.Execute(); err != nil {
		os.Exit(2)
	}
}

func serveCmd() *cobra.Command {
	var identity string
	var l probe.Listen
	c := &cobra.Command{
		Use:   "serve",
		Short: "Answer TCP/UDP/SCTP probes in the current network namespace until interrupted",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if len(l.SCTP) > 0 {
				if ok, why := probe.SCTPSupported(selfNetNS); !ok {
					fmt.Fprintf(os.Stderr, "sctp ports not served: %s\n", why)
				}
			}
			srv, err := probe.Serve(ctx, selfNetNS, identity, l)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "serving as %q: tcp %v udp %v sctp %v\n", identity, l.TCP, l.UDP, l.SCTP)
			<-ctx.Done()
			srv.Close()
			return nil
		},
	}
	host, _ := os.Hostname()
	c.Flags().StringVar(&identity, "identity", host, "name to answer with")
	c.Flags().IntSliceVar(&l.TCP, "tcp", nil, "TCP ports")
	c.Flags().IntSliceVar(&l.UDP, "udp", nil, "UDP ports")
	c.Flags().IntSliceVar(&l.SCTP, "sctp", nil, "SCTP ports")
	return c
}

func connectCmd() *cobra.Command {
	var proto, to, expect string
	var port, attempts int
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "connect",
		Short: "Send one probe from the current network namespace; exit 0 if it got through, 1 if not",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := probe.ParseProtocol(proto)
			if err != nil {
				return err
			}
			addr, err := netip.ParseAddr(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			res := probe.Do(context.Background(), probe.Request{FromNetNS: selfNetNS, To: addr, Proto: p, Port: port,
				Timeout: timeout, Attempts: attempts, Expect: expect})
			out := map[string]any{"ok": res.OK, "responder": res.Responder, "attempts": res.Attempts,
				"elapsed_ms": res.Elapsed.Milliseconds()}
			if res.Err != nil {
				out["error"] = res.Err.Error()
			}
			_ = json.NewEncoder(os.Stdout).Encode(out)
			if !res.OK {
				os.Exit(1)
			}
			return nil
		},
	}
	c.Flags().StringVar(&proto, "proto", "tcp", "tcp, udp, sctp, icmp or icmpv6")
	c.Flags().StringVar(&to, "to", "", "destination address")
	c.Flags().IntVar(&port, "port", 80, "destination port (not for icmp)")
	c.Flags().StringVar(&expect, "expect", "", "identity the server must answer with")
	c.Flags().DurationVar(&timeout, "timeout", time.Second, "per attempt")
	c.Flags().IntVar(&attempts, "attempts", 2, "attempts before giving up")
	return c
}

func sweepCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sweep",
		Short: "Remove network namespaces left behind by crashed e2e runs (live runs are kept)",
		RunE: func(*cobra.Command, []string) error {
			log, _ := zap.NewDevelopment()
			removed, err := topology.Sweep(log)
			fmt.Printf("removed %d namespace(s)\n", len(removed))
			return err
		},
	}
}
