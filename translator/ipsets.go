package translator

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// setUnit owns the member entries of one IP set (ipset_net_* for NET and IP sets, ipset_port_* for
// IP_AND_PORT sets). Members are tracked individually so that a Felix delta becomes a member-level diff.
type setUnit struct {
	owner   string
	name    string // id-space name
	id      uint32
	sid     []byte // canonical bytes of id
	typ     model.IPSetType
	members map[model.IPSetMember]entry.Key
	refs    int // derived CIDR sets: programs using it
}

func setOwner(name string) string { return "set/" + name }

// memberEntry renders one member of a set whose id is sid (canonical bytes). It builds the canonical
// entry directly: member entries are the bulk of a large translation and of every IP-set delta.
func memberEntry(sl *slab, sid []byte, typ model.IPSetType, m model.IPSetMember) (entry.Entry, bool) {
	switch typ {
	case model.IPSetTypeNet, model.IPSetTypeIP:
		p := m.Net
		if typ == model.IPSetTypeIP {
			if !m.AddrPort.Addr.IsValid() {
				return entry.Entry{}, false
			}
			p = netip.PrefixFrom(m.AddrPort.Addr, m.AddrPort.Addr.BitLen())
		}
		if !p.IsValid() {
			return entry.Entry{}, false
		}
		p = p.Masked()
		table, setKey, addrKey := p4src.TableIPSetNetV4, p4src.KeyIPSetNetV4SetID, p4src.KeyIPSetNetV4Addr
		if p.Addr().Is6() {
			table, setKey, addrKey = p4src.TableIPSetNetV6, p4src.KeyIPSetNetV6SetID, p4src.KeyIPSetNetV6Addr
		}
		ms := sl.matches(2)
		if p.Bits() > 0 {
			ms = append(ms, entry.Match{Field: string(addrKey), Kind: entry.MatchLPM, Value: sl.canonAddr(p.Addr()),
				PrefixLen: int32(p.Bits())})
		}
		ms = append(ms, entry.Match{Field: string(setKey), Kind: entry.MatchExact, Value: sid})
		return entry.Entry{Kind: entry.KindTable, Table: string(table), Match: ms, Action: hitAction}, true
	case model.IPSetTypeIPAndPort:
		ap := m.AddrPort
		if !ap.Addr.IsValid() {
			return entry.Entry{}, false
		}
		table := p4src.TableIPSetPortV4
		keys := [4]p4src.MatchFieldName{p4src.KeyIPSetPortV4Addr, p4src.KeyIPSetPortV4Port, p4src.KeyIPSetPortV4Protocol, p4src.KeyIPSetPortV4SetID}
		if ap.Addr.Is6() {
			table = p4src.TableIPSetPortV6
			keys = [4]p4src.MatchFieldName{p4src.KeyIPSetPortV6Addr, p4src.KeyIPSetPortV6Port, p4src.KeyIPSetPortV6Protocol, p4src.KeyIPSetPortV6SetID}
		}
		// Sorted by field name: addr, port, protocol, set_id.
		ms := append(sl.matches(4),
			entry.Match{Field: string(keys[0]), Kind: entry.MatchExact, Value: sl.canonAddr(ap.Addr)},
			entry.Match{Field: string(keys[1]), Kind: entry.MatchExact, Value: sl.uint(uint64(ap.Port))},
			entry.Match{Field: string(keys[2]), Kind: entry.MatchExact, Value: u(uint64(ap.Protocol))},
			entry.Match{Field: string(keys[3]), Kind: entry.MatchExact, Value: sid},
		)
		return entry.Entry{Kind: entry.KindTable, Table: string(table), Match: ms, Action: hitAction}, true
	}
	return entry.Entry{}, false
}

var hitAction = entry.Action{Name: string(p4src.ActionIPSetHit)}

// canonAddr is the canonical byte string of an address (no leading zero bytes; 0 is one zero byte).
func canonAddr(a netip.Addr) []byte { return (*slab)(nil).canonAddr(a) }

// canonAddr is the canonical byte string of an address, in the slab.
func (s *slab) canonAddr(a netip.Addr) []byte {
	var b []byte
	if a.Is4() {
		v := a.As4()
		b = v[:]
	} else {
		v := a.As16()
		b = v[:]
	}
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	return s.bytes(b[i:])
}

