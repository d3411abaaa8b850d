// Command calico-p4ctl inspects a running embedded softswitch through its ctl API: trace a packet
// through the live tables without side effects (like ovs-appctl ofproto/trace), list, attach and
// detach ports.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded"
	"github.com/calico-p4/calico-p4/p4src/vectors"
)

func main() {
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

func root() *cobra.Command {
	var ctl string
	cmd := &cobra.Command{Use: "calico-p4ctl", Short: "Inspect the calico-p4 embedded softswitch", SilenceUsage: true}
	cmd.PersistentFlags().StringVar(&ctl, "ctl", "unix:///run/calico-p4/softswitch.sock", "softswitch ctl API: unix:///path or host:port")
	client := func() *ctlClient { return newClient(ctl) }
	cmd.AddCommand(traceCmd(client), portsCmd(client))
	return cmd
}

type ctlClient struct {
	http *http.Client
	base string
}

func newClient(addr string) *ctlClient {
	c := &ctlClient{http: &http.Client{Timeout: 30 * time.Second}, base: "http://" + addr}
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		c.base = "http://softswitch"
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
	}
	return c
}

func (c *ctlClient) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ctl API: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// packetSpec builds a packet description (p4src/vectors syntax) from flags.
type packetSpec struct {
	srcMAC, dstMAC, src, dst, proto, flags string
	sport, dport, icmpType, icmpCode       int
	payload                                int
}

func (p *packetSpec) describe() (string, error) {
	if p.src == "" || p.dst == "" {
		return "", fmt.Errorf("give --src and --dst (or a packet description / --hex)")
	}
	ip, err := net.ResolveIPAddr("ip", p.src)
	if err != nil {
		return "", fmt.Errorf("--src: %w", err)
	}
	layer := "ipv4"
	if ip.IP.To4() == nil {
		layer = "ipv6"
	}
	parts := []string{fmt.Sprintf("eth(dst=%s, src=%s)", p.dstMAC, p.srcMAC), fmt.Sprintf("%s(src=%s, dst=%s)", layer, p.src, p.dst)}
	switch strings.ToLower(p.proto) {
	case "tcp":
		f := p.flags
		if f == "" {
			f = "S"
		}
		parts = append(parts, fmt.Sprintf("tcp(sport=%d, dport=%d, flags=%s)", p.sport, p.dport, f))
	case "udp":
		parts = append(parts, fmt.Sprintf("udp(sport=%d, dport=%d)", p.sport, p.dport))
	case "sctp":
		parts = append(parts, fmt.Sprintf("sctp(sport=%d, dport=%d)", p.sport, p.dport))
	case "icmp", "icmpv6":
		l := "icmp"
		if layer == "ipv6" {
			l = "icmpv6"
			if p.icmpType == 8 {
				p.icmpType = 128
			}
		}
		parts = append(parts, fmt.Sprintf("%s(type=%d, code=%d, id=%d)", l, p.icmpType, p.icmpCode, p.sport))
	default:
		return "", fmt.Errorf("--proto %q: tcp, udp, sctp or icmp", p.proto)
	}
	if p.payload > 0 {
		parts = append(parts, fmt.Sprintf("payload(len=%d)", p.payload))
	}
	return strings.Join(parts, " / "), nil
}

