package translator

import (
	"slices"
	"strconv"
)

// idSpace gives the names of one kind of identifier (endpoints, lists, steps, IP sets, rules, next hops)
// 32-bit values that are a function of the current set of names only, never of the order in which they
// appeared: the assignment is the one obtained by taking the names in sorted order and giving each the
// first value of its probe sequence (FNV-1a of the space, the name and the probe number; 0 is reserved)
// that no earlier name took. A fresh translation of the same model therefore yields the same values, which
// the programmer's read-back reconcile after a restart relies on.
//
// Most names sit at their first probe. Acquire and Release are O(1) then; a name whose first probe is
// taken, or the release of a value some displaced name probed past, recomputes the assignment (O(n log n))
// and reports the names whose value changed so the caller can re-translate what uses them.
type idSpace struct {
	space  string
	byName map[string]*idName
	byID   map[uint32]*idName
	// displaced are the names not at their first probe (rare).
	displaced map[string]*idName
	// plan, while set, gives new names the value a previous translation of the same model settled on
	// (see Translator.full).
	plan map[string]uint32
}

type idName struct {
	name  string
	id    uint32
	probe int
	refs  int
}

func newIDSpace(space string) *idSpace {
	return &idSpace{space: space, byName: map[string]*idName{}, byID: map[uint32]*idName{},
		displaced: map[string]*idName{}}
}

// grow presizes an empty space for n names.
func (s *idSpace) grow(n int) {
	if len(s.byName) == 0 && n > 0 {
		s.byName = make(map[string]*idName, n)
		s.byID = make(map[uint32]*idName, n)
	}
}

// probeID is the probe-th candidate value of name: FNV-1a (32 bits) of the space, a zero byte, the name
// and, for probes after the first, a zero byte and the probe number in decimal; never 0.
func (s *idSpace) probeID(name string, probe int) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	add := func(str string) {
		for i := 0; i < len(str); i++ {
			h ^= uint32(str[i])
			h *= prime
		}
	}
	add(s.space)
	h *= prime // a zero byte
	add(name)
	if probe > 0 {
		h *= prime // a zero byte
		add(strconv.Itoa(probe))
	}
	if h == 0 {
		h = 1 // 0 means "none" everywhere in k8s.p4; 1 stays a valid first probe of other names.
	}
	return h
}

// Get returns the value of a name that is held.
func (s *idSpace) Get(name string) (uint32, bool) {
	n, ok := s.byName[name]
	if !ok {
		return 0, false
	}
	return n.id, true
}

// Name returns the name holding a value (for tests and debugging).
func (s *idSpace) Name(id uint32) (string, bool) {
	n, ok := s.byID[id]
	if !ok {
		return "", false
	}
	return n.name, true
}

// Len is the number of names held.
func (s *idSpace) Len() int { return len(s.byName) }

// Acquire takes a reference on name and returns its value; moved lists the other names whose value
// changed (only when the name is new and its first probe was taken).
func (s *idSpace) Acquire(name string) (id uint32, moved []string) {
	if n, ok := s.byName[name]; ok {
		n.refs++
		return n.id, nil
	}
	if v, ok := s.plan[name]; ok {
		if _, taken := s.byID[v]; !taken {
			n := &idName{name: name, id: v, refs: 1}
			for s.probeID(name, n.probe) != v {
				n.probe++
			}
			s.byName[name] = n
			s.byID[v] = n
			if n.probe > 0 {
				s.displaced[name] = n
			}
			return v, nil
		}
	}
	v := s.probeID(name, 0)
	if _, taken := s.byID[v]; !taken {
		n := &idName{name: name, id: v, refs: 1}
		s.byName[name] = n
		s.byID[v] = n
		return v, nil
	}
	n := &idName{name: name, refs: 1}
	s.byName[name] = n
	moved = s.reassign(name)
	return n.id, moved
}

// Release drops a reference on name; at zero the name is forgotten. moved lists the names whose value
// changed as a result.
func (s *idSpace) Release(name string) (moved []string) {
	n, ok := s.byName[name]
	if !ok {
		return nil
	}
	n.refs--
	if n.refs > 0 {
		return nil
	}
	delete(s.byName, name)
	delete(s.byID, n.id)
	delete(s.displaced, name)
	// Did a displaced name probe past this value? Then the assignment changes.
	for _, d := range s.displaced {
		for p := 0; p < d.probe; p++ {
			if s.probeID(d.name, p) == n.id {
				return s.reassign("")
			}
		}
	}
	return nil
}

// reassign recomputes the canonical assignment and returns the names (other than except) whose value
// changed.
func (s *idSpace) reassign(except string) (moved []string) {
	names := make([]string, 0, len(s.byName))
	for name := range s.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	old := make(map[string]uint32, len(names))
	for _, name := range names {
		old[name] = s.byName[name].id
	}
	clear(s.byID)
	clear(s.displaced)
	for _, name := range names {
		n := s.byName[name]
		for p := 0; ; p++ {
			v := s.probeID(name, p)
			if _, taken := s.byID[v]; taken {
				continue
			}
			n.id, n.probe = v, p
			s.byID[v] = n
			if p > 0 {
				s.displaced[name] = n
			}
			break
		}
		if name != except && old[name] != n.id {
			moved = append(moved, name)
		}
	}
	return moved
}

// canonicalPlan returns the canonical assignment of the names held now.
func (s *idSpace) canonicalPlan() map[string]uint32 {
	s.reassign("")
	out := make(map[string]uint32, len(s.byName))
	for name, n := range s.byName {
		out[name] = n.id
	}
	return out
}
