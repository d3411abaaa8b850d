// Package podnet writes a minimal k8s.p4 configuration for workloads on one node through P4Runtime,
// without the translator: port classification, anti-spoofing, the gateway (ARP / ND), routes to each
// pod, and one policy list per pod (an allow-all profile, then end of profiles: deny), plus helpers to
// deny a TCP or UDP port. It is a fixture for the softswitch's privileged tests and the dataplane
// benchmark (hack/bench-dataplane), not a translator: it must not grow Calico semantics.
package podnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Pod is a workload attached to the softswitch.
type Pod struct {
	HostIface  string           // host-side interface (the port; id = ports.IDForName)
	MAC        net.HardwareAddr // the pod's eth0 MAC
	IPv4, IPv6 netip.Addr
	Endpoint   uint32 // endpoint id (non-zero)
}

const (
	listAllow  = 1
	stepAllow  = 1
	stepDeny   = 2
	ruleAllow  = 1
	ruleDeny   = 2
	gatewayMAC = 0xeeeeeeeeeeee
)

func u(v uint64, bits int) []byte { return p4src.MustEncodeUint(v, bits) }

func addr(a netip.Addr) []byte { return a.AsSlice() }

func mac(m net.HardwareAddr) []byte {
	var v uint64
	for _, b := range m {
		v = v<<8 | uint64(b)
	}
	return u(v, 48)
}

