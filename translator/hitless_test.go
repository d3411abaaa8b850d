package translator

// Hitless syncs: packets processed while the programmer writes a Sync to the embedded softswitch over real
// gRPC are processed entirely by the old desired state or entirely by the new one.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/programmer"
	ssw "github.com/calico-p4/calico-p4/ipu/softswitch"
	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/translator/internal/gen"
	"github.com/calico-p4/calico-p4/translator/oracle"
	felixproto "github.com/projectcalico/calico/felix/proto"
)

// outcome is what the pipeline did with a packet.
type outcome struct {
	fate uint8
	port uint32
	drop uint8
}

func (o outcome) String() string {
	if o.fate == p4src.FateDrop {
		return "dropped " + pipeline.DropReasonName(o.drop)
	}
	return fmt.Sprintf("fate %d to port %#x", o.fate, o.port)
}

// hitProbe is one test packet: a new flow entering on a port.
type hitProbe struct {
	frame []byte
	port  uint32
	in    oracle.Ingress
	pkt   oracle.Packet
	// old and new are the outcomes with the complete old and new desired states.
	old, new outcome
}

func (p *hitProbe) String() string { return fmt.Sprintf("%s %+v", p.in, p.pkt) }

// flowRunner runs packets as new flows on a pipeline: before each packet the store's clock jumps and the
// sweep forgets every learned flow.
type flowRunner struct {
	st  *tables.Store
	w   *pipeline.Worker
	now *atomic.Int64
}

func (r *flowRunner) run(p *hitProbe) outcome {
	r.now.Add(int64(1e15))
	r.st.Sweep()
	res := r.w.Process(p.frame, p.port)
	return outcome{res.Fate, res.Port, res.DropReason}
}

// referenceRunner loads set into a fresh store running k8s.p4.
func referenceRunner(t testing.TB, set *entry.Set) *flowRunner {
	now := new(atomic.Int64)
	now.Store(1)
	pl, st := softswitch(t, set, now)
	w, err := pl.NewWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	return &flowRunner{st: st, w: w, now: now}
}

// hitlessRig is the embedded softswitch serving P4Runtime on a unix socket, with every Write it executes
// recorded (in execution order), its pipeline, and a replay store that re-executes the recorded writes one
// published snapshot at a time.
type hitlessRig struct {
	t       *testing.T
	mode    programmer.WriteMode
	addr    string
	live    *flowRunner
	liveMu  sync.Mutex // the live store's sweep clock is shared by the traffic goroutine only
	mu      sync.Mutex
	writes  []*p4v1.WriteRequest
	replay  *flowRunner
	applied int // recorded writes replayed so far
	info    *p4rt.Info
}

