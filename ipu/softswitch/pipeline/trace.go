package pipeline

import (
	"bytes"
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
)

// Trace is the record of one packet's way through the pipeline: every table applied (key, hit or
// default, action and parameters), every learn, and the verdict — calico-p4ctl trace's output, and
// what behaviour vectors check with "expect applied".
type Trace struct {
	InPort uint32
	Input  []byte
	Events []TraceEvent
	// Result of the packet (Data copied).
	Result Result
	// DryRun: no counters, learner timers or learned entries were changed.
	DryRun bool
}

// TraceField is a named value of a key or action parameter.
type TraceField struct {
	Name  string
	Bits  int
	Value []byte
}

// TraceEvent is one table application or learn.
type TraceEvent struct {
	Pass  int
	Table string // P4Info name
	Key   []TraceField
	// Hit: an entry matched (else the default action ran). Priority, MemberID and GroupID describe it.
	Hit      bool
	Priority int32
	MemberID uint32
	GroupID  uint32
	Action   string // P4Info name; "NoAction" for an empty selector group
	Params   []TraceField
	// Learn: an add_entry of Action with Params under Key and Profile (not performed in a dry run).
	Learn   bool
	Profile uint8
}

// Applied reports whether table ran action (by P4Info names) in any pass.
func (t *Trace) Applied(table, action string) bool {
	for i := range t.Events {
		e := &t.Events[i]
		if !e.Learn && e.Table == table && e.Action == action {
			return true
		}
	}
	return false
}

func fieldsOf(ti *tables.TableInfo, key []byte) []TraceField {
	out := make([]TraceField, 0, len(ti.Fields))
	for _, f := range ti.Fields {
		out = append(out, TraceField{Name: f.Name, Bits: f.Bitwidth, Value: bytes.Clone(key[f.Offset : f.Offset+f.Width])})
	}
	return out
}

func paramsFields(ai *tables.ActionInfo, prm []byte) []TraceField {
	if ai == nil {
		return nil
	}
	out := make([]TraceField, 0, len(ai.Params))
	for _, p := range ai.Params {
		if p.Offset+p.Width <= len(prm) {
			out = append(out, TraceField{Name: p.Name, Bits: p.Bitwidth, Value: bytes.Clone(prm[p.Offset : p.Offset+p.Width])})
		}
	}
	return out
}

func (t *Trace) table(w *Worker, _ tableRef, key []byte, ap *applied) {
	ev := TraceEvent{Pass: w.pass, Table: ap.t.Info.Name, Key: fieldsOf(ap.t.Info, key), Hit: ap.hit}
	if ap.hit {
		ev.Priority = ap.e.Priority
		ev.MemberID = ap.e.MemberID
		ev.GroupID = ap.e.GroupID
	}
	ev.Action = string(p4src.ActionNoaction)
	if ap.a != nil && ap.a.Info != nil {
		ev.Action = ap.a.Info.Name
		ev.Params = paramsFields(ap.a.Info, ap.a.Params)
	}
	t.Events = append(t.Events, ev)
}

func (t *Trace) learn(w *Worker, r tableRef, key []byte, action p4src.ActionID, prm []byte, profile uint8) {
	ti := w.st.Table(w.b.idx[r]).Info
	ai := w.b.schema.Action(uint32(action))
	ev := TraceEvent{Pass: w.pass, Table: ti.Name, Key: fieldsOf(ti, key), Learn: true, Profile: profile}
	if ai != nil {
		ev.Action = ai.Name
		ev.Params = paramsFields(ai, prm)
	}
	t.Events = append(t.Events, ev)
}

// Record makes the worker record every table application of the following packets into t (nil stops).
// Side effects (counters, learning) still happen; use Pipeline.Trace for a dry run.
func (w *Worker) Record(t *Trace) { w.rec = t }

