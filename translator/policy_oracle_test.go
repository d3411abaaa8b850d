package translator

import (
	"flag"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/translator/internal/gen"
	"github.com/calico-p4/calico-p4/translator/oracle"
)

var (
	flagSeed    = flag.Uint64("seed", 0, "first seed of the random tests (0: from the clock)")
	flagModels  = flag.Int("models", 300, "random models per property test (the change-sequence tests run a tenth or a thirtieth of it)")
	flagChanges = flag.Int("changes", 20, "change batches per model in TestDifferentialUnderChangeSequences")
	flagHitless = flag.Int("hitless-changes", 8, "change batches per model in TestSyncsAreHitless")
)

// firstSeed returns the first seed of a random test over -models models and logs the seeds.
func firstSeed(t *testing.T) uint64 { return seedRange(t, 1) }

// seedRange returns the first seed of a random test running one model per div of -models (-seed, else
// from the clock) and logs the seeds and how to rerun one.
func seedRange(t *testing.T, div int) uint64 {
	s := *flagSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seeds %d..%d (rerun one with -seed=N -models=%d)", s, s+uint64(max(1, *flagModels/div))-1, div)
	return s
}

func genNode() Options {
	o := testNode()
	o.Node.Addresses = []netip.Prefix{netip.PrefixFrom(gen.NodeV4, 24), netip.PrefixFrom(gen.NodeV6, 64)}
	o.Node.HostEndpointInterface = gen.Uplink
	return o
}

func oracleNode() oracle.Node {
	return oracle.Node{Name: gen.NodeName, Addresses: []netip.Addr{gen.NodeV4, gen.NodeV6}, Uplink: gen.Uplink}
}

// chainCase is one check: the list the translator gave (endpoint, stage) against the chain the oracle
// evaluates.
type chainCase struct {
	name    string
	ep      string
	stage   uint8
	kind    oracle.ChainKind
	fs      oracle.Failsafe
	tiers   []model.TierInfo
	profs   []string
	ingress bool
}

func chainCases(s *model.State) []chainCase {
	var cs []chainCase
	for k, ep := range s.WorkloadEndpoints.All() {
		if ep.State != "active" {
			continue
		}
		cs = append(cs,
			chainCase{"wep " + k.String() + " egress", wepOwner(k), p4src.StageWorkloadEgress, oracle.Normal, oracle.NoFailsafe, ep.Tiers, ep.ProfileIDs, false},
			chainCase{"wep " + k.String() + " ingress", wepOwner(k), p4src.StageWorkloadIngress, oracle.Normal, oracle.NoFailsafe, ep.Tiers, ep.ProfileIDs, true})
	}
	if h := oracle.HostEndpointFor(s, oracleNode(), gen.Uplink); h != nil {
		cs = append(cs,
			chainCase{"hep ingress", epUplink, p4src.StageHostIngress, oracle.Normal, oracle.FailsafeFilterIn, h.Tiers, h.ProfileIDs, true},
			chainCase{"hep egress", epUplink, p4src.StageHostEgress, oracle.Normal, oracle.FailsafeFilterOut, h.Tiers, h.ProfileIDs, false},
			chainCase{"hep forward ingress", epUplink, p4src.StageForwardIngress, oracle.Forward, oracle.NoFailsafe, h.ForwardTiers, nil, true},
			chainCase{"hep forward egress", epUplink, p4src.StageForwardEgress, oracle.Forward, oracle.NoFailsafe, h.ForwardTiers, nil, false})
		if len(h.PreDNATTiers) > 0 {
			cs = append(cs, chainCase{"hep pre-DNAT", epUplink, p4src.StagePrednatIngress, oracle.PreDNAT, oracle.FailsafeMangleIn, h.PreDNATTiers, nil, true})
		}
		if len(h.UntrackedTiers) > 0 && !h.AllInterfaces() {
			cs = append(cs,
				chainCase{"hep untracked ingress", epUplink, p4src.StageUntrackedIngress, oracle.Untracked, oracle.FailsafeRawIn, h.UntrackedTiers, nil, true},
				chainCase{"hep untracked egress", epUplink, p4src.StageUntrackedEgress, oracle.Untracked, oracle.FailsafeRawOut, h.UntrackedTiers, nil, false})
		}
	}
	return cs
}

// agree maps the walk's verdict onto the oracle's chain result.
func agree(kind oracle.ChainKind, want oracle.ChainResult, got uint8) bool {
	switch want {
	case oracle.ResultDeny:
		return got == p4src.VerdictDeny
	case oracle.ResultAllow:
		if kind == oracle.Forward {
			// Forward chains without a verdict allow; k8s.p4 lets the packet go on (no list / no verdict).
			return got == p4src.VerdictAllow || got == p4src.VerdictContinue
		}
		return got == p4src.VerdictAllow
	}
	return got == p4src.VerdictContinue || (kind == oracle.Forward && got == p4src.VerdictAllow)
}

// TestPolicyListsAgreeWithTheOracle: for random models (every rule field, tiers with pass, profiles, named
// ports, v4/v6, host endpoints with failsafe ports), the translator's policy program, walked as k8s.p4 walks
// it, gives the verdict Felix's chains give.
func TestPolicyListsAgreeWithTheOracle(t *testing.T) {
	seed := firstSeed(t)
	cases, fails := 0, 0
	for i := 0; i < *flagModels && fails < 5; i++ {
		g := gen.New(seed + uint64(i))
		s := stateOf(t, g.Model())
		tr := New(testPorts, genNode())
		res := tr.Apply(s, model.Changes{Resync: true})
		for _, u := range res.Report.Unsupported {
			if u.Feature == FeatureHTTPMatch || u.Feature == FeatureDanglingIPSet || u.Feature == FeaturePortsOnProtocol {
				t.Fatalf("seed %d: unexpected unsupported feature: %v", seed+uint64(i), u)
			}
		}
		w := newWalker(res.Entries)
		for _, c := range chainCases(s) {
			ep, ok := tr.ids.ep.Get(c.ep)
			if !ok {
				t.Fatalf("seed %d: no endpoint id for %s", seed+uint64(i), c.ep)
			}
			for j := 0; j < 40; j++ {
				p := g.Packet()
				want, why := oracle.EvalChain(s, c.kind, c.fs, c.tiers, c.profs, c.ingress, p)
				if c.stage == p4src.StageWorkloadEgress {
					if w := oracle.WorkloadEncapDropped(s.Config(), p); w != "" {
						want, why = oracle.ResultDeny, w
					}
				}
				got := w.check(ep, c.stage, p)
				cases++
				if got.broken || !agree(c.kind, want, got.verdict) {
					fails++
					t.Errorf("seed %d, %s, packet %+v: oracle %s (%s), walk verdict %d broken=%v via %v",
						seed+uint64(i), c.name, p, want, why, got.verdict, got.broken, got.path)
					break
				}
			}
		}
	}
	t.Logf("%d checks", cases)
	_ = fmt.Sprint
}
