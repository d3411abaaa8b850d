package tables

import (
	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
)

// This file converts P4Runtime messages into store values, validating them as P4Runtime 1.4 asks
// (§9.1 TableEntry, §8.4 bytestrings). Every rejection is an *Error with the spec's code.

// decodeAction validates an Action for the given allowed set. forDefault selects which scope is
// allowed (DEFAULT_ONLY actions only as default, TABLE_ONLY never as default).
//
// The params go into dst when it is long enough (an entry's inline buffer), else into a new slice.
func decodeAction(a *p4.Action, allowed map[uint32]ActionRefInfo, forDefault, strict bool, where desc, dst []byte) (Action, *Error) {
	if a.ActionId == 0 {
		return Action{}, errf(codes.InvalidArgument, "%s: action id 0", where)
	}
	ref, ok := allowed[a.ActionId]
	if !ok {
		return Action{}, errf(codes.InvalidArgument, "%s: action %#x is not an action of this table", where, a.ActionId)
	}
	if forDefault && ref.Scope == ScopeTableOnly {
		return Action{}, errf(codes.PermissionDenied, "%s: action %q is @tableonly and cannot be the default action", where, ref.Action.Name)
	}
	if !forDefault && ref.Scope == ScopeDefaultOnly {
		return Action{}, errf(codes.PermissionDenied, "%s: action %q is @defaultonly and cannot be used in an entry", where, ref.Action.Name)
	}
	ai := ref.Action
	out := Action{ID: ai.ID, Info: ai}
	if n := ai.ParamsLen; len(dst) >= n && n > 0 {
		out.Params = dst[:n:n]
		clear(out.Params)
	} else {
		out.Params = make([]byte, n)
	}
	var seen uint64
	var seenMap map[uint32]bool
	if len(ai.Params) > 64 {
		seenMap = map[uint32]bool{}
	}
	for _, p := range a.Params {
		i, ok := ai.paramByID[p.ParamId]
		if !ok {
			return Action{}, errf(codes.InvalidArgument, "%s: action %q has no param id %d", where, ai.Name, p.ParamId)
		}
		if seenMap != nil {
			if seenMap[p.ParamId] {
				return Action{}, errf(codes.InvalidArgument, "%s: action %q: param id %d given twice", where, ai.Name, p.ParamId)
			}
			seenMap[p.ParamId] = true
		} else {
			if seen&(1<<uint(i)) != 0 {
				return Action{}, errf(codes.InvalidArgument, "%s: action %q: param id %d given twice", where, ai.Name, p.ParamId)
			}
			seen |= 1 << uint(i)
		}
		pi := &ai.Params[i]
		if err := putBits(out.Params[pi.Offset:pi.Offset+pi.Width], p.Value, pi.Bitwidth, strict, desc{where.a, where.b, where.c, "param", pi.Name}); err != nil {
			return Action{}, err
		}
	}
	if len(a.Params) != len(ai.Params) {
		return Action{}, errf(codes.InvalidArgument, "%s: action %q needs %d params, got %d", where, ai.Name, len(ai.Params), len(a.Params))
	}
	return out, nil
}