// Trace runs pkt (received on inPort) through the pipeline against the live tables without side
// effects: no counter changes, no learning, no learner timer refresh. It is safe to call concurrently
// with the data plane.
func (p *Pipeline) Trace(pkt []byte, inPort uint32) (*Trace, error) {
	if len(pkt) > MaxPacket {
		return nil, fmt.Errorf("packet of %d bytes exceeds %d", len(pkt), MaxPacket)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	w := p.newWorker(0)
	t := &Trace{InPort: inPort, Input: bytes.Clone(pkt), DryRun: true}
	w.dry, w.rec = true, t
	res := w.Process(pkt, inPort)
	res.Data = bytes.Clone(res.Data)
	t.Result = res
	return t, nil
}

// DropReasonName returns the k8s.p4 name of a drop reason (DROP_POLICY_DENY, …).
func DropReasonName(r uint8) string {
	if int(r) < len(dropNames) && dropNames[r] != "" {
		return dropNames[r]
	}
	return fmt.Sprintf("DROP_%d", r)
}

var dropNames = [...]string{
	p4src.DropNone:             "DROP_NONE",
	p4src.DropParseError:       "DROP_PARSE_ERROR",
	p4src.DropUnknownPort:      "DROP_UNKNOWN_PORT",
	p4src.DropSpoofedSource:    "DROP_SPOOFED_SOURCE",
	p4src.DropPolicyDeny:       "DROP_POLICY_DENY",
	p4src.DropNoRoute:          "DROP_NO_ROUTE",
	p4src.DropNoServiceBackend: "DROP_NO_SERVICE_BACKEND",
	p4src.DropTTLExpired:       "DROP_TTL_EXPIRED",
	p4src.DropPassBudget:       "DROP_PASS_BUDGET",
	p4src.DropPolicyProgram:    "DROP_POLICY_PROGRAM",
	p4src.DropUnsupported:      "DROP_UNSUPPORTED",
	p4src.DropSNATConflict:     "DROP_SNAT_CONFLICT",
}

func shortName(n string) string {
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		return n[i+1:]
	}
	return n
}

func formatValue(f TraceField) string {
	v := f.Value
	switch {
	case f.Bits == 32 && (strings.Contains(f.Name, "addr") || strings.HasSuffix(f.Name, "_ip")):
		a, _ := netip.AddrFromSlice(v)
		return a.String()
	case f.Bits == 128:
		a, _ := netip.AddrFromSlice(v)
		return a.String()
	case f.Bits == 48:
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", v[0], v[1], v[2], v[3], v[4], v[5])
	case strings.Contains(f.Name, "port") && f.Bits == 32:
		return fmt.Sprintf("%#x", new(big.Int).SetBytes(v))
	}
	return new(big.Int).SetBytes(v).String()
}

func formatFields(fs []TraceField) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.Name+"="+formatValue(f))
	}
	return strings.Join(parts, ", ")
}

// String renders the trace like ovs-appctl ofproto/trace: the packet, each pass's table applications,
// and the verdict.
func (t *Trace) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "packet: in_port=%#x len=%d\n  %s\n", t.InPort, len(t.Input), Describe(t.Input))
	pass := -1
	for _, e := range t.Events {
		if e.Pass != pass {
			pass = e.Pass
			fmt.Fprintf(&sb, "pass %d\n", pass)
		}
		if e.Learn {
			fmt.Fprintf(&sb, "  learn %s {%s} -> %s(%s) expire_profile=%d", shortName(e.Table), formatFields(e.Key),
				shortName(e.Action), formatFields(e.Params), e.Profile)
			if t.DryRun {
				sb.WriteString(" (dry run: not added)")
			}
			sb.WriteByte('\n')
			continue
		}
		how := "miss, default"
		if e.Hit {
			how = "hit"
			if e.Priority != 0 {
				how += fmt.Sprintf(" priority=%d", e.Priority)
			}
			if e.GroupID != 0 {
				how += fmt.Sprintf(" group=%d", e.GroupID)
			} else if e.MemberID != 0 {
				how += fmt.Sprintf(" member=%d", e.MemberID)
			}
		}
		fmt.Fprintf(&sb, "  %s {%s}: %s -> %s(%s)\n", shortName(e.Table), formatFields(e.Key), how, shortName(e.Action), formatFields(e.Params))
	}
	r := &t.Result
	switch r.Fate {
	case p4src.FateDrop:
		fmt.Fprintf(&sb, "verdict: drop %s after %d pass(es)\n", DropReasonName(r.DropReason), r.Passes)
	default:
		how := map[uint8]string{p4src.FateForward: "forward", p4src.FateReply: "reply", p4src.FateBridge: "bridge"}[r.Fate]
		if r.DropReason != p4src.DropNone {
			how += " (rejected: " + DropReasonName(r.DropReason) + ")"
		}
		fmt.Fprintf(&sb, "verdict: %s to port %#x after %d pass(es)\n  %s\n", how, r.Port, r.Passes, Describe(r.Data))
	}
	return sb.String()
}

