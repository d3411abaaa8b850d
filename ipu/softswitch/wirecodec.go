package softswitch

import (
	"context"
	"sync"
	"unicode/utf8"
	"unsafe"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// writeCodec is the server's gRPC codec: the standard protobuf codec, except that a WriteRequest made
// of table-entry, member and group updates is decoded by decodeWriteRequest, which builds the same messages from a few
// slab allocations per batch instead of ~15 small allocations per update (the Write path's largest cost
// after the store itself). Anything it does not handle falls back to proto.Unmarshal, so the result is
// always what proto.Unmarshal would produce (FuzzDecodeWriteRequest checks it).
//
// The decoder's memory (the request's bytes and its slabs of messages) is reused: once the Write call
// has returned through every interceptor, the server's outermost interceptor (releaseWrites) hands the
// decoder back to a pool, so a steady stream of batches leaves no per-request garbage for the GC. A
// WriteRequest must therefore not be kept by an interceptor after it returns (clone it).
type writeCodec struct {
	base    encoding.CodecV2
	decoded *sync.Map // *p4.WriteRequest → *wireDecoder, until releaseWrites
}

func newWriteCodec(decoded *sync.Map) encoding.CodecV2 {
	return writeCodec{base: encoding.GetCodecV2("proto"), decoded: decoded}
}

func (c writeCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }
func (c writeCodec) Name() string                           { return "proto" }

func (c writeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*p4.WriteRequest)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	d := decoderPool.Get().(*wireDecoder)
	n := data.Len()
	if cap(d.raw) < n {
		d.raw = make([]byte, n)
	}
	d.raw = d.raw[:n]
	data.CopyTo(d.raw) // the decoded bytes fields alias it
	if d.decode(d.raw, req) {
		c.decoded.Store(req, d)
		return nil
	}
	d.release()
	proto.Reset(req)
	return proto.Unmarshal(data.Materialize(), req)
}

// releaseWrites is the server's outermost unary interceptor: after a Write has returned, the memory
// its request was decoded into goes back to the decoder pool.
func releaseWrites(decoded *sync.Map) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if wr, ok := req.(*p4.WriteRequest); ok {
			if d, ok := decoded.LoadAndDelete(wr); ok {
				proto.Reset(wr)
				d.(*wireDecoder).release()
			}
		}
		return resp, err
	}
}

var decoderPool = sync.Pool{New: func() any { return new(wireDecoder) }}

// slab hands out zeroed values from chunks, so a batch's messages cost a few allocations; reset keeps
// the last (largest) chunk for the next batch.
type slab[T any] struct{ buf []T }