func newHitlessRig(t *testing.T, mode programmer.WriteMode) *hitlessRig {
	rig := &hitlessRig{t: t, mode: mode, info: p4info(t)}
	now := new(atomic.Int64)
	now.Store(1)
	// ChunkSize 1: a CONTINUE_ON_ERROR write reaches the data plane update by update, as on a target that
	// applies each update on its own (P4-DPDK): the harshest interleaving of an ordered sync.
	srv, err := ssw.New(ssw.Config{DeviceID: 1, Registry: prometheus.NewRegistry(),
		StoreOptions: tables.Options{Workers: 2, Now: now.Load, ChunkSize: 1}, SweepInterval: time.Hour,
		GRPCOptions: []grpc.ServerOption{grpc.ChainUnaryInterceptor(rig.record)}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	rig.addr = "unix://" + sock
	pl, err := pipeline.New(pipeline.Options{Store: srv.Store()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pl.NewWorker(1)
	if err != nil {
		t.Fatal(err)
	}
	rig.live = &flowRunner{st: srv.Store(), w: w, now: now}

	rnow := new(atomic.Int64)
	rnow.Store(1)
	rst := tables.NewStore(tables.Options{Workers: 1, Now: rnow.Load})
	if err := rst.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		&p4v1.ForwardingPipelineConfig{P4Info: p4src.MustP4Info()}); err != nil {
		t.Fatal(err)
	}
	rpl, err := pipeline.New(pipeline.Options{Store: rst})
	if err != nil {
		t.Fatal(err)
	}
	rw, err := rpl.NewWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	rig.replay = &flowRunner{st: rst, w: rw, now: rnow}
	return rig
}

// record keeps a copy of every Write, serialising them (the store does anyway) so that the recorded order
// is the order they were applied in.
func (rig *hitlessRig) record(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod != p4v1.P4Runtime_Write_FullMethodName {
		return handler(ctx, req)
	}
	wr, ok := req.(*p4v1.WriteRequest)
	if !ok {
		rig.t.Errorf("Write request of type %T", req)
		return handler(ctx, req)
	}
	rig.mu.Lock()
	defer rig.mu.Unlock()
	c := proto.Clone(wr).(*p4v1.WriteRequest)
	resp, err := handler(ctx, req)
	rig.writes = append(rig.writes, c)
	return resp, err
}

// open returns a programmer for the rig's target.
func (rig *hitlessRig) open(election uint64, maxAtomic int, order [][]string) *programmer.Programmer {
	t := rig.t
	unmanaged := make([]string, len(p4src.LearnerTables))
	for i, tb := range p4src.LearnerTables {
		unmanaged[i] = string(tb)
	}
	ctx, cancel := context.WithCancel(context.Background()) // the session lives as long as ctx
	t.Cleanup(cancel)
	p, err := programmer.Open(ctx, programmer.Options{Address: rig.addr, ElectionID: p4rt.Uint128{Low: election},
		P4Info: p4src.MustP4Info(), UnmanagedTables: unmanaged, TableOrder: order, WriteMode: rig.mode,
		MaxAtomicBytes: maxAtomic, DeleteGrace: -1, Logger: zap.NewNop(), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// stats counts what the hitless checks saw.
type hitStats struct {
	syncs, writes, snapshots, probes, traffic int
	changed                                   int // probes whose outcome differs between old and new
	oracle                                    int // reference outcomes checked against the oracle
	oracleDisagree                            int
	// collect: count violations (by kind, with an example each) instead of failing the test.
	collect    bool
	violations map[string]int
	examples   map[string]string
}

// violation classifies an outcome that is neither the old state's nor the new one's.
func violation(got, old, new outcome) string {
	fwd := func(o outcome) bool { return o.fate != p4src.FateDrop }
	switch {
	case fwd(got) && !fwd(old) && !fwd(new):
		return "forwarded where both states drop"
	case !fwd(got) && fwd(old) && fwd(new):
		return "dropped where both states forward"
	case fwd(got):
		return "forwarded elsewhere"
	}
	return "dropped for a reason of neither state"
}

// note records a violation; it reports whether the check goes on.
func (st *hitStats) note(t *testing.T, kind, msg string) bool {
	if !st.collect {
		t.Errorf("%s", msg)
		return false
	}
	if st.violations == nil {
		st.violations, st.examples = map[string]int{}, map[string]string{}
	}
	st.violations[kind]++
	if _, ok := st.examples[kind]; !ok {
		st.examples[kind] = msg
	}
	return true
}

// syncChecked syncs desired with p while traffic runs, then replays the writes the target executed one
// published snapshot at a time; every packet of both must have the outcome of the old state or of the new
// one. It returns false after reporting a violation.
func (rig *hitlessRig) syncChecked(what string, p *programmer.Programmer, oldSet, newSet *entry.Set, probes []*hitProbe, st *hitStats) bool {
	t := rig.t
	refOld, refNew := referenceRunner(t, oldSet), referenceRunner(t, newSet)
	for _, pr := range probes {
		pr.old, pr.new = refOld.run(pr), refNew.run(pr)
		if pr.old != pr.new {
			st.changed++
		}
	}
	// Traffic during the Sync.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	var badKinds []string
	sent := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(uint64(len(probes)), 1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			pr := probes[r.IntN(len(probes))]
			got := rig.live.run(pr)
			sent++
			if got != pr.old && got != pr.new {
				bad = append(bad, fmt.Sprintf("%s: %s; old state: %s, new state: %s", pr, got, pr.old, pr.new))
				badKinds = append(badKinds, violation(got, pr.old, pr.new))
			}
		}
	}()
	rig.mu.Lock()
	first := len(rig.writes)
	rig.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	res, err := p.Sync(ctx, newSet)
	cancel()
	close(stop)
	wg.Wait()
	st.traffic += sent
	if err != nil {
		t.Errorf("%s: Sync: %v", what, err)
		return false
	}
	for i, b := range bad {
		if !st.note(t, "during the Sync: "+badKinds[i], fmt.Sprintf("%s: packets during the Sync saw neither the old state nor the new one:\n  %s",
			what, b)) {
			return false
		}
	}
	rig.mu.Lock()
	writes := slices.Clone(rig.writes[first:])
	rig.mu.Unlock()
	st.syncs++
	st.writes += len(writes)
	if rig.mode == programmer.WriteModeAtomic && res.Inserted+res.Modified+res.Deleted > 0 && oldSet.Len() > 0 && len(writes) != 1 {
		t.Errorf("%s: %d writes for an incremental atomic sync (%+v)", what, len(writes), res)
		return false
	}
	// Replay: every snapshot the data plane could have run on.
	check := func(after string, final bool) bool {
		st.snapshots++
		for _, pr := range probes {
			got := rig.replay.run(pr)
			st.probes++
			if final && got != pr.new {
				t.Errorf("%s: after the Sync, %s: %s; the new state gives %s", what, pr, got, pr.new)
				return false
			}
			if got != pr.old && got != pr.new && !st.note(t, "snapshot: "+violation(got, pr.old, pr.new),
				fmt.Sprintf("%s: %s\n  %s: %s; old state: %s, new state: %s", what, after, pr, got, pr.old, pr.new)) {
				return false
			}
		}
		return true
	}
	for wi, wr := range writes {
		ups := [][]*p4v1.Update{wr.Updates}
		if wr.Atomicity == p4v1.WriteRequest_CONTINUE_ON_ERROR {
			ups = ups[:0]
			for _, u := range wr.Updates {
				ups = append(ups, []*p4v1.Update{u})
			}
		}
		for ui, batch := range ups {
			if _, err := rig.replay.st.Write(batch, wr.Atomicity); err != nil {
				t.Fatalf("%s: replay: %v", what, err)
			}
			after := fmt.Sprintf("after write %d/%d (%v, %d updates), update %d: %s", wi+1, len(writes), wr.Atomicity,
				len(wr.Updates), ui+1, rig.describe(batch))
			if !check(after, wi == len(writes)-1 && ui == len(ups)-1) {
				return false
			}
		}
	}
	if len(writes) == 0 && !check("without a write", true) {
		return false
	}
	return true
}

// describe names the first update of a batch.
func (rig *hitlessRig) describe(ups []*p4v1.Update) string {
	if len(ups) == 0 {
		return "nothing"
	}
	u := ups[0]
	s := u.GetType().String()
	if te := u.GetEntity().GetTableEntry(); te != nil {
		if tb, ok := rig.info.TableByID(te.GetTableId()); ok {
			s += " " + tb.Name
		}
	}
	if len(ups) > 1 {
		s += fmt.Sprintf(" and %d more", len(ups)-1)
	}
	return s
}

// hitProbes draws new-flow packets from every workload (of both states), the host and the uplink.
func hitProbes(r *rand.Rand, g *gen.Gen, states []*model.State, n int) []*hitProbe {
	type ingress struct {
		in   oracle.Ingress
		port uint32
		mac  string
		ep   *model.WorkloadEndpoint
	}
	var ins []ingress
	seen := map[model.WorkloadEndpointKey]bool{}
	for _, s := range states {
		for k, ep := range s.WorkloadEndpoints.All() {
			if seen[k] {
				continue
			}
			seen[k] = true
			kk := k
			port, _ := testPorts.PortID(ep.InterfaceName)
			mac := "0a:58:00:00:00:01"
			if len(ep.MAC) == 6 {
				mac = ep.MAC.String()
			}
			ins = append(ins, ingress{oracle.Ingress{Workload: &kk}, port, mac, ep})
		}
	}
	hp, _ := testPorts.PortID(genNode().Node.HostInterface)
	up, _ := testPorts.PortID(genNode().Node.UplinkInterface)
	ins = append(ins, ingress{in: oracle.Ingress{Host: true}, port: hp, mac: "02:00:00:00:00:01"},
		ingress{in: oracle.Ingress{Iface: gen.Uplink}, port: up, mac: "02:00:00:00:01:01"})
	var out []*hitProbe
	for len(out) < n {
		in := ins[r.IntN(len(ins))]
		p := pipelinePacket(g.Packet())
		if in.in.Workload == nil && (p.Proto == 4 || (p.Proto == oracle.ProtoUDP && p.DstPort == 4789)) {
			p.Proto, p.DstPort = oracle.ProtoTCP, 80
		}
		if in.in.Host && r.IntN(4) > 0 {
			p.Src = nodeAddr(p.Dst)
		}
		if in.ep != nil && r.IntN(4) > 0 {
			for _, nn := range append(append([]netip.Prefix(nil), in.ep.IPv4Nets...), in.ep.IPv6Nets...) {
				if nn.Addr().Is4() == p.Dst.Is4() {
					p.Src = nn.Addr()
				}
			}
		}
		out = append(out, &hitProbe{frame: frameWith(p, in.mac, "S", ""), port: in.port, in: in.in, pkt: p})
	}
	return out
}

// checkOracle compares the new state's outcomes with Felix's verdicts (the oracle), as the differential
// tests do: the references are what "the new state" means, so a disagreement fails the test (it is the
// translator's, the pipeline's or the oracle's; TestDifferentialUnderChangeSequences reaches the same
// states with more packets and a trace). It returns false after reporting one.
func checkOracle(t *testing.T, what string, s *model.State, probes []*hitProbe, st *hitStats) bool {
	on := oracleNode()
	for _, pr := range probes {
		if pr.in.Workload != nil {
			if _, ok := s.WorkloadEndpoints.Get(*pr.in.Workload); !ok {
				continue // from a workload the state does not have: unknown port
			}
		}
		want, _ := oracle.Evaluate(s, on, pr.in, pr.pkt)
		got := pr.new
		if got.drop == p4src.DropPassBudget || got.drop == p4src.DropNoRoute {
			continue // as in the differential test: walk budget, underlay reachability
		}
		st.oracle++
		if (got.fate != p4src.FateDrop) != want.Allowed {
			st.oracleDisagree++
			t.Errorf("%s: %s: the new state's entries give %s, the oracle allowed=%v (%s)", what, pr, got, want.Allowed, want.Why)
			return false
		}
	}
	return true
}

// hitlessCase is how one mode changes the model.
type hitlessCase struct {
	name string
	mode programmer.WriteMode
	// model filters the generated snapshot; change draws one change batch.
	model  func(msgs []*felixproto.ToDataplane) []*felixproto.ToDataplane
	change func(g *gen.Gen, live *model.State, pols map[string]*felixproto.ToDataplane) []*felixproto.ToDataplane
}

// TestSyncsAreHitless: random models and changes, synced by the programmer over real gRPC into the embedded
// softswitch while packets run through its pipeline; every packet — those sent during the Sync, and, by
// replaying the target's writes, a probe set on every snapshot the data plane could have used — gets the
// outcome the complete old state or the complete new state gives it (same fate, port and drop reason),
// never a mix and never "no policy". The complete states' outcomes agree with the oracle (a disagreement
// fails the test). -models (a thirtieth of it) and -hitless-changes size the run.
//
//   - atomic (the embedded target's mode): any change batch (policies, profiles, endpoints, sets, host
//     endpoints, routes, config); each incremental Sync is one DATAPLANE_ATOMIC write.
//   - ordered (P4-DPDK, ES2K: CONTINUE_ON_ERROR in write order, the target publishing every update on its
//     own): one endpoint added or removed, or one policy or profile changing the rules of one direction, per
//     Sync — the changes make-before-break makes hitless without atomic writes (README of p4src,
//     programmer doc: what ordered writes guarantee).
//
// The first Sync of each model (into an empty target) is checked the same way, written in small atomic
// chunks or update by update; then a restarted programmer must write nothing.
func TestSyncsAreHitless(t *testing.T) {
	cases := []hitlessCase{
		{name: "atomic", mode: programmer.WriteModeAtomic, model: func(m []*felixproto.ToDataplane) []*felixproto.ToDataplane { return m },
			change: func(g *gen.Gen, live *model.State, _ map[string]*felixproto.ToDataplane) []*felixproto.ToDataplane {
				return g.Change(setMembers(live))
			}},
		{name: "ordered", mode: programmer.WriteModeOrdered, model: orderedModel, change: orderedChange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runHitless(t, c, p4src.WriteOrderNames(), false) })
	}
	// The check can fail: the same ordered syncs written in the reverse order (what admits packets first)
	// are caught.
	t.Run("reversed order is caught", func(t *testing.T) {
		reversed := slices.Clone(p4src.WriteOrderNames())
		slices.Reverse(reversed)
		st := runHitless(t, cases[1], reversed, true)
		if len(st.violations) == 0 {
			t.Fatal("no packet saw a mixed state with the tables written in the reverse order")
		}
		t.Logf("violations: %v", st.violations)
	})
}

func runHitless(t *testing.T, c hitlessCase, order [][]string, collect bool) *hitStats {
	seed := seedRange(t, 30)
	st := &hitStats{collect: collect}
	models := max(1, *flagModels/30)
	for i := 0; i < models && !t.Failed(); i++ {
		g := gen.New(seed + uint64(i))
		r := rand.New(rand.NewPCG(seed+uint64(i), 2))
		rig := newHitlessRig(t, c.mode)
		msgs := c.model(g.Model())
		pols := map[string]*felixproto.ToDataplane{}
		notePolicies(pols, msgs)
		live := model.NewState()
		applyMsgs(t, live, msgs...)
		tr := New(testPorts, genNode())
		res := tr.Apply(live.Clone(), live.TakeChanges())
		empty, _ := entry.NewSet()
		what := fmt.Sprintf("%s, seed %d, first sync", c.name, seed+uint64(i))
		probes := hitProbes(r, g, []*model.State{live}, 40)
		for _, pr := range probes {
			pr.old = outcome{}
		}
		first := rig.open(1, 4096, order) // small atomic chunks: the first sync goes in several
		if !rig.syncChecked(what, first, empty, res.Entries, probes, st) || !checkOracle(t, what, live, probes, st) {
			return st
		}
		first.Close()
		// A restarted manager reads the target back and writes nothing.
		p := rig.open(2, 0, order)
		rig.mu.Lock()
		before := len(rig.writes)
		rig.mu.Unlock()
		if r, err := p.Sync(context.Background(), res.Entries); err != nil || r.Writes != 0 {
			t.Fatalf("%s: restarted programmer: %+v, %v", what, r, err)
		}
		rig.mu.Lock()
		if len(rig.writes) != before {
			t.Fatalf("%s: restarted programmer wrote", what)
		}
		rig.mu.Unlock()
		for j := 0; j < *flagHitless; j++ {
			old, oldState := res.Entries.Clone(), live.Clone()
			ch := c.change(g, live, pols)
			notePolicies(pols, ch)
			applyMsgs(t, live, ch...)
			changes := live.TakeChanges()
			res = tr.Apply(live.Clone(), changes)
			what := fmt.Sprintf("%s, seed %d, change %d (%s)", c.name, seed+uint64(i), j, changes)
			probes := hitProbes(r, g, []*model.State{oldState, live}, 40)
			if !rig.syncChecked(what, p, old, res.Entries, probes, st) || !checkOracle(t, what, live, probes, st) {
				p.Close()
				return st
			}
		}
		p.Close()
	}
	t.Logf("%d models, %d syncs in %d writes; %d snapshots probed (%d packets), %d probes whose outcome the change "+
		"moves, %d packets during syncs, %d outcomes checked against the oracle (%d disagree)",
		models, st.syncs, st.writes, st.snapshots, st.probes, st.changed, st.traffic, st.oracle, st.oracleDisagree)
	for k, n := range st.violations {
		t.Logf("%d × %s, e.g. %s", n, k, st.examples[k])
	}
	return st
}

// notePolicies keeps the last update of every policy and profile (to change one direction of it).
func notePolicies(pols map[string]*felixproto.ToDataplane, msgs []*felixproto.ToDataplane) {
	for _, m := range msgs {
		switch {
		case m.GetActivePolicyUpdate() != nil:
			pols["pol "+m.GetActivePolicyUpdate().GetId().GetTier()+"/"+m.GetActivePolicyUpdate().GetId().GetName()] = m
		case m.GetActivePolicyRemove() != nil:
			delete(pols, "pol "+m.GetActivePolicyRemove().GetId().GetTier()+"/"+m.GetActivePolicyRemove().GetId().GetName())
		case m.GetActiveProfileUpdate() != nil:
			pols["prof "+m.GetActiveProfileUpdate().GetId().GetName()] = m
		case m.GetActiveProfileRemove() != nil:
			delete(pols, "prof "+m.GetActiveProfileRemove().GetId().GetName())
		}
	}
}

// orderedModel drops host endpoints and repeated policies or profiles in a workload's lists: with them a
// packet can run one program in two checks (or twice in one list), and ordered writes switch each list
// position on its own (documented: what ordered writes do not guarantee).
func orderedModel(msgs []*felixproto.ToDataplane) []*felixproto.ToDataplane {
	var out []*felixproto.ToDataplane
	for _, m := range msgs {
		if m.GetHostEndpointUpdate() != nil {
			continue
		}
		if u := m.GetWorkloadEndpointUpdate(); u != nil {
			dedupeLists(u.GetEndpoint())
		}
		out = append(out, m)
	}
	return out
}

func dedupeLists(ep *felixproto.WorkloadEndpoint) {
	uniq := func(l []string) []string {
		var out []string
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	ep.ProfileIds = uniq(ep.ProfileIds)
	for _, tier := range ep.Tiers {
		tier.IngressPolicies = uniq(tier.IngressPolicies)
		tier.EgressPolicies = uniq(tier.EgressPolicies)
	}
}

// orderedChange is one change that make-before-break alone keeps hitless: a workload added or removed, or
// the rules of one direction of one policy or profile.
func orderedChange(g *gen.Gen, live *model.State, pols map[string]*felixproto.ToDataplane) []*felixproto.ToDataplane {
	present := func(i int) bool {
		id := gen.WorkloadID(i)
		for k := range live.WorkloadEndpoints.All() {
			if k.WorkloadID == id.WorkloadId {
				return true
			}
		}
		return false
	}
	switch g.R.IntN(3) {
	case 0, 1:
		i := g.R.IntN(len(gen.Workloads))
		if present(i) {
			return []*felixproto.ToDataplane{{Payload: &felixproto.ToDataplane_WorkloadEndpointRemove{
				WorkloadEndpointRemove: &felixproto.WorkloadEndpointRemove{Id: gen.WorkloadID(i)}}}}
		}
		m := g.Workload(i)
		dedupeLists(m.GetWorkloadEndpointUpdate().GetEndpoint())
		return []*felixproto.ToDataplane{m}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range pols {
			if !yield(k) {
				return
			}
		}
	})
	if len(keys) == 0 {
		return nil
	}
	b, err := pols[keys[g.R.IntN(len(keys))]].Marshal()
	if err != nil {
		panic(err)
	}
	m := &felixproto.ToDataplane{}
	if err := m.Unmarshal(b); err != nil {
		panic(err)
	}
	var rules []*felixproto.Rule
	for n := g.R.IntN(5); n > 0; n-- {
		rules = append(rules, g.Rule())
	}
	in := g.R.IntN(2) == 0
	switch {
	case m.GetActivePolicyUpdate() != nil:
		if in {
			m.GetActivePolicyUpdate().Policy.InboundRules = rules
		} else {
			m.GetActivePolicyUpdate().Policy.OutboundRules = rules
		}
	case m.GetActiveProfileUpdate() != nil:
		if in {
			m.GetActiveProfileUpdate().Profile.InboundRules = rules
		} else {
			m.GetActiveProfileUpdate().Profile.OutboundRules = rules
		}
	}
	return []*felixproto.ToDataplane{m}
}

// TestPolicyChangeIsWrittenMakeBeforeBreak: a policy of a running model changes; the writes the target
// receives (ordered mode, over gRPC) are the new version's steps and rules, then the list entries switching
// to it, then the deletion of the old version — no policy step or rule is modified in place.
func TestPolicyChangeIsWrittenMakeBeforeBreak(t *testing.T) {
	seed := seedRange(t, 30)
	checked := 0
	for i := 0; i < max(3, *flagModels/30) && !t.Failed(); i++ {
		g := gen.New(seed + uint64(i))
		rig := newHitlessRig(t, programmer.WriteModeOrdered)
		msgs := orderedModel(g.Model())
		pols := map[string]*felixproto.ToDataplane{}
		notePolicies(pols, msgs)
		live := model.NewState()
		applyMsgs(t, live, msgs...)
		tr := New(testPorts, genNode())
		res := tr.Apply(live.Clone(), live.TakeChanges())
		p := rig.open(1, 0, p4src.WriteOrderNames())
		if _, err := p.Sync(context.Background(), res.Entries); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 6; j++ {
			old := res.Entries.Clone()
			var ch []*felixproto.ToDataplane
			for len(ch) == 0 || (ch[0].GetActivePolicyUpdate() == nil && ch[0].GetActiveProfileUpdate() == nil) {
				ch = orderedChange(g, live, pols)
			}
			notePolicies(pols, ch)
			applyMsgs(t, live, ch...)
			changes := live.TakeChanges()
			res = tr.Apply(live.Clone(), changes)
			rig.mu.Lock()
			first := len(rig.writes)
			rig.mu.Unlock()
			if _, err := p.Sync(context.Background(), res.Entries); err != nil {
				t.Fatal(err)
			}
			rig.mu.Lock()
			writes := slices.Clone(rig.writes[first:])
			rig.mu.Unlock()
			steps := func(s *entry.Set) map[uint64]bool {
				m := map[uint64]bool{}
				for _, e := range s.All() {
					if id, ok := stepOf(e); ok {
						m[id] = true
					}
				}
				return m
			}
			inOld, inNew := steps(old), steps(res.Entries)
			what := fmt.Sprintf("seed %d, change %d (%s)", seed+uint64(i), j, changes)
			var seq []string // "new", "switch", "old" in write order
			for _, wr := range writes {
				for _, u := range wr.Updates {
					te := u.GetEntity().GetTableEntry()
					tb, _ := rig.info.TableByID(te.GetTableId())
					switch tb.Name {
					case string(p4src.TablePolicyStep), string(p4src.TablePolicyRule):
						var id uint64
						for _, m := range te.GetMatch() {
							if (tb.Name == string(p4src.TablePolicyStep) && m.GetFieldId() == uint32(p4src.KeyPolicyStepStepIDID)) ||
								(tb.Name == string(p4src.TablePolicyRule) && m.GetFieldId() == uint32(p4src.KeyPolicyRuleStepIDID)) {
								id = bytesUint(m.GetExact().GetValue())
							}
						}
						switch {
						case u.GetType() == p4v1.Update_MODIFY:
							t.Fatalf("%s: %s of step %d modified in place", what, tb.Name, id)
						case u.GetType() == p4v1.Update_INSERT && !inOld[id]:
							seq = append(seq, "new")
						case u.GetType() == p4v1.Update_DELETE && !inNew[id]:
							seq = append(seq, "old")
						default:
							t.Fatalf("%s: %v of %s for step %d, which both versions have", what, u.GetType(), tb.Name, id)
						}
					case string(p4src.TablePolicyList):
						if u.GetType() == p4v1.Update_MODIFY {
							seq = append(seq, "switch")
						}
					}
				}
			}
			if !slices.Contains(seq, "switch") {
				continue // the program runs in no list, or its version did not change
			}
			lastNew, firstOld, firstSwitch, lastSwitch := -1, len(seq), len(seq), -1
			for k, s := range seq {
				switch {
				case s == "new":
					lastNew = k
				case s == "old":
					firstOld = min(firstOld, k)
				default:
					firstSwitch, lastSwitch = min(firstSwitch, k), k
				}
			}
			if lastNew > firstSwitch || firstOld < lastSwitch {
				t.Fatalf("%s: write sequence %v: want the new version, the switches, then the old version's deletion", what, seq)
			}
			checked++
		}
		p.Close()
	}
	if checked == 0 {
		t.Fatal("no policy change switched a list")
	}
	t.Logf("%d policy changes written make-before-break", checked)
}
