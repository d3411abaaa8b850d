package tables

// Member is an action profile member.
type Member struct {
	ID        uint32
	Action    Action
	groupRefs int32 // groups containing it
	entryRefs int32 // table entries pointing at it
	gen       uint64
}

// GroupMember is a member of a group (or an action of a one-shot set) with its weight and watch port.
type GroupMember struct {
	ID        uint32 // member id (0 inside a one-shot set)
	Weight    int32
	WatchPort uint32
	Watch     WatchKind
}

// WatchKind says whether and how a watch port was given (kept for read-write symmetry).
type WatchKind uint8

// Watch kinds.
const (
	WatchNone       WatchKind = iota
	WatchPortBytes            // watch_port (bytes)
	WatchDeprecated           // watch (int32, deprecated)
)

// Group is an action selector group.
type Group struct {
	ID        uint32
	MaxSize   int32
	Members   []GroupMember
	cum       []uint32 // cumulative weights
	size      int64    // size as counted by the selector's size semantics
	entryRefs int32
	gen       uint64
}

// OneShot is a one-shot action set of a table entry (an anonymous group of anonymous members).
type OneShot struct {
	Actions []Action
	Members []GroupMember // Weight/Watch per action, same order
	cum     []uint32
	size    int64
}

func cumulative(ms []GroupMember) []uint32 {
	cum := make([]uint32, len(ms))
	var t uint32
	for i, m := range ms {
		t += uint32(m.Weight)
		cum[i] = t
	}
	return cum
}

// pick chooses an index in ms by hash, weighted, skipping members whose watch port is down.
// It returns -1 if no member is live.
func pick(ms []GroupMember, cum []uint32, hash uint32, down map[uint32]bool) int {
	if len(ms) == 0 {
		return -1
	}
	if len(down) == 0 {
		t := hash % cum[len(cum)-1]
		lo, hi := 0, len(cum)-1
		for lo < hi {
			mid := (lo + hi) / 2
			if cum[mid] > t {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo
	}
	var live uint32
	for _, m := range ms {
		if m.Watch == WatchNone || !down[m.WatchPort] {
			live += uint32(m.Weight)
		}
	}
	if live == 0 {
		return -1
	}
	t := hash % live
	for i, m := range ms {
		if m.Watch != WatchNone && down[m.WatchPort] {
			continue
		}
		if t < uint32(m.Weight) {
			return i
		}
		t -= uint32(m.Weight)
	}
	return -1
}

// Profile is the state of one action profile or selector in a snapshot.
type Profile struct {
	Info     *ProfileInfo
	gen      uint64
	seed     uint64
	members  hamt[*Member]
	groups   hamt[*Group]
	nGroups  int
	used     int64 // selector capacity used by groups and one-shot sets
	oneShots int   // entries programmed with one-shot action sets
}

// Member returns the member with the given id, or nil.
func (p *Profile) Member(id uint32) *Member {
	for _, m := range p.members.get(hashU32(p.seed, id)) {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// Group returns the group with the given id, or nil.
func (p *Profile) Group(id uint32) *Group {
	for _, g := range p.groups.get(hashU32(p.seed, id)) {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// NumMembers returns the number of members.
func (p *Profile) NumMembers() int { return p.members.n }

// NumGroups returns the number of groups.
func (p *Profile) NumGroups() int { return p.nGroups }

func (p *Profile) clone(gen uint64) *Profile {
	c := *p
	c.gen = gen
	return &c
}

func (p *Profile) putMember(gen uint64, m *Member, isNew bool) {
	m.gen = gen
	delta := 0
	if isNew {
		delta = 1
	}
	p.members.update(gen, hashU32(p.seed, m.ID), delta, func(old []*Member, _ bool) []*Member {
		out := make([]*Member, 0, len(old)+1)
		for _, o := range old {
			if o.ID != m.ID {
				out = append(out, o)
			}
		}
		return append(out, m)
	})
}

func (p *Profile) delMember(gen uint64, id uint32) {
	p.members.update(gen, hashU32(p.seed, id), -1, func(old []*Member, _ bool) []*Member {
		out := make([]*Member, 0, len(old))
		for _, o := range old {
			if o.ID != id {
				out = append(out, o)
			}
		}
		return out
	})
}

// ownMember returns a copy of member id owned by gen (for refcount changes), stored in the profile.
func (p *Profile) ownMember(gen uint64, id uint32) *Member {
	m := p.Member(id)
	if m == nil || m.gen == gen {
		return m
	}
	c := *m
	p.putMember(gen, &c, false)
	return &c
}

func (p *Profile) putGroup(gen uint64, g *Group, isNew bool) {
	g.gen = gen
	if isNew {
		p.nGroups++
	}
	p.groups.update(gen, hashU32(p.seed, g.ID), 0, func(old []*Group, _ bool) []*Group {
		out := make([]*Group, 0, len(old)+1)
		for _, o := range old {
			if o.ID != g.ID {
				out = append(out, o)
			}
		}
		return append(out, g)
	})
}

func (p *Profile) delGroup(gen uint64, id uint32) {
	p.nGroups--
	p.groups.update(gen, hashU32(p.seed, id), 0, func(old []*Group, _ bool) []*Group {
		out := make([]*Group, 0, len(old))
		for _, o := range old {
			if o.ID != id {
				out = append(out, o)
			}
		}
		return out
	})
}

func (p *Profile) ownGroup(gen uint64, id uint32) *Group {
	g := p.Group(id)
	if g == nil || g.gen == gen {
		return g
	}
	c := *g
	p.putGroup(gen, &c, false)
	return &c
}

// EachMember calls f for every member until f returns false.
func (p *Profile) EachMember(f func(*Member) bool) { p.members.each(f) }

// EachGroup calls f for every group until f returns false.
func (p *Profile) EachGroup(f func(*Group) bool) { p.groups.each(f) }
