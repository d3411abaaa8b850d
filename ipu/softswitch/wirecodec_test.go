package softswitch

import (
	"context"
	"math/rand"
	"sync"
	"testing"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// randomWrite builds a WriteRequest that exercises every field the fast decoder handles and, with
// some probability, fields it leaves to proto.Unmarshal.
func randomWrite(rng *rand.Rand) *p4.WriteRequest {
	bs := func() []byte {
		b := make([]byte, rng.Intn(5))
		rng.Read(b)
		return b
	}
	req := &p4.WriteRequest{DeviceId: rng.Uint64() % 3, Role: []string{"", "r"}[rng.Intn(2)], Atomicity: p4.WriteRequest_Atomicity(rng.Intn(4) - 1)}
	if rng.Intn(2) == 0 {
		req.ElectionId = &p4.Uint128{High: rng.Uint64() % 2, Low: rng.Uint64()}
	}
	if rng.Intn(10) == 0 {
		req.RoleId = 5
	}
	for i := rng.Intn(6); i > 0; i-- {
		te := &p4.TableEntry{TableId: rng.Uint32(), Priority: int32(rng.Intn(20) - 5), ControllerMetadata: uint64(rng.Intn(3)),
			IsDefaultAction: rng.Intn(5) == 0, IdleTimeoutNs: int64(rng.Intn(3)) - 1, IsConst: rng.Intn(8) == 0}
		if rng.Intn(3) == 0 {
			te.Metadata = bs()
		}
		for j := rng.Intn(4); j > 0; j-- {
			fm := &p4.FieldMatch{FieldId: uint32(rng.Intn(4))}
			switch rng.Intn(7) {
			case 0:
				fm.FieldMatchType = &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: bs()}}
			case 1:
				fm.FieldMatchType = &p4.FieldMatch_Lpm{Lpm: &p4.FieldMatch_LPM{Value: bs(), PrefixLen: int32(rng.Intn(40) - 2)}}
			case 2:
				fm.FieldMatchType = &p4.FieldMatch_Ternary_{Ternary: &p4.FieldMatch_Ternary{Value: bs(), Mask: bs()}}
			case 3:
				fm.FieldMatchType = &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: bs(), High: bs()}}
			case 4:
				fm.FieldMatchType = &p4.FieldMatch_Optional_{Optional: &p4.FieldMatch_Optional{Value: bs()}}
			case 5:
				fm.FieldMatchType = &p4.FieldMatch_Other{Other: &anypb.Any{TypeUrl: "x"}}
			}
			te.Match = append(te.Match, fm)
		}
		switch rng.Intn(6) {
		case 0, 1:
			a := &p4.Action{ActionId: rng.Uint32()}
			for k := rng.Intn(3); k > 0; k-- {
				a.Params = append(a.Params, &p4.Action_Param{ParamId: uint32(rng.Intn(3)), Value: bs()})
			}
			te.Action = &p4.TableAction{Type: &p4.TableAction_Action{Action: a}}
		case 2:
			te.Action = &p4.TableAction{Type: &p4.TableAction_ActionProfileMemberId{ActionProfileMemberId: rng.Uint32()}}
		case 3:
			te.Action = &p4.TableAction{Type: &p4.TableAction_ActionProfileGroupId{ActionProfileGroupId: rng.Uint32()}}
		case 4:
			te.Action = &p4.TableAction{Type: &p4.TableAction_ActionProfileActionSet{ActionProfileActionSet: &p4.ActionProfileActionSet{}}}
		}
		switch rng.Intn(8) {
		case 0:
			te.CounterData = &p4.CounterData{PacketCount: rng.Int63n(5), ByteCount: -1}
		case 1:
			te.TimeSinceLastHit = &p4.TableEntry_IdleTimeout{}
		case 2:
			te.MeterConfig = &p4.MeterConfig{Cir: 1}
		}
		u := &p4.Update{Type: p4.Update_Type(rng.Intn(4)), Entity: &p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: te}}}
		switch rng.Intn(12) {
		case 0:
			u.Entity = &p4.Entity{Entity: &p4.Entity_CounterEntry{CounterEntry: &p4.CounterEntry{CounterId: 1}}}
		case 1:
			u.Entity = nil
		case 2, 3:
			m := &p4.ActionProfileMember{ActionProfileId: rng.Uint32(), MemberId: uint32(rng.Intn(3))}
			if rng.Intn(4) > 0 {
				m.Action = &p4.Action{ActionId: rng.Uint32()}
				for k := rng.Intn(3); k > 0; k-- {
					m.Action.Params = append(m.Action.Params, &p4.Action_Param{ParamId: uint32(rng.Intn(3)), Value: bs()})
				}
			}
			u.Entity = &p4.Entity{Entity: &p4.Entity_ActionProfileMember{ActionProfileMember: m}}
		case 4, 5:
			g := &p4.ActionProfileGroup{ActionProfileId: rng.Uint32(), GroupId: uint32(rng.Intn(3)), MaxSize: int32(rng.Intn(20) - 2)}
			for k := rng.Intn(4); k > 0; k-- {
				gm := &p4.ActionProfileGroup_Member{MemberId: uint32(rng.Intn(5)), Weight: int32(rng.Intn(5) - 1)}
				switch rng.Intn(6) {
				case 0:
					gm.WatchKind = &p4.ActionProfileGroup_Member_WatchPort{WatchPort: bs()}
				case 1:
					gm.WatchKind = &p4.ActionProfileGroup_Member_Watch{Watch: int32(rng.Intn(3))}
				}
				g.Members = append(g.Members, gm)
			}
			u.Entity = &p4.Entity{Entity: &p4.Entity_ActionProfileGroup{ActionProfileGroup: g}}
		}
		req.Updates = append(req.Updates, u)
	}
	return req
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	want := &p4.WriteRequest{}
	werr := proto.Unmarshal(b, want)
	got := &p4.WriteRequest{}
	if !decodeWriteRequest(b, got) {
		return // falls back to proto.Unmarshal
	}
	if werr != nil {
		t.Fatalf("fast decoder accepted %x, proto.Unmarshal failed: %v", b, werr)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("fast decoder: %v\nproto.Unmarshal: %v", got, want)
	}
}