// Entries returns the node's entries for pods.
func Entries(pods []Pod) []entry.Entry {
	var es []entry.Entry
	P, act := entry.P, entry.Act
	tbl := func(t p4src.TableName, prio int32, a entry.Action, m ...entry.Match) {
		es = append(es, entry.Table(string(t), prio, a, m...))
	}
	flags := uint64(p4src.EPFlagSourceCheck | p4src.EPFlagPolicy)
	tbl(p4src.TableARPResponder, 0, act(string(p4src.ActionARPReply), P("mac", u(gatewayMAC, 48))),
		entry.Exact("endpoint_kind", u(uint64(p4src.EPKindWorkload), 8)), entry.LPM("target_addr", addr(netip.MustParseAddr("169.254.1.1")), 32))
	tbl(p4src.TableNDResponder, 0, act(string(p4src.ActionNDAdvertise), P("mac", u(gatewayMAC, 48))),
		entry.Exact("endpoint_kind", u(uint64(p4src.EPKindWorkload), 8)), entry.LPM("target_addr", addr(netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")), 128))
	// List 1: the allow-all profile (step 1, rule 1), then end of profiles (deny).
	tbl(p4src.TablePolicyList, 0, act(string(p4src.ActionRunPolicy), P("first_step", u(stepAllow, 32)), P("next_tier_pos", u(1, 16))),
		entry.Exact("list_id", u(listAllow, 32)), entry.Exact("position", u(0, 16)))
	tbl(p4src.TablePolicyList, 0, act(string(p4src.ActionListEnd), P("verdict", u(uint64(p4src.VerdictDeny), 8))),
		entry.Exact("list_id", u(listAllow, 32)), entry.Exact("position", u(1, 16)))
	tbl(p4src.TablePolicyStep, 0, act(string(p4src.ActionRunStep), P("lookup", u(0, 8)), P("set_id", u(0, 32)), P("miss_step", u(0, 32))),
		entry.Exact("step_id", u(stepAllow, 32)))
	tbl(p4src.TablePolicyRule, 100, act(string(p4src.ActionRuleAllow), P("rule_id", u(ruleAllow, 32))), entry.Exact("step_id", u(stepAllow, 32)))
	tbl(p4src.TablePolicyRuleStats, 0, act(string(p4src.ActionCountRule)), entry.Exact("rule_id", u(ruleAllow, 32)))
	tbl(p4src.TablePolicyRuleStats, 0, act(string(p4src.ActionCountRule)), entry.Exact("rule_id", u(ruleDeny, 32)))
	for i, p := range pods {
		port := uint64(ports.IDForName(p.HostIface))
		ep := uint64(p.Endpoint)
		nh := uint64(1000 + i)
		tbl(p4src.TablePortEndpoint, 0, act(string(p4src.ActionSetEndpoint), P("endpoint_id", u(ep, 32)), P("kind", u(uint64(p4src.EPKindWorkload), 8)),
			P("flags", u(flags, 8)), P("peer_port", u(0, 32))), entry.Exact("port", u(port, 32)))
		tbl(p4src.TableNexthop, 0, act(string(p4src.ActionNHLocal), P("port", u(port, 32)), P("dst_mac", mac(p.MAC)),
			P("endpoint_id", u(ep, 32)), P("flags", u(flags, 8))), entry.Exact("nexthop_id", u(nh, 32)))
		if p.IPv4.IsValid() {
			tbl(p4src.TableSourceGuardV4, 0, act(string(p4src.ActionSourceAllowed)), entry.Exact("endpoint_id", u(ep, 32)), entry.LPM("src_addr", addr(p.IPv4), 32))
			tbl(p4src.TableRouteV4, 0, act(string(p4src.ActionSetNexthop), P("nexthop_id", u(nh, 32)), P("flags", u(0, 8))), entry.LPM("dst_addr", addr(p.IPv4), 32))
		}
		if p.IPv6.IsValid() {
			tbl(p4src.TableSourceGuardV6, 0, act(string(p4src.ActionSourceAllowed)), entry.Exact("endpoint_id", u(ep, 32)), entry.LPM("src_addr", addr(p.IPv6), 128))
			tbl(p4src.TableRouteV6, 0, act(string(p4src.ActionSetNexthop), P("nexthop_id", u(nh, 32)), P("flags", u(0, 8))), entry.LPM("dst_addr", addr(p.IPv6), 128))
		}
		for _, stage := range []uint8{p4src.StageWorkloadEgress, p4src.StageWorkloadIngress} {
			tbl(p4src.TableEndpointPolicy, 0, act(string(p4src.ActionSetPolicyList), P("list_id", u(listAllow, 32))),
				entry.Exact("endpoint_id", u(ep, 32)), entry.Exact("stage", u(uint64(stage), 8)))
		}
	}
	return es
}

// DenyPort returns the rule that makes every pod's policy deny new flows to proto (6 or 17) port.
func DenyPort(proto uint8, port uint16) entry.Entry {
	return entry.Table(string(p4src.TablePolicyRule), 200, entry.Act(string(p4src.ActionRuleDeny), entry.P("rule_id", u(ruleDeny, 32))),
		entry.Exact("step_id", u(stepAllow, 32)), entry.Ternary("protocol", u(uint64(proto), 8), u(0xff, 8)),
		entry.Range("dst_port", u(uint64(port), 16), u(uint64(port), 16)))
}

type noIDs struct{}

func (noIDs) MemberID(string, string) (uint32, bool) { return 0, false }
func (noIDs) GroupID(string, string) (uint32, bool)  { return 0, false }

// Install pushes k8s.p4's P4Info (VERIFY_AND_COMMIT) through c and inserts es.
func Install(ctx context.Context, c *p4rt.Client, es []entry.Entry) error {
	info, err := p4src.P4Info()
	if err != nil {
		return err
	}
	if err := c.SetPipeline(ctx, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		return fmt.Errorf("set pipeline: %w", err)
	}
	return Write(ctx, c, p4v1.Update_INSERT, es)
}

// Write sends es as one batch of updates of type t.
func Write(ctx context.Context, c *p4rt.Client, t p4v1.Update_Type, es []entry.Entry) error {
	in, err := p4rt.NewInfo(p4src.MustP4Info())
	if err != nil {
		return err
	}
	ups := make([]*p4v1.Update, 0, len(es))
	for _, e := range es {
		ent, err := in.Encode(e, noIDs{})
		if err != nil {
			return fmt.Errorf("encode %v: %w", e, err)
		}
		ups = append(ups, &p4v1.Update{Type: t, Entity: ent})
	}
	if err := c.Write(ctx, ups); err != nil {
		return fmt.Errorf("write %d entries: %w", len(ups), err)
	}
	return nil
}