// uint is the canonical byte string of v (see u), in the slab.
func (s *slab) uint(v uint64) []byte {
	if v < 256 {
		return u(v)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	i := 0
	for b[i] == 0 {
		i++
	}
	return s.bytes(b[i:])
}

func (t *Translator) addMember(su *setUnit, m model.IPSetMember) {
	if _, ok := su.members[m]; ok {
		return
	}
	e, ok := memberEntry(t.bulk, su.sid, su.typ, m)
	if !ok {
		return
	}
	k := e.Key()
	su.members[m] = k
	t.st.put(su.owner, k, e)
}

// memberBatch is the size of the batches addMembers renders members in.
const memberBatch = 512

// addMembers adds the members of a set that are not in the unit yet, rendering them in batches (their keys
// cut from one string per batch).
func (t *Translator) addMembers(su *setUnit, members func(func(model.IPSetMember) bool)) {
	if t.memberEnts == nil {
		t.memberEnts = make([]entry.Entry, 0, memberBatch)
		t.memberKeys = make([]model.IPSetMember, 0, memberBatch)
	}
	ents, ms := t.memberEnts[:0], t.memberKeys[:0]
	flush := func() {
		for i, k := range t.st.keysOf(ents) {
			su.members[ms[i]] = k
			t.st.put(su.owner, k, ents[i])
		}
		clear(ents) // the scratch space must not keep entries alive
		ents, ms = ents[:0], ms[:0]
	}
	for m := range members {
		if _, ok := su.members[m]; ok {
			continue
		}
		e, ok := memberEntry(t.bulk, su.sid, su.typ, m)
		if !ok {
			continue
		}
		ents = append(ents, e)
		ms = append(ms, m)
		if len(ents) == memberBatch {
			flush()
		}
	}
	flush()
}

func (t *Translator) delMember(su *setUnit, m model.IPSetMember) {
	k, ok := su.members[m]
	if !ok {
		return
	}
	delete(su.members, m)
	t.st.del(su.owner, k)
}

func (t *Translator) clearSet(su *setUnit) {
	for _, k := range su.members {
		t.st.del(su.owner, k)
	}
	su.members = map[model.IPSetMember]entry.Key{}
}

// translateIPSet brings the unit of Felix set id in line with the model; delta, when given, is the
// member-level change since the last translation.
func (t *Translator) translateIPSet(id string, delta *model.IPSetDelta) {
	set, exists := t.state.IPSets.Get(id)
	su := t.sets[id]
	if !exists {
		if su != nil {
			t.clearSet(su)
			t.release(t.ids.set, su.name)
			delete(t.sets, id)
		}
		return
	}
	if su != nil && su.typ != set.Type {
		t.clearSet(su)
		t.release(t.ids.set, su.name)
		su = nil
	}
	if su == nil {
		name := setRef{felix: id}.idName()
		su = &setUnit{owner: setOwner(name), name: name, typ: set.Type,
			members: make(map[model.IPSetMember]entry.Key, set.Len())}
		su.id = t.acquire(t.ids.set, name)
		su.sid = u(uint64(su.id))
		t.sets[id] = su
		delta = nil
	}
	if delta != nil {
		for _, m := range delta.Removed {
			t.delMember(su, m)
		}
		for _, m := range delta.Added {
			t.addMember(su, m)
		}
		if len(su.members) == set.Len() {
			return
		}
		// The delta did not lead to the model's set (it was not relative to what we had): full diff.
	}
	if len(su.members) == 0 {
		// A new unit: nothing to remove.
		t.addMembers(su, set.Members())
		return
	}
	seen := make(map[model.IPSetMember]struct{}, set.Len())
	for m := range set.Members() {
		seen[m] = struct{}{}
		t.addMember(su, m)
	}
	if len(su.members) != len(seen) {
		for m := range su.members {
			if _, ok := seen[m]; !ok {
				t.delMember(su, m)
			}
		}
	}
}

// refCIDRSet takes a reference on the derived set of a canonical CIDR list, creating its unit.
func (t *Translator) refCIDRSet(cidrs string) {
	su := t.cidrSets[cidrs]
	if su != nil {
		su.refs++
		return
	}
	name := setRef{cidrs: cidrs}.idName()
	su = &setUnit{owner: setOwner(name), name: name, typ: model.IPSetTypeNet,
		members: map[model.IPSetMember]entry.Key{}, refs: 1}
	su.id = t.acquire(t.ids.set, name)
	su.sid = u(uint64(su.id))
	t.cidrSets[cidrs] = su
	for _, c := range strings.Split(cidrs, ",") {
		if p, err := netip.ParsePrefix(c); err == nil {
			t.addMember(su, model.IPSetMember{Net: p})
		}
	}
}

func (t *Translator) unrefCIDRSet(cidrs string) {
	su := t.cidrSets[cidrs]
	if su == nil {
		return
	}
	su.refs--
	if su.refs > 0 {
		return
	}
	t.clearSet(su)
	t.release(t.ids.set, su.name)
	delete(t.cidrSets, cidrs)
}

// setInfo tells the rule compiler whether a Felix set exists and its type.
func (t *Translator) setInfo(id string) (model.IPSetType, bool) {
	s, ok := t.state.IPSets.Get(id)
	if !ok {
		return 0, false
	}
	return s.Type, true
}

// indexSetUsers records which programs name which Felix sets.
func (t *Translator) indexSetUsers(owner string, old, cur []string) {
	for _, id := range old {
		if m := t.setUsers[id]; m != nil {
			delete(m, owner)
			if len(m) == 0 {
				delete(t.setUsers, id)
			}
		}
	}
	for _, id := range cur {
		m := t.setUsers[id]
		if m == nil {
			m = map[string]struct{}{}
			t.setUsers[id] = m
		}
		m[owner] = struct{}{}
	}
}
