package translator

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/translator/oracle"
)

// scaleHeadroom is the margin k8s.p4's table sizes keep over what the issue-7 scale model needs
// (p4src/README.md, "Sizing").
const scaleHeadroom = 1.25

// The issue-7 scale model (250 local endpoints, 10k remote endpoints, 2k policies of 10 rules, 100k IP-set
// members) fits k8s.p4's tables with headroom, and no policy list walks more steps than the pass budget
// allows.
func TestTheScaleModelFitsK8sP4(t *testing.T) {
	s, _ := benchModel(t)
	res := Translate(s, testPorts, benchOpts())
	counts := map[string]int{}
	for _, e := range res.Entries.All() {
		counts[e.Table]++
	}
	info, err := p4src.P4Info()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range info.Tables {
		n := counts[tb.Preamble.Name]
		if n > 0 {
			t.Logf("%-20s %7d entries, size %7d", tb.Preamble.Alias, n, tb.Size)
		}
		if float64(n)*scaleHeadroom > float64(tb.Size) {
			t.Errorf("%s: %d entries at the issue's scale; size %d leaves less than %.0f%% headroom",
				tb.Preamble.Alias, n, tb.Size, (scaleHeadroom-1)*100)
		}
	}
	for _, w := range res.Report.Warnings {
		if strings.Contains(w, "pass budget") {
			t.Error(w)
		}
	}
	tr := New(testPorts, benchOpts())
	tr.Apply(s, model.Changes{Resync: true})
	longest := 0
	for _, lu := range tr.lists {
		longest = max(longest, tr.listWalk(lu))
	}
	t.Logf("longest list walk: %d steps (warning above %d)", longest, walkWarn)
}

// The longest walks of the scale model run on the softswitch: a flow from outside to a local pod that no
// rule of the pod's 10 ingress policies matches walks every step of them (about 90 passes) and
// is denied at the end of the tier, as the oracle says — not dropped by the pass budget.
func TestTheScaleModelsLongestWalksRunOnTheSoftswitch(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 230k entries into the softswitch")
	}
	s, _ := benchModel(t)
	opts := benchOpts()
	res := Translate(s, testPorts, opts)
	var now atomic.Int64
	now.Store(1)
	pl, _ := softswitch(t, res.Entries, &now)
	w, err := pl.NewWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	on := oracle.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.122.11")}, Uplink: "eth0"}
	up, _ := testPorts.PortID(opts.Node.UplinkInterface)
	longest := 0
	for i := 0; i < 20; i++ {
		b := (i*37 + 11) % benchLocal
		p := oracle.Packet{Src: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 1+i)), Dst: netip.MustParseAddr(v4(b)),
			Proto: oracle.ProtoTCP, SrcPort: uint16(40000 + i), DstPort: 443}
		want, _ := oracle.Evaluate(s, on, oracle.Ingress{Iface: "eth0"}, p)
		got := w.Process(frameWith(p, "02:00:00:00:01:01", "S", ""), up)
		if got.Forwarded() != want.Allowed || (!got.Forwarded() && got.DropReason != p4src.DropPolicyDeny) {
			t.Errorf("%s → pod%d tcp/443: softswitch forwarded=%v (drop reason %d, %d passes); oracle allowed=%v (%s)",
				p.Src, b, got.Forwarded(), got.DropReason, got.Passes, want.Allowed, want.Why)
		}
		longest = max(longest, got.Passes)
	}
	if longest <= 64 {
		t.Errorf("the longest walk took %d passes; the scale model's ingress lists should need more than 64", longest)
	}
	t.Logf("longest new flow: %d passes (PASS_BUDGET %d)", longest, p4src.PassBudget)
}
