package softswitch_test

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/ipu/softswitch"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

func (ct *controller) packetOut(payload []byte, md ...*p4.PacketMetadata) {
	ct.h.t.Helper()
	if err := ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_Packet{Packet: &p4.PacketOut{Payload: payload, Metadata: md}}}); err != nil {
		ct.h.t.Fatal(err)
	}
}

// nextOf returns the next message satisfying keep, skipping others.
func (ct *controller) nextOf(keep func(*p4.StreamMessageResponse) bool) *p4.StreamMessageResponse {
	ct.h.t.Helper()
	for {
		if m := ct.next(); keep(m) {
			return m
		}
	}
}

func md(id uint32, v ...byte) *p4.PacketMetadata { return &p4.PacketMetadata{MetadataId: id, Value: v} }

func TestPacketOutReachesTheHandlerAndBadOnesGetStreamErrors(t *testing.T) {
	h := newHarness(t)
	got := make(chan softswitch.Packet, 4)
	h.srv.SetPacketOutHandler(func(p softswitch.Packet) error { got <- p; return nil })
	ct := h.primary(1)
	ct.commit()
	ct.packetOut([]byte("frame"), md(1, 0, 0, 0x01, 0x02), md(2, 3))
	select {
	case p := <-got:
		if string(p.Payload) != "frame" || !bytes.Equal(p.Metadata[0], []byte{0, 0, 1, 2}) || !bytes.Equal(p.Metadata[1], []byte{3}) {
			t.Fatalf("packet-out delivered as %+v", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("packet-out not delivered")
	}
	isErr := func(m *p4.StreamMessageResponse) bool { return m.GetError() != nil }
	for _, tc := range []struct {
		name string
		md   []*p4.PacketMetadata
	}{
		{"unknown metadata id", []*p4.PacketMetadata{md(1, 1), md(2, 0), md(9, 1)}},
		{"missing metadata", []*p4.PacketMetadata{md(1, 1)}},
		{"metadata too wide", []*p4.PacketMetadata{md(1, 1), md(2, 1, 0)}},
		{"metadata twice", []*p4.PacketMetadata{md(1, 1), md(1, 2), md(2, 0)}},
	} {
		ct.packetOut([]byte("x"), tc.md...)
		e := ct.nextOf(isErr).GetError()
		if codes.Code(e.CanonicalCode) != codes.InvalidArgument || e.GetPacketOut() == nil {
			t.Fatalf("%s: stream error %v", tc.name, e)
		}
	}
	// A backup's packet-out is refused.
	b := h.openStream()
	b.arbitrate(eid(0), "")
	b.nextArbitration()
	b.packetOut([]byte("x"), md(1, 1), md(2, 0))
	if e := b.nextOf(isErr).GetError(); codes.Code(e.CanonicalCode) != codes.PermissionDenied {
		t.Fatalf("backup packet-out: %v", e)
	}
	// Without a CPU port handler: FAILED_PRECONDITION.
	h.srv.SetPacketOutHandler(nil)
	ct.packetOut([]byte("x"), md(1, 1), md(2, 0))
	if e := ct.nextOf(isErr).GetError(); codes.Code(e.CanonicalCode) != codes.FailedPrecondition {
		t.Fatalf("no handler: %v", e)
	}
	if len(got) != 0 {
		t.Fatal("an invalid packet-out reached the handler")
	}
}

func TestPacketInGoesToThePrimaryOnly(t *testing.T) {
	h := newHarness(t)
	if err := h.srv.SendPacketIn(softswitch.Packet{Payload: []byte("p")}); err == nil {
		t.Fatal("packet-in without a pipeline accepted")
	}
	ct := h.primary(5)
	ct.commit()
	b := h.openStream()
	b.arbitrate(eid(1), "")
	b.nextArbitration()
	if err := h.srv.SendPacketIn(softswitch.Packet{Payload: []byte("hello"), Metadata: [][]byte{{0, 0, 0, 7}, {2}}}); err != nil {
		t.Fatal(err)
	}
	pi := ct.nextOf(func(m *p4.StreamMessageResponse) bool { return m.GetPacket() != nil }).GetPacket()
	if string(pi.Payload) != "hello" || len(pi.Metadata) != 2 || !bytes.Equal(pi.Metadata[0].Value, []byte{7}) || pi.Metadata[1].MetadataId != 2 {
		t.Fatalf("packet-in %v", pi)
	}
	if err := h.srv.SendPacketIn(softswitch.Packet{Payload: []byte("x"), Metadata: [][]byte{{1}}}); err == nil {
		t.Fatal("packet-in with missing metadata accepted")
	}
	if err := h.srv.SendPacketIn(softswitch.Packet{Payload: []byte("x"), Metadata: [][]byte{{1}, {1, 0}}}); err == nil {
		t.Fatal("packet-in with too wide metadata accepted")
	}
	ct.cancel()
	b.nextArbitration() // told the primary left
	if err := h.srv.SendPacketIn(softswitch.Packet{Payload: []byte("x"), Metadata: [][]byte{{1}, {1}}}); !errors.Is(err, softswitch.ErrNoPrimary) {
		t.Fatalf("packet-in with no primary: %v", err)
	}
	select {
	case m := <-b.msgs:
		t.Fatalf("backup received %v", m)
	default:
	}
}

func macDigest(mac byte, port byte) *p4.P4Data {
	return &p4.P4Data{Data: &p4.P4Data_Struct{Struct: &p4.P4StructLike{Members: []*p4.P4Data{bits(2, 0, 0, 0, 0, mac), bits(port)}}}}
}

func TestDigestsAreBufferedDeduplicatedAndAcked(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	h.srv.EmitDigest(dgMac, macDigest(1, 1)) // not enabled: dropped
	ct.mustWrite(ins(digest(dgMac, &p4.DigestEntry_Config{MaxTimeoutNs: int64(time.Hour), MaxListSize: 3, AckTimeoutNs: int64(time.Hour)})))
	h.srv.EmitDigest(dgMac, macDigest(1, 1))
	h.srv.EmitDigest(dgMac, macDigest(1, 1)) // duplicate in the buffer
	h.srv.EmitDigest(dgMac, macDigest(2, 1))
	h.srv.EmitDigest(dgMac, macDigest(3, 1)) // third distinct: the list is sent
	isDigest := func(m *p4.StreamMessageResponse) bool { return m.GetDigest() != nil }
	l := ct.nextOf(isDigest).GetDigest()
	if l.DigestId != dgMac || len(l.Data) != 3 || l.ListId == 0 {
		t.Fatalf("digest list %v", l)
	}
	// Cached until acked: the same message again is suppressed; after the ack it is sent again.
	h.srv.EmitDigest(dgMac, macDigest(1, 1))
	h.srv.EmitDigest(dgMac, macDigest(4, 1))
	h.srv.EmitDigest(dgMac, macDigest(5, 1))
	if err := ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_DigestAck{DigestAck: &p4.DigestListAck{DigestId: dgMac, ListId: l.ListId}}}); err != nil {
		t.Fatal(err)
	}
	// The ack is processed before later emits only once the server has read it; wait for that through
	// a round trip on the stream (an ack for an unknown digest produces a stream error).
	_ = ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_DigestAck{DigestAck: &p4.DigestListAck{DigestId: 0x17000fff}}})
	if e := ct.nextOf(func(m *p4.StreamMessageResponse) bool { return m.GetError() != nil }).GetError(); codes.Code(e.CanonicalCode) != codes.InvalidArgument {
		t.Fatalf("ack of an unknown digest: %v", e)
	}
	h.srv.EmitDigest(dgMac, macDigest(1, 1))
	l2 := ct.nextOf(isDigest).GetDigest()
	if len(l2.Data) != 3 || l2.ListId == l.ListId {
		t.Fatalf("second list %v", l2)
	}
	// A zero max_timeout sends every message at once.
	ct.mustWrite(mod(digest(dgMac, &p4.DigestEntry_Config{})))
	h.srv.EmitDigest(dgMac, macDigest(9, 9))
	if l3 := ct.nextOf(isDigest).GetDigest(); len(l3.Data) != 1 {
		t.Fatalf("immediate list %v", l3)
	}
	// max_timeout flushes a partial list.
	ct.mustWrite(mod(digest(dgMac, &p4.DigestEntry_Config{MaxTimeoutNs: int64(10 * time.Millisecond), MaxListSize: 100})))
	h.srv.EmitDigest(dgMac, macDigest(10, 1))
	if l4 := ct.nextOf(isDigest).GetDigest(); len(l4.Data) != 1 {
		t.Fatalf("timed-out list %v", l4)
	}
}