func TestFastWriteDecoderAgreesWithProtoUnmarshal(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	fast := 0
	for i := 0; i < 5000; i++ {
		b, err := proto.Marshal(randomWrite(rng))
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, b)
		if decodeWriteRequest(b, &p4.WriteRequest{}) {
			fast++
		}
		// Corrupt a byte: the decoders must still agree whenever the fast one accepts.
		if len(b) > 0 {
			c := append([]byte(nil), b...)
			c[rng.Intn(len(c))] ^= byte(1 + rng.Intn(255))
			checkDecode(t, c)
			checkDecode(t, c[:rng.Intn(len(c))])
		}
	}
	if fast < 500 {
		t.Fatalf("fast path taken only %d times of 5000", fast)
	}
}

func FuzzDecodeWriteRequest(f *testing.F) {
	rng := rand.New(rand.NewSource(8))
	for i := 0; i < 50; i++ {
		b, _ := proto.Marshal(randomWrite(rng))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// TestPooledWriteDecoderLeavesNothingBehind decodes a stream of random requests through the server's
// codec, each released into the pool before the next, as the server does: every request must equal
// proto.Unmarshal's, whatever the decoder held before (reused slabs, half-decoded rejected requests).
func TestPooledWriteDecoderLeavesNothingBehind(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	decoded := new(sync.Map)
	codec := newWriteCodec(decoded)
	release := releaseWrites(decoded)
	pooled := 0
	for i := 0; i < 3000; i++ {
		b, err := proto.Marshal(randomWrite(rng))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && rng.Intn(4) == 0 {
			b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
		}
		want := &p4.WriteRequest{}
		werr := proto.Unmarshal(b, want)
		got := &p4.WriteRequest{}
		gerr := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("request %d: codec error %v, proto.Unmarshal error %v", i, gerr, werr)
		}
		if werr != nil {
			continue
		}
		if !proto.Equal(got, want) {
			t.Fatalf("request %d: codec %v\nproto.Unmarshal %v", i, got, want)
		}
		_, pooledHere := decoded.Load(got)
		_, err = release(context.Background(), got, &grpc.UnaryServerInfo{FullMethod: p4.P4Runtime_Write_FullMethodName},
			func(context.Context, any) (any, error) { return &p4.WriteResponse{}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if pooledHere {
			pooled++
			if _, still := decoded.Load(got); still || len(got.Updates) != 0 {
				t.Fatalf("request %d: not released after the call", i)
			}
		}
	}
	if pooled < 300 {
		t.Fatalf("pooled decoder used only %d times of 3000", pooled)
	}
}

func TestFastWriteDecoderTakesMembersAndGroups(t *testing.T) {
	req := &p4.WriteRequest{DeviceId: 1, Atomicity: p4.WriteRequest_DATAPLANE_ATOMIC, Updates: []*p4.Update{
		{Type: p4.Update_INSERT, Entity: &p4.Entity{Entity: &p4.Entity_ActionProfileMember{ActionProfileMember: &p4.ActionProfileMember{
			ActionProfileId: 7, MemberId: 3, Action: &p4.Action{ActionId: 9, Params: []*p4.Action_Param{{ParamId: 1, Value: []byte{1, 2}}}}}}}},
		{Type: p4.Update_MODIFY, Entity: &p4.Entity{Entity: &p4.Entity_ActionProfileGroup{ActionProfileGroup: &p4.ActionProfileGroup{
			ActionProfileId: 7, GroupId: 2, MaxSize: 4, Members: []*p4.ActionProfileGroup_Member{{MemberId: 3, Weight: 1}, {MemberId: 4, Weight: 2}}}}}},
	}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got := &p4.WriteRequest{}
	if !decodeWriteRequest(b, got) {
		t.Fatal("members and groups left to proto.Unmarshal")
	}
	if !proto.Equal(got, req) {
		t.Fatalf("decoded %v, want %v", got, req)
	}
}