func (s *slab[T]) new() *T {
	if len(s.buf) == cap(s.buf) {
		n := 2 * cap(s.buf)
		if n < 4 {
			n = 4
		}
		if n > 4096 {
			n = 4096
		}
		s.buf = make([]T, 0, n)
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

func (s *slab[T]) reset() {
	var zero T
	if uintptr(cap(s.buf))*unsafe.Sizeof(zero) > maxPooledSlab {
		s.buf = nil // from a large batch: kept, it would be scanned by every GC cycle for nothing
		return
	}
	clear(s.buf)
	s.buf = s.buf[:0]
}

// maxPooledSlab bounds the chunk a pooled slab keeps (bytes): enough for the messages of a batch of
// ~1000 updates, so the steady state of incremental writes allocates nothing; the chunks of bulk
// batches are dropped.
const maxPooledSlab = 256 << 10

// ptrs carves fixed sub-slices out of shared pointer arrays (growing chunks, like slab).
type ptrs[T any] struct{ buf []*T }

func (p *ptrs[T]) take(items []*T) []*T {
	if len(items) == 0 {
		return nil
	}
	if cap(p.buf)-len(p.buf) < len(items) {
		n := min(max(2*cap(p.buf), 8), 4096)
		if len(items) > n {
			n = len(items)
		}
		p.buf = make([]*T, 0, n)
	}
	start := len(p.buf)
	p.buf = append(p.buf, items...)
	return p.buf[start:len(p.buf):len(p.buf)]
}

func (p *ptrs[T]) reset() {
	var zero *T
	if uintptr(cap(p.buf))*unsafe.Sizeof(zero) > maxPooledSlab {
		p.buf = nil
		return
	}
	clear(p.buf)
	p.buf = p.buf[:0]
}

type wireDecoder struct {
	updates    slab[p4.Update]
	entities   slab[p4.Entity]
	teWrap     slab[p4.Entity_TableEntry]
	tes        slab[p4.TableEntry]
	fms        slab[p4.FieldMatch]
	exW        slab[p4.FieldMatch_Exact_]
	ex         slab[p4.FieldMatch_Exact]
	lpmW       slab[p4.FieldMatch_Lpm]
	lpm        slab[p4.FieldMatch_LPM]
	ternW      slab[p4.FieldMatch_Ternary_]
	tern       slab[p4.FieldMatch_Ternary]
	rngW       slab[p4.FieldMatch_Range_]
	rng        slab[p4.FieldMatch_Range]
	optW       slab[p4.FieldMatch_Optional_]
	opt        slab[p4.FieldMatch_Optional]
	tas        slab[p4.TableAction]
	taAct      slab[p4.TableAction_Action]
	taMem      slab[p4.TableAction_ActionProfileMemberId]
	taGrp      slab[p4.TableAction_ActionProfileGroupId]
	acts       slab[p4.Action]
	params     slab[p4.Action_Param]
	members    slab[p4.ActionProfileMember]
	memWrap    slab[p4.Entity_ActionProfileMember]
	groups     slab[p4.ActionProfileGroup]
	grpWrap    slab[p4.Entity_ActionProfileGroup]
	gms        slab[p4.ActionProfileGroup_Member]
	gmPtrs     ptrs[p4.ActionProfileGroup_Member]
	scratchGM  []*p4.ActionProfileGroup_Member
	fmPtrs     ptrs[p4.FieldMatch]
	paramPtrs  ptrs[p4.Action_Param]
	scratchFM  []*p4.FieldMatch
	scratchPar []*p4.Action_Param
	raw        []byte // the request's bytes (decoded bytes fields alias it)
}

// release clears what the decoder handed out (nothing may use it any more) and returns it to the pool.
func (d *wireDecoder) release() {
	d.updates.reset()
	d.entities.reset()
	d.teWrap.reset()
	d.tes.reset()
	d.fms.reset()
	d.exW.reset()
	d.ex.reset()
	d.lpmW.reset()
	d.lpm.reset()
	d.ternW.reset()
	d.tern.reset()
	d.rngW.reset()
	d.rng.reset()
	d.optW.reset()
	d.opt.reset()
	d.tas.reset()
	d.taAct.reset()
	d.taMem.reset()
	d.taGrp.reset()
	d.acts.reset()
	d.params.reset()
	d.members.reset()
	d.memWrap.reset()
	d.groups.reset()
	d.grpWrap.reset()
	d.gms.reset()
	d.gmPtrs.reset()
	clear(d.scratchGM)
	d.scratchGM = d.scratchGM[:0]
	d.fmPtrs.reset()
	d.paramPtrs.reset()
	clear(d.scratchFM)
	clear(d.scratchPar)
	d.scratchFM, d.scratchPar = d.scratchFM[:0], d.scratchPar[:0]
	if cap(d.raw) > maxPooledRaw {
		d.raw = nil
	}
	if cap(d.scratchFM) > 1024 {
		d.scratchFM = nil
	}
	if cap(d.scratchPar) > 1024 {
		d.scratchPar = nil
	}
	if cap(d.scratchGM) > 1024 {
		d.scratchGM = nil
	}
	decoderPool.Put(d)
}

// maxPooledRaw bounds the request buffer a pooled decoder keeps (larger requests allocate their own).
const maxPooledRaw = 1 << 20

// decodeWriteRequest fills req from b when every update is a table entry, an action profile member or
// an action profile group made of the common fields; it returns false (req possibly half filled) for
// anything else: other entities, meters, action sets, watch ports, unknown or repeated singular fields,
// wrong wire types, malformed input.
func decodeWriteRequest(b []byte, req *p4.WriteRequest) bool {
	return new(wireDecoder).decode(b, req)
}

// decode is decodeWriteRequest with d's slabs (d must be new or released).
func (d *wireDecoder) decode(b []byte, req *p4.WriteRequest) bool {
	var ups []*p4.Update
	seenElection := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			req.DeviceId, b = v, b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			req.RoleId, b = v, b[n:]
		case num == 6 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !utf8.Valid(v) {
				return false
			}
			req.Role, b = string(v), b[n:]
		case num == 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			req.Atomicity, b = p4.WriteRequest_Atomicity(int32(v)), b[n:]
		case num == 3 && typ == protowire.BytesType:
			if seenElection {
				return false
			}
			seenElection = true
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			e := &p4.Uint128{}
			if !decodeUint128(v, e) {
				return false
			}
			req.ElectionId, b = e, b[n:]
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			u := d.updates.new()
			if !d.update(v, u) {
				return false
			}
			ups, b = append(ups, u), b[n:]
		default:
			return false
		}
	}
	req.Updates = ups
	return true
}

func decodeUint128(b []byte, e *p4.Uint128) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType || (num != 1 && num != 2) {
			return false
		}
		v, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			return false
		}
		if num == 1 {
			e.High = v
		} else {
			e.Low = v
		}
		b = b[n+m:]
	}
	return true
}