func TestIdleTimeoutNotificationsReachThePrimary(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	e := withTE(te(tIdle, 0, setPort, exact(1, 10, 0, 0, 9)), func(t *p4.TableEntry) { t.IdleTimeoutNs = int64(50 * time.Millisecond); t.Metadata = []byte("idle") })
	ct.mustWrite(ins(e))
	n := ct.nextOf(func(m *p4.StreamMessageResponse) bool { return m.GetIdleTimeoutNotification() != nil }).GetIdleTimeoutNotification()
	if len(n.TableEntry) != 1 || n.Timestamp == 0 {
		t.Fatalf("notification %v", n)
	}
	got := n.TableEntry[0]
	if got.TableId != tIdle || got.IdleTimeoutNs != int64(50*time.Millisecond) || string(got.Metadata) != "idle" || len(got.Match) != 1 {
		t.Fatalf("notified entry %v", got)
	}
}

func TestLearnedEntriesExpireThroughTheServerSweep(t *testing.T) {
	h := newHarness(t, func(c *softswitch.Config) {
		c.StoreOptions.Learners = map[string]tables.LearnerConfig{"ingress.ct": {Profiles: []time.Duration{30 * time.Millisecond}}}
	})
	ct := h.primary(1)
	ct.commit()
	st, tbl := h.table(tCT)
	key := []byte{10, 0, 0, 1, 10, 0, 0, 2, 6, 0, 80, 1, 0}
	if _, err := h.srv.Learn(tbl, key, aCtHit, []byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(h.mustRead(entTE(&p4.TableEntry{TableId: tCT}))); n != 1 {
		t.Fatalf("learned entry not readable: %d", n)
	}
	_ = st
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, tbl := h.table(tCT); st.Lookup(tbl, key) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("learned entry never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := metricValue(t, h, "calico_p4_softswitch_learned_entries_expired_total"); v != 1 {
		t.Fatalf("expired metric %v", v)
	}
}

// A modified entry is folded back into one slot by the server's sweep once it has been versioned for
// CollapseAge, and keeps reading its newest action.
func TestModifiedEntriesCollapseThroughTheServerSweep(t *testing.T) {
	h := newHarness(t, func(c *softswitch.Config) {
		c.StoreOptions.CollapseAge = 20 * time.Millisecond
		c.SweepInterval = 10 * time.Millisecond
	})
	ct := h.primary(1)
	ct.commit()
	ct.mustWrite(ins(exactEntry(7, 1)))
	ct.mustWrite(mod(exactEntry(7, 2)))
	deadline := time.Now().Add(30 * time.Second)
	for metricValue(t, h, "calico_p4_softswitch_entries_collapsed_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the modified entry was never collapsed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := h.mustRead(entTE(&p4.TableEntry{TableId: tExact}))
	if len(got) != 1 || got[0].GetTableEntry().GetAction().GetAction().GetParams()[0].GetValue()[0] != 2 {
		t.Fatalf("after collapsing, the entry reads %v", got)
	}
}

// metricValue sums a metric family's samples (counters and gauges) from the server's registry.
func metricValue(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

func TestDebugDumpShowsEntriesByName(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	ct.mustWrite(ins(exactEntry(5, 3)), ins(member(pECMP, 1, nhop(1, 1))))
	rec := httptest.NewRecorder()
	h.srv.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"table ingress.exact_tbl", "hdr.eth.dst=0x20000000005", "ingress.set_port(port=0x3)", "member 1: ingress.set_nhop(nhop=0xa000001, port=0x1)"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("dump lacks %q:\n%s", want, body)
		}
	}
	rec = httptest.NewRecorder()
	h.srv.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug?format=json", nil))
	if !strings.Contains(rec.Body.String(), `"name": "ingress.exact_tbl"`) {
		t.Fatalf("json dump:\n%s", rec.Body.String())
	}
}