func traceCmd(client func() *ctlClient) *cobra.Command {
	var (
		inPort, hexPkt string
		asJSON         bool
		ps             packetSpec
	)
	cmd := &cobra.Command{
		Use:   "trace [packet description]",
		Short: "Trace a packet through the live pipeline without side effects",
		Long: `Runs a packet through the softswitch's k8s.p4 pipeline against the installed tables, without
learning, counters or timer refreshes, and prints each table hit, action and the verdict.

The packet is a description in the behaviour-vector syntax of p4src/README.md, e.g.
  'eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(dport=80, flags=S)'
or built from --src/--dst/--proto/--sport/--dport/--flags, or raw bytes with --hex.
--in-port is an interface name (its port id is derived as the softswitch does) or a number.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pkt []byte
			switch {
			case hexPkt != "":
				b, err := hex.DecodeString(strings.Join(strings.Fields(hexPkt), ""))
				if err != nil {
					return fmt.Errorf("--hex: %w", err)
				}
				pkt = b
			default:
				desc := ""
				if len(args) == 1 {
					desc = args[0]
				} else {
					d, err := ps.describe()
					if err != nil {
						return err
					}
					desc = d
				}
				b, err := vectors.ParsePacket(desc)
				if err != nil {
					return fmt.Errorf("packet: %w", err)
				}
				pkt = b
			}
			var out embedded.TraceJSON
			if err := client().do(http.MethodPost, "/v1/trace", embedded.TraceRequest{InPort: inPort, PacketHex: hex.EncodeToString(pkt)}, &out); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			fmt.Fprint(cmd.OutOrStdout(), out.Text)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&inPort, "in-port", "", "ingress port: interface name or port id (required)")
	_ = cmd.MarkFlagRequired("in-port")
	f.StringVar(&hexPkt, "hex", "", "the packet as hex bytes (Ethernet frame)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&ps.src, "src", "", "source IP address")
	f.StringVar(&ps.dst, "dst", "", "destination IP address")
	f.StringVar(&ps.proto, "proto", "tcp", "tcp, udp, sctp or icmp")
	f.IntVar(&ps.sport, "sport", 40000, "source port (ICMP: echo identifier)")
	f.IntVar(&ps.dport, "dport", 80, "destination port")
	f.StringVar(&ps.flags, "flags", "", "TCP flags, letters FSRPAUEC (default S)")
	f.IntVar(&ps.icmpType, "icmp-type", 8, "ICMP type")
	f.IntVar(&ps.icmpCode, "icmp-code", 0, "ICMP code")
	f.IntVar(&ps.payload, "payload", 0, "payload bytes")
	f.StringVar(&ps.srcMAC, "src-mac", "02:00:00:00:00:01", "source MAC")
	f.StringVar(&ps.dstMAC, "dst-mac", "ee:ee:ee:ee:ee:ee", "destination MAC")
	return cmd
}

func portsCmd(client func() *ctlClient) *cobra.Command {
	cmd := &cobra.Command{Use: "ports", Short: "List, attach and detach softswitch ports"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List ports",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []embedded.PortJSON
			if err := client().do(http.MethodGet, "/v1/ports", nil, &ps); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-16s %-10s %-8s %-9s %12s %12s %8s  %s\n", "NAME", "ID", "KIND", "STATE", "RX", "TX", "TXERR", "NETNS")
			for _, p := range ps {
				fmt.Fprintf(w, "%-16s %#-10x %-8s %-9s %12d %12d %8d  %s\n", p.Name, p.ID, p.Kind, p.State, p.RxPackets, p.TxPackets, p.TxErrors, p.NetNS)
				if p.LastError != "" {
					fmt.Fprintf(w, "  last error: %s\n", p.LastError)
				}
			}
			return nil
		},
	})
	var netns string
	var tap bool
	attach := &cobra.Command{
		Use: "attach NAME", Short: "Attach an interface (opened when it appears)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := "afpacket"
			if tap {
				kind = "tap"
			}
			var out embedded.PortJSON
			if err := client().do(http.MethodPost, "/v1/ports", embedded.PortJSON{Name: args[0], NetNS: netns, Kind: kind}, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s attached as port %#x\n", out.Name, out.ID)
			return nil
		},
	}
	attach.Flags().StringVar(&netns, "netns", "", "path of the interface's network namespace")
	attach.Flags().BoolVar(&tap, "tap", false, "open a TAP device instead of a packet socket")
	cmd.AddCommand(attach, &cobra.Command{
		Use: "detach NAME", Short: "Detach a port", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return client().do(http.MethodDelete, "/v1/ports/"+args[0], nil, nil)
		},
	})
	return cmd
}
