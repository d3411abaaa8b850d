package programmer

import (
	"fmt"
	"strings"
)

// idSpace maps the symbolic names of one action profile's members (or
// groups) to the P4Runtime ids the programmer allocated for them.
type idSpace struct {
	byName map[string]uint32
	byID   map[uint32]string
	next   uint32
}

func newIDSpace() *idSpace {
	return &idSpace{byName: map[string]uint32{}, byID: map[uint32]string{}, next: 1}
}

// alloc returns name's id, allocating the lowest unused id at or after the
// cursor when it has none.
func (s *idSpace) alloc(name string) uint32 {
	if id, ok := s.byName[name]; ok {
		return id
	}
	for {
		id := s.next
		s.next++
		if s.next == 0 {
			s.next = 1
		}
		if _, used := s.byID[id]; !used && id != 0 {
			s.set(name, id)
			return id
		}
	}
}

func (s *idSpace) set(name string, id uint32) {
	s.byName[name] = id
	s.byID[id] = name
}

func (s *idSpace) free(name string) {
	if id, ok := s.byName[name]; ok {
		delete(s.byName, name)
		delete(s.byID, id)
	}
}

// staleName names an id found on the target that nothing desired maps to;
// the NUL byte keeps it apart from any translator name.
func staleName(id uint32) string { return fmt.Sprintf("\x00stale/%d", id) }

func isStale(name string) bool { return strings.HasPrefix(name, "\x00stale/") }

// ids implements p4rt.IDs and p4rt.Names over the programmer's id spaces.
type ids struct {
	members map[string]*idSpace // by profile
	groups  map[string]*idSpace
}

func newIDs() *ids { return &ids{members: map[string]*idSpace{}, groups: map[string]*idSpace{}} }

func space(m map[string]*idSpace, profile string) *idSpace {
	s, ok := m[profile]
	if !ok {
		s = newIDSpace()
		m[profile] = s
	}
	return s
}

func (x *ids) MemberID(profile, name string) (uint32, bool) {
	id, ok := x.members[profile].lookup(name)
	return id, ok
}

func (x *ids) GroupID(profile, name string) (uint32, bool) {
	id, ok := x.groups[profile].lookup(name)
	return id, ok
}

func (x *ids) MemberName(profile string, id uint32) (string, bool) {
	n, ok := x.members[profile].name(id)
	return n, ok
}

func (x *ids) GroupName(profile string, id uint32) (string, bool) {
	n, ok := x.groups[profile].name(id)
	return n, ok
}

func (s *idSpace) lookup(name string) (uint32, bool) {
	if s == nil {
		return 0, false
	}
	id, ok := s.byName[name]
	return id, ok
}

func (s *idSpace) name(id uint32) (string, bool) {
	if s == nil {
		return "", false
	}
	n, ok := s.byID[id]
	return n, ok
}