// decodeMatch builds the key, mask, ranges and rank of a (non-default) entry of table t.
func decodeMatch(t *TableInfo, ms []*p4.FieldMatch, priority int32, strict bool) (*Entry, *Error) {
	e := new(Entry)
	if err := decodeMatchInto(e, t, ms, priority, strict); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeMatchInto is decodeMatch into e (reset first), for probes that only look an entry up (MODIFY,
// DELETE): a write transaction reuses one probe instead of allocating an Entry per update.
func decodeMatchInto(e *Entry, t *TableInfo, ms []*p4.FieldMatch, priority int32, strict bool) *Error {
	rs := e.Ranges[:0] // a probe reuses its range checks (installed entries never share a probe's)
	if e.slot != 0 {
		rs = e.slabOf().rangeChecks(e, t.nRanges)
	}
	*e = Entry{Table: t, Priority: priority, slot: e.slot, Ranges: rs}
	if t.NeedsPriority {
		if priority <= 0 {
			return errf(codes.InvalidArgument, "table %q has ternary/range/optional fields: priority must be > 0, got %d", t.Name, priority)
		}
	} else if priority != 0 {
		return errf(codes.InvalidArgument, "table %q has no ternary/range/optional field: priority must be 0, got %d", t.Name, priority)
	}
	e.newKey(t.KeyLen)
	if 2*t.KeyLen <= len(e.kbuf) {
		e.Mask = e.kbuf[t.KeyLen : 2*t.KeyLen : 2*t.KeyLen] // until put replaces it with the tuple's
	} else {
		e.Mask = make([]byte, t.KeyLen)
	}
	var seen uint64
	var seenMap map[uint32]bool
	if len(t.Fields) > 64 {
		seenMap = map[uint32]bool{}
	}
	for _, m := range ms {
		i, ok := t.fieldByID[m.FieldId]
		if !ok {
			return errf(codes.InvalidArgument, "table %q has no match field id %d", t.Name, m.FieldId)
		}
		if seenMap != nil {
			if seenMap[m.FieldId] {
				return errf(codes.InvalidArgument, "table %q: match field id %d given twice", t.Name, m.FieldId)
			}
			seenMap[m.FieldId] = true
		} else {
			if seen&(1<<uint(i)) != 0 {
				return errf(codes.InvalidArgument, "table %q: match field id %d given twice", t.Name, m.FieldId)
			}
			seen |= 1 << uint(i)
		}
		f := &t.Fields[i]
		k := e.Key[f.Offset : f.Offset+f.Width]
		mk := e.Mask[f.Offset : f.Offset+f.Width]
		what := desc{"table", t.Name, "field", f.Name, ""}
		switch f.Kind {
		case MatchExact:
			x := m.GetExact()
			if x == nil {
				return errf(codes.InvalidArgument, "%s: exact field needs an exact match", what)
			}
			if err := putBits(k, x.Value, f.Bitwidth, strict, what); err != nil {
				return err
			}
			fillOnes(mk, f.Bitwidth, f.Bitwidth)
		case MatchLPM:
			x := m.GetLpm()
			if x == nil {
				return errf(codes.InvalidArgument, "%s: lpm field needs an lpm match", what)
			}
			if x.PrefixLen <= 0 || int(x.PrefixLen) > f.Bitwidth {
				return errf(codes.InvalidArgument, "%s: prefix length %d out of 1..%d (omit the field for a don't-care)", what, x.PrefixLen, f.Bitwidth)
			}
			if err := putBits(k, x.Value, f.Bitwidth, strict, what); err != nil {
				return err
			}
			fillOnes(mk, f.Bitwidth, int(x.PrefixLen))
			for j := range k {
				if k[j]&^mk[j] != 0 {
					return errf(codes.InvalidArgument, "%s: value %x has bits set beyond prefix length %d", what, x.Value, x.PrefixLen)
				}
			}
			if i == t.LPMField {
				e.rank = x.PrefixLen
			}
		case MatchTernary:
			x := m.GetTernary()
			if x == nil {
				return errf(codes.InvalidArgument, "%s: ternary field needs a ternary match", what)
			}
			if err := putBits(k, x.Value, f.Bitwidth, strict, what.with("value")); err != nil {
				return err
			}
			if err := putBits(mk, x.Mask, f.Bitwidth, strict, what.with("mask")); err != nil {
				return err
			}
			if isZero(mk) {
				return errf(codes.InvalidArgument, "%s: mask is zero (omit the field for a don't-care)", what)
			}
			for j := range k {
				if k[j]&^mk[j] != 0 {
					return errf(codes.InvalidArgument, "%s: value %x has bits outside mask %x", what, x.Value, x.Mask)
				}
			}
		case MatchRange:
			x := m.GetRange()
			if x == nil {
				return errf(codes.InvalidArgument, "%s: range field needs a range match", what)
			}
			lo := e.rangeBytes(2 * f.Width)
			lo, hi := lo[:f.Width:f.Width], lo[f.Width:]
			if err := putBits(lo, x.Low, f.Bitwidth, strict, what.with("low")); err != nil {
				return err
			}
			if err := putBits(hi, x.High, f.Bitwidth, strict, what.with("high")); err != nil {
				return err
			}
			c := compareBE(lo, hi)
			if c > 0 {
				return errf(codes.InvalidArgument, "%s: low %x > high %x", what, x.Low, x.High)
			}
			full := make([]byte, f.Width)
			fillOnes(full, f.Bitwidth, f.Bitwidth)
			if isZero(lo) && compareBE(hi, full) == 0 {
				return errf(codes.InvalidArgument, "%s: range covers every value (omit the field for a don't-care)", what)
			}
			if c == 0 {
				copy(k, lo) // a single value: matched through the mask, no range check
				fillOnes(mk, f.Bitwidth, f.Bitwidth)
			} else {
				e.Ranges = append(e.Ranges, RangeCheck{Off: f.Offset, Width: f.Width, Low: lo, High: hi})
			}
		case MatchOptional:
			x := m.GetOptional()
			if x == nil {
				return errf(codes.InvalidArgument, "%s: optional field needs an optional match", what)
			}
			if err := putBits(k, x.Value, f.Bitwidth, strict, what); err != nil {
				return err
			}
			fillOnes(mk, f.Bitwidth, f.Bitwidth)
		}
	}
	for i := range t.Fields {
		f := &t.Fields[i]
		if f.Kind != MatchExact {
			continue
		}
		present := false
		if seenMap != nil {
			present = seenMap[f.ID]
		} else {
			present = seen&(1<<uint(i)) != 0
		}
		if !present {
			return errf(codes.InvalidArgument, "table %q: exact field %q is missing", t.Name, f.Name)
		}
	}
	if t.NeedsPriority {
		e.rank = priority
	}
	if len(e.Ranges) == 0 {
		e.Ranges = nil // lookups test Ranges == nil
	}
	return nil
}

// encodeMatch rebuilds the canonical FieldMatch list of an entry (read-write symmetry).
func encodeMatch(e *Entry) []*p4.FieldMatch {
	t := e.Table
	out := make([]*p4.FieldMatch, 0, len(t.Fields))
	for i := range t.Fields {
		f := &t.Fields[i]
		k := e.Key[f.Offset : f.Offset+f.Width]
		mk := e.Mask[f.Offset : f.Offset+f.Width]
		switch f.Kind {
		case MatchExact:
			out = append(out, &p4.FieldMatch{FieldId: f.ID, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: canonicalCopy(k)}}})
		case MatchLPM:
			if isZero(mk) {
				continue
			}
			out = append(out, &p4.FieldMatch{FieldId: f.ID, FieldMatchType: &p4.FieldMatch_Lpm{Lpm: &p4.FieldMatch_LPM{Value: canonicalCopy(k), PrefixLen: int32(prefixLen(mk, f.Bitwidth))}}})
		case MatchTernary:
			if isZero(mk) {
				continue
			}
			out = append(out, &p4.FieldMatch{FieldId: f.ID, FieldMatchType: &p4.FieldMatch_Ternary_{Ternary: &p4.FieldMatch_Ternary{Value: canonicalCopy(k), Mask: canonicalCopy(mk)}}})
		case MatchOptional:
			if isZero(mk) {
				continue
			}
			out = append(out, &p4.FieldMatch{FieldId: f.ID, FieldMatchType: &p4.FieldMatch_Optional_{Optional: &p4.FieldMatch_Optional{Value: canonicalCopy(k)}}})
		case MatchRange:
			var r *RangeCheck
			for j := range e.Ranges {
				if e.Ranges[j].Off == f.Offset {
					r = &e.Ranges[j]
				}
			}
			switch {
			case r != nil:
				out = append(out, &p4.FieldMatch{FieldId: f.ID, FieldMatchType: &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: canonicalCopy(r.Low), High: canonicalCopy(r.High)}}})
			case !isZero(mk):
				v := canonicalCopy(k)
				out = append(out, &p4.FieldMatch{FieldId: f.ID, FieldMatchType: &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: v, High: append([]byte(nil), v...)}}})
			}
		}
	}
	return out
}

