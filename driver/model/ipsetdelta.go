package model

import (
	"iter"
	"net/netip"
)

// IPSetMember is one member of an IP set: Net for a NET set, AddrPort.Addr for an IP set, AddrPort for an
// IP_AND_PORT set (the other fields are zero). It is comparable: use it as a map key.
type IPSetMember struct {
	Net      netip.Prefix
	AddrPort AddrPort
}

func (m member) public() IPSetMember { return IPSetMember{Net: m.prefix, AddrPort: m.ap} }

// Members iterates over the members in no particular order (Nets, Addrs and AddrPorts sort).
func (s *IPSet) Members() iter.Seq[IPSetMember] {
	return func(yield func(IPSetMember) bool) {
		for m := range s.members {
			if !yield(m.public()) {
				return
			}
		}
	}
}

// IPSetDelta is the member-level change of one IP set between two TakeChanges (Changes.IPSetDelta).
type IPSetDelta struct {
	Added, Removed []IPSetMember
}

// IPSetDelta returns how the members of IP set id changed, when the set existed at the previous
// TakeChanges and was changed only by IPSetDeltaUpdates since: a consumer that translated the set as it was
// then can apply the delta instead of comparing every member. ok is false otherwise (the set was added,
// replaced by an IPSetUpdate, removed, restored after a failed apply, or replaced by a new snapshot):
// compare the members then.
func (c Changes) IPSetDelta(id string) (d IPSetDelta, ok bool) {
	d, ok = c.ipsetDeltas[id]
	return d, ok
}

// setDelta accumulates the member changes of one set since the last TakeChanges.
type setDelta struct {
	added, removed map[member]struct{}
	full           bool // changed by something other than deltas: no usable delta
}

func (s *State) setDeltaOf(id string) *setDelta {
	if s.setDeltas == nil {
		s.setDeltas = map[string]*setDelta{}
	}
	d := s.setDeltas[id]
	if d == nil {
		d = &setDelta{}
		s.setDeltas[id] = d
	}
	return d
}

// noteSetFull records that set id changed other than by a delta.
func (s *State) noteSetFull(id string) {
	d := s.setDeltaOf(id)
	d.full, d.added, d.removed = true, nil, nil
}

// noteMember records that m was added to (add) or removed from set id.
func (s *State) noteMember(id string, m member, add bool) {
	d := s.setDeltaOf(id)
	if d.full {
		return
	}
	from, to := &d.removed, &d.added
	if !add {
		from, to = &d.added, &d.removed
	}
	if _, ok := (*from)[m]; ok {
		delete(*from, m)
		return
	}
	if *to == nil {
		*to = map[member]struct{}{}
	}
	(*to)[m] = struct{}{}
}

// takeSetDeltas returns the usable deltas of the sets changed Updated, and starts afresh.
func (s *State) takeSetDeltas(c KeyChanges[string]) map[string]IPSetDelta {
	defer func() { s.setDeltas, s.setDeltasInvalid = nil, false }()
	if s.setDeltasInvalid {
		return nil
	}
	var out map[string]IPSetDelta
	for id, d := range s.setDeltas {
		if d.full || c.Get(id) != Updated {
			continue
		}
		var pd IPSetDelta
		for m := range d.added {
			pd.Added = append(pd.Added, m.public())
		}
		for m := range d.removed {
			pd.Removed = append(pd.Removed, m.public())
		}
		if out == nil {
			out = map[string]IPSetDelta{}
		}
		out[id] = pd
	}
	return out
}