// fields iterates over the fields of a message, calling f for each; f returns false to reject.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			x, m := protowire.ConsumeVarint(b)
			if m < 0 || !f(num, typ, nil, x) {
				return false
			}
			b = b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || !f(num, typ, v, 0) {
				return false
			}
			b = b[m:]
		default:
			return false
		}
	}
	return true
}

func (d *wireDecoder) update(b []byte, u *p4.Update) bool {
	seenEntity := false
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		switch {
		case num == 1 && typ == protowire.VarintType:
			u.Type = p4.Update_Type(int32(x))
		case num == 2 && typ == protowire.BytesType && !seenEntity:
			seenEntity = true
			e := d.entities.new()
			if !d.entity(v, e) {
				return false
			}
			u.Entity = e
		default:
			return false
		}
		return true
	})
}

func (d *wireDecoder) entity(b []byte, e *p4.Entity) bool {
	seen := false
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) bool {
		if typ != protowire.BytesType || seen {
			return false // one entity per update
		}
		seen = true
		switch num {
		case 2:
			te := d.tes.new()
			if !d.tableEntry(v, te) {
				return false
			}
			w := d.teWrap.new()
			w.TableEntry = te
			e.Entity = w
		case 3:
			m := d.members.new()
			if !d.member(v, m) {
				return false
			}
			w := d.memWrap.new()
			w.ActionProfileMember = m
			e.Entity = w
		case 4:
			g := d.groups.new()
			if !d.group(v, g) {
				return false
			}
			w := d.grpWrap.new()
			w.ActionProfileGroup = g
			e.Entity = w
		default:
			return false // other entities: the general decoder
		}
		return true
	})
}

func (d *wireDecoder) member(b []byte, m *p4.ActionProfileMember) bool {
	seenAction := false
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.ActionProfileId = uint32(x)
		case num == 2 && typ == protowire.VarintType:
			m.MemberId = uint32(x)
		case num == 3 && typ == protowire.BytesType && !seenAction:
			seenAction = true
			a := d.acts.new()
			if !d.action(v, a) {
				return false
			}
			m.Action = a
		default:
			return false
		}
		return true
	})
}

func (d *wireDecoder) group(b []byte, g *p4.ActionProfileGroup) bool {
	d.scratchGM = d.scratchGM[:0]
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		switch {
		case num == 1 && typ == protowire.VarintType:
			g.ActionProfileId = uint32(x)
		case num == 2 && typ == protowire.VarintType:
			g.GroupId = uint32(x)
		case num == 3 && typ == protowire.BytesType:
			gm := d.gms.new()
			if !fields(v, func(n protowire.Number, t protowire.Type, _ []byte, y uint64) bool {
				switch {
				case n == 1 && t == protowire.VarintType:
					gm.MemberId = uint32(y)
				case n == 2 && t == protowire.VarintType:
					gm.Weight = int32(y)
				default:
					return false // watch ports: the general decoder
				}
				return true
			}) {
				return false
			}
			d.scratchGM = append(d.scratchGM, gm)
		case num == 4 && typ == protowire.VarintType:
			g.MaxSize = int32(x)
		default:
			return false
		}
		return true
	})
	if !ok {
		return false
	}
	g.Members = d.gmPtrs.take(d.scratchGM)
	return true
}

func (d *wireDecoder) tableEntry(b []byte, te *p4.TableEntry) bool {
	d.scratchFM = d.scratchFM[:0]
	var seenAction, seenCounter bool
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		switch {
		case num == 1 && typ == protowire.VarintType:
			te.TableId = uint32(x)
		case num == 2 && typ == protowire.BytesType:
			fm := d.fms.new()
			if !d.fieldMatch(v, fm) {
				return false
			}
			d.scratchFM = append(d.scratchFM, fm)
		case num == 3 && typ == protowire.BytesType && !seenAction:
			seenAction = true
			ta := d.tas.new()
			if !d.tableAction(v, ta) {
				return false
			}
			te.Action = ta
		case num == 4 && typ == protowire.VarintType:
			te.Priority = int32(x)
		case num == 5 && typ == protowire.VarintType:
			te.ControllerMetadata = x
		case num == 7 && typ == protowire.BytesType && !seenCounter:
			seenCounter = true
			cd := &p4.CounterData{}
			if !fields(v, func(n protowire.Number, t protowire.Type, _ []byte, x uint64) bool {
				switch {
				case n == 1 && t == protowire.VarintType:
					cd.ByteCount = int64(x)
				case n == 2 && t == protowire.VarintType:
					cd.PacketCount = int64(x)
				default:
					return false
				}
				return true
			}) {
				return false
			}
			te.CounterData = cd
		case num == 8 && typ == protowire.VarintType:
			te.IsDefaultAction = x != 0
		case num == 9 && typ == protowire.VarintType:
			te.IdleTimeoutNs = int64(x)
		case num == 11 && typ == protowire.BytesType:
			te.Metadata = v
		case num == 13 && typ == protowire.VarintType:
			te.IsConst = x != 0
		default:
			return false // meters, time_since_last_hit, unknown fields: the general decoder
		}
		return true
	})
	if !ok {
		return false
	}
	te.Match = d.fmPtrs.take(d.scratchFM)
	return true
}

