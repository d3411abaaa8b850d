package dataplane

import (
	"context"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/projectcalico/calico/felix/proto"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/translator"
)

// The apply stage end to end on the embedded target, over real gRPC: what the translator produces for a
// real Felix capture is what a second P4Runtime client reads back from the target, a repeated apply writes
// nothing, and removing an endpoint removes its entries.
func TestEmbeddedTargetHoldsExactlyTheTranslatedEntries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	d, err := New(ctx, Config{Target: TargetEmbedded, P4RTListen: "127.0.0.1:0", Logger: zaptest.NewLogger(t), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	st := model.NewState()
	msgs := captureUntil(t, "basic.jsonl", "15 delete: workload frontend-2")
	for _, m := range msgs {
		if err := st.Apply(m); err != nil {
			t.Fatalf("model: %v", err)
		}
	}
	if err := d.Apply(ctx, st, st.TakeChanges()); err != nil {
		t.Fatalf("first apply: %v", err)
	}
	reader := readClient(ctx, t, d)
	want := tableCounts(translator.Translate(st, d.cfg.Ports, translator.Options{}).Entries)
	if got := targetCounts(ctx, t, reader); !equalCounts(got, want) {
		t.Fatalf("target holds %v entries per table, translator produced %v", got, want)
	}

	t.Logf("target entries per table: %v", targetCounts(ctx, t, reader))
	writes := writeUpdates(t, reg)
	if err := d.Apply(ctx, st, st.TakeChanges()); err != nil {
		t.Fatalf("repeated apply: %v", err)
	}
	if again := writeUpdates(t, reg); again != writes {
		t.Fatalf("a repeated apply with no change wrote %v updates", again-writes)
	}

	// Step 15 of the capture deletes frontend-2: its entries (port, source guard, next hop, …) go.
	for _, m := range captureStep(t, "basic.jsonl", "15 delete: workload frontend-2") {
		if err := st.Apply(m); err != nil {
			t.Fatalf("model: %v", err)
		}
	}
	if err := d.Apply(ctx, st, st.TakeChanges()); err != nil {
		t.Fatalf("apply after delete: %v", err)
	}
	want = tableCounts(translator.Translate(st, d.cfg.Ports, translator.Options{}).Entries)
	if got := targetCounts(ctx, t, reader); !equalCounts(got, want) {
		t.Fatalf("after the delete the target holds %v, translator produced %v", got, want)
	}
	if !d.Ready() {
		t.Fatal("dataplane not ready after successful applies")
	}
}

// captureUntil returns the capture's messages before the step whose name starts with stop.
func captureUntil(t *testing.T, name, stop string) []*proto.ToDataplane {
	t.Helper()
	var out []*proto.ToDataplane
	for _, it := range loadCapture(t, name).Items {
		if it.Msg == nil && strings.HasPrefix(it.Step, stop) {
			return out
		}
		if it.Msg != nil {
			out = append(out, it.Msg)
		}
	}
	t.Fatalf("no step %q in %s", stop, name)
	return nil
}

// captureStep returns the messages of the step whose name starts with step.
func captureStep(t *testing.T, name, step string) []*proto.ToDataplane {
	t.Helper()
	var out []*proto.ToDataplane
	for _, it := range loadCapture(t, name).Items {
		if it.Msg != nil && strings.HasPrefix(it.Step, step) {
			out = append(out, it.Msg)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no messages in step %q of %s", step, name)
	}
	return out
}

func loadCapture(t *testing.T, name string) *felixsim.Stream {
	t.Helper()
	s, err := felixsim.LoadStream(felixsim.CapturePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readClient is a second P4Runtime client (a backup: election id 0) that reads the target.
func readClient(ctx context.Context, t *testing.T, d *Dataplane) *p4rt.Client {
	t.Helper()
	c, err := p4rt.Dial(ctx, p4rt.Config{Address: d.p4rtAddress, DeviceID: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tableCounts counts the managed table entries of a set by table name.
func tableCounts(s *entry.Set) map[string]int {
	out := map[string]int{}
	for _, e := range s.All() {
		if e.Kind == entry.KindTable {
			out[e.Table]++
		}
	}
	return out
}

// targetCounts reads every table entry of the target and counts them by table name.
func targetCounts(ctx context.Context, t *testing.T, c *p4rt.Client) map[string]int {
	t.Helper()
	info, err := p4src.P4Info()
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint32]string{}
	for _, tb := range info.Tables {
		names[tb.Preamble.Id] = tb.Preamble.Name
	}
	learner := map[string]bool{}
	for _, l := range p4src.LearnerTables {
		learner[string(l)] = true
	}
	out := map[string]int{}
	all := []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}
	err = c.Read(ctx, all, func(e *p4v1.Entity) error {
		te := e.GetTableEntry()
		if te != nil && !te.IsDefaultAction && !learner[names[te.TableId]] {
			out[names[te.TableId]]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// writeUpdates is the number of updates the target has accepted or refused so far.
func writeUpdates(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "calico_p4_softswitch_write_updates_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// Unsupported features and warnings are logged once while they persist, not at every apply.
func TestReportLogsEachProblemOnce(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	d := &Dataplane{log: zap.New(core), m: newMetrics(nil), reported: map[string]bool{}}
	r := &translator.Report{
		Unsupported: []translator.Unsupported{{Feature: translator.FeatureHTTPMatch, Owner: "policy default/default.p", Detail: "inbound rule 0"}},
		Warnings:    []string{"next hop node2 has no MAC"},
	}
	d.report(r)
	d.report(r)
	if n := logs.Len(); n != 2 {
		t.Fatalf("two applies with the same problems logged %d lines, want 2 (one each)", n)
	}
	d.report(&translator.Report{})
	d.report(r)
	if n := logs.Len(); n != 4 {
		t.Fatalf("problems that went away and came back logged %d lines in all, want 4", n)
	}
}