// encodeAction renders an action with canonical parameter values.
func encodeAction(a *Action) *p4.Action {
	out := &p4.Action{ActionId: a.ID}
	if a.Info == nil {
		return out
	}
	out.Params = make([]*p4.Action_Param, len(a.Info.Params))
	for i := range a.Info.Params {
		p := &a.Info.Params[i]
		out.Params[i] = &p4.Action_Param{ParamId: p.ID, Value: canonicalCopy(a.Params[p.Offset : p.Offset+p.Width])}
	}
	return out
}

// decodeWatch validates a watch port (PNA PortId_t, 32 bits).
func decodeWatch(port []byte, deprecated int32, isBytes bool, strict bool, where desc) (uint32, WatchKind, *Error) {
	if isBytes && len(port) > 0 {
		var b [4]byte
		if err := putBits(b[:], port, 32, strict, where.with("watch_port")); err != nil {
			return 0, 0, errf(codes.InvalidArgument, "%s", err.Msg)
		}
		return U32(b[:]), WatchPortBytes, nil
	}
	if deprecated != 0 {
		return uint32(deprecated), WatchDeprecated, nil
	}
	return 0, WatchNone, nil
}

// U32 decodes 4 big-endian bytes.
func U32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func encodeWatchGroup(m *GroupMember, out *p4.ActionProfileGroup_Member) {
	switch m.Watch {
	case WatchPortBytes:
		var b [4]byte
		PutU64(b[:], uint64(m.WatchPort))
		out.WatchKind = &p4.ActionProfileGroup_Member_WatchPort{WatchPort: canonicalCopy(b[:])}
	case WatchDeprecated:
		out.WatchKind = &p4.ActionProfileGroup_Member_Watch{Watch: int32(m.WatchPort)}
	}
}

func encodeWatchAction(m *GroupMember, out *p4.ActionProfileAction) {
	switch m.Watch {
	case WatchPortBytes:
		var b [4]byte
		PutU64(b[:], uint64(m.WatchPort))
		out.WatchKind = &p4.ActionProfileAction_WatchPort{WatchPort: canonicalCopy(b[:])}
	case WatchDeprecated:
		out.WatchKind = &p4.ActionProfileAction_Watch{Watch: int32(m.WatchPort)}
	}
}