// valueFields decodes a match sub-message made of up to two bytes fields (1, 2) and an optional
// varint field (2 for lpm's prefix_len).
func valueFields(b []byte, varint2 bool) (v1, v2 []byte, x int32, ok bool) {
	ok = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) bool {
		switch {
		case num == 1 && typ == protowire.BytesType:
			v1 = v
		case num == 2 && varint2 && typ == protowire.VarintType:
			x = int32(n)
		case num == 2 && !varint2 && typ == protowire.BytesType:
			v2 = v
		default:
			return false
		}
		return true
	})
	return
}

func (d *wireDecoder) fieldMatch(b []byte, fm *p4.FieldMatch) bool {
	seen := false
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		if num == 1 && typ == protowire.VarintType {
			fm.FieldId = uint32(x)
			return true
		}
		if typ != protowire.BytesType || seen {
			return false
		}
		seen = true
		switch num {
		case 2:
			v1, _, _, ok := valueFields(v, false)
			m := d.ex.new()
			m.Value = v1
			w := d.exW.new()
			w.Exact = m
			fm.FieldMatchType = w
			return ok && !hasField(v, 2)
		case 3:
			v1, v2, _, ok := valueFields(v, false)
			m := d.tern.new()
			m.Value, m.Mask = v1, v2
			w := d.ternW.new()
			w.Ternary = m
			fm.FieldMatchType = w
			return ok
		case 4:
			v1, _, plen, ok := valueFields(v, true)
			m := d.lpm.new()
			m.Value, m.PrefixLen = v1, plen
			w := d.lpmW.new()
			w.Lpm = m
			fm.FieldMatchType = w
			return ok
		case 6:
			v1, v2, _, ok := valueFields(v, false)
			m := d.rng.new()
			m.Low, m.High = v1, v2
			w := d.rngW.new()
			w.Range = m
			fm.FieldMatchType = w
			return ok
		case 7:
			v1, _, _, ok := valueFields(v, false)
			m := d.opt.new()
			m.Value = v1
			w := d.optW.new()
			w.Optional = m
			fm.FieldMatchType = w
			return ok && !hasField(v, 2)
		}
		return false
	})
}

// hasField reports whether field 2 occurs in a message (exact/optional have only field 1).
func hasField(b []byte, want protowire.Number) bool {
	found := false
	fields(b, func(num protowire.Number, _ protowire.Type, _ []byte, _ uint64) bool {
		found = found || num == want
		return true
	})
	return found
}

func (d *wireDecoder) tableAction(b []byte, ta *p4.TableAction) bool {
	seen := false
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		if seen {
			return false
		}
		seen = true
		switch {
		case num == 1 && typ == protowire.BytesType:
			a := d.acts.new()
			if !d.action(v, a) {
				return false
			}
			w := d.taAct.new()
			w.Action = a
			ta.Type = w
		case num == 2 && typ == protowire.VarintType:
			w := d.taMem.new()
			w.ActionProfileMemberId = uint32(x)
			ta.Type = w
		case num == 3 && typ == protowire.VarintType:
			w := d.taGrp.new()
			w.ActionProfileGroupId = uint32(x)
			ta.Type = w
		default:
			return false // one-shot action sets: the general decoder
		}
		return true
	})
}

func (d *wireDecoder) action(b []byte, a *p4.Action) bool {
	d.scratchPar = d.scratchPar[:0]
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) bool {
		switch {
		case num == 1 && typ == protowire.VarintType:
			a.ActionId = uint32(x)
		case num == 4 && typ == protowire.BytesType:
			p := d.params.new()
			if !fields(v, func(n protowire.Number, t protowire.Type, pv []byte, px uint64) bool {
				switch {
				case n == 2 && t == protowire.VarintType:
					p.ParamId = uint32(px)
				case n == 3 && t == protowire.BytesType:
					p.Value = pv
				default:
					return false
				}
				return true
			}) {
				return false
			}
			d.scratchPar = append(d.scratchPar, p)
		default:
			return false
		}
		return true
	})
	if !ok {
		return false
	}
	a.Params = d.paramPtrs.take(d.scratchPar)
	return true
}