// Describe summarises a packet's headers (one line), as the parser sees them.
func Describe(pkt []byte) string {
	if len(pkt) > MaxPacket {
		return fmt.Sprintf("%d bytes (too long)", len(pkt))
	}
	w := &Worker{buf: make([]byte, Headroom+len(pkt)+tailroom)}
	copy(w.buf[Headroom:], pkt)
	w.start, w.end = Headroom, Headroom+int32(len(pkt))
	w.MainParserImpl()
	h, b := &w.hdr, w.buf
	var parts []string
	mac := func(o int32) string {
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[o], b[o+1], b[o+2], b[o+3], b[o+4], b[o+5])
	}
	v4 := func(o int32) string { a, _ := netip.AddrFromSlice(b[o : o+4]); return a.String() }
	v6 := func(o int32) string { a, _ := netip.AddrFromSlice(b[o : o+16]); return a.String() }
	if valid(h.ethernet) {
		parts = append(parts, fmt.Sprintf("eth(%s > %s)", mac(h.ethernet+ethSrc), mac(h.ethernet+ethDst)))
	}
	if valid(h.vlan) {
		parts = append(parts, fmt.Sprintf("vlan(%d)", be16(b, h.vlan)&0x0fff))
	}
	if valid(h.arp) {
		parts = append(parts, fmt.Sprintf("arp(oper=%d %s > %s)", be16(b, h.arp+arpOper), v4(h.arp+arpSenderIP), v4(h.arp+arpTargetIP)))
	}
	ip := func(o4, o6 int32) {
		if valid(o4) {
			parts = append(parts, fmt.Sprintf("ipv4(%s > %s proto=%d ttl=%d)", v4(o4+ipv4Src), v4(o4+ipv4Dst), b[o4+ipv4Proto], b[o4+ipv4TTL]))
		}
		if valid(o6) {
			parts = append(parts, fmt.Sprintf("ipv6(%s > %s next=%d hlim=%d)", v6(o6+ipv6Src), v6(o6+ipv6Dst), b[o6+ipv6NextHdr], b[o6+ipv6HopLimit]))
		}
	}
	l4 := func(tcp, udp, sctp, icmp, icmp6 int32) {
		switch {
		case valid(tcp):
			parts = append(parts, fmt.Sprintf("tcp(%d > %d flags=%s)", be16(b, tcp), be16(b, tcp+2), tcpFlagString(b[tcp+tcpFlags])))
		case valid(udp):
			parts = append(parts, fmt.Sprintf("udp(%d > %d)", be16(b, udp), be16(b, udp+2)))
		case valid(sctp):
			parts = append(parts, fmt.Sprintf("sctp(%d > %d)", be16(b, sctp), be16(b, sctp+2)))
		case valid(icmp):
			parts = append(parts, fmt.Sprintf("icmp(type=%d code=%d id=%d)", b[icmp], b[icmp+1], be16(b, icmp+icmpIdent)))
		case valid(icmp6):
			parts = append(parts, fmt.Sprintf("icmpv6(type=%d code=%d id=%d)", b[icmp6], b[icmp6+1], be16(b, icmp6+icmpIdent)))
		}
	}
	ip(h.ipv4, h.ipv6)
	l4(h.tcp, h.udp, h.sctp, h.icmp, h.icmpv6)
	if valid(h.icmpErrIPv4) || valid(h.icmpErrIPv6) {
		parts = append(parts, "quoting")
		ip(h.icmpErrIPv4, h.icmpErrIPv6)
	}
	if valid(h.vxlan) {
		parts = append(parts, fmt.Sprintf("vxlan(vni=%d)", be32(b, h.vxlan+4)>>8))
		if valid(h.innerEthernet) {
			parts = append(parts, fmt.Sprintf("eth(%s > %s)", mac(h.innerEthernet+ethSrc), mac(h.innerEthernet+ethDst)))
		}
	}
	ip(h.innerIPv4, h.innerIPv6)
	l4(h.innerTCP, h.innerUDP, h.innerSCTP, h.innerICMP, h.innerICMPv6)
	s := strings.Join(parts, " / ")
	if w.parserError {
		s += " [parser error: packet too short]"
	}
	if extra := w.end - h.payload; extra > 0 {
		s += fmt.Sprintf(" + %d bytes", extra)
	}
	return s
}

func tcpFlagString(f uint8) string {
	const names = "FSRPAUEC"
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			sb.WriteByte(names[i])
		}
	}
	if sb.Len() == 0 {
		return "."
	}
	return sb.String()
}
