package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sort"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	gproto "google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/p4src"
)

// Snapshot is what a P4Runtime target holds for the control plane: every table entry that is not a
// default action and not in a learner table, every action-profile member and group.
type Snapshot struct {
	Entities []*p4v1.Entity
	tables   map[uint32]string
}

// ReadTarget reads a snapshot from the P4Runtime server at addr (as a backup controller: reading never
// disturbs the primary).
func ReadTarget(ctx context.Context, addr string) (*Snapshot, error) {
	info, err := p4src.P4Info()
	if err != nil {
		return nil, err
	}
	c, err := p4rt.Dial(ctx, p4rt.Config{Address: addr, DeviceID: 1})
	if err != nil {
		return nil, fmt.Errorf("read target %s: %w", addr, err)
	}
	defer c.Close()
	s := &Snapshot{tables: map[uint32]string{}}
	for _, t := range info.Tables {
		s.tables[t.Preamble.Id] = t.Preamble.Name
	}
	learner := map[string]bool{}
	for _, l := range p4src.LearnerTables {
		learner[string(l)] = true
	}
	all := []*p4v1.Entity{
		{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}},
		{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{}}},
		{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: &p4v1.ActionProfileGroup{}}},
	}
	err = c.Read(ctx, all, func(e *p4v1.Entity) error {
		if te := e.GetTableEntry(); te != nil {
			if te.IsDefaultAction || learner[s.tables[te.TableId]] {
				return nil
			}
			// Counter data changes with traffic; it is not programmed state.
			te = gproto.Clone(te).(*p4v1.TableEntry)
			te.CounterData, te.MeterCounterData = nil, nil
			e = &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}
		}
		s.Entities = append(s.Entities, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read target %s: %w", addr, err)
	}
	return s, nil
}

// Counts returns the number of table entries per table name.
func (s *Snapshot) Counts() map[string]int {
	out := map[string]int{}
	for _, e := range s.Entities {
		if te := e.GetTableEntry(); te != nil {
			out[s.tables[te.TableId]]++
		}
	}
	return out
}

// Len is the number of entities.
func (s *Snapshot) Len() int { return len(s.Entities) }

func (s *Snapshot) canonical() []string {
	out := make([]string, 0, len(s.Entities))
	for _, e := range s.Entities {
		b, err := gproto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			b = []byte(e.String())
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// Diff describes how two snapshots differ ("" when they hold the same entities).
func (s *Snapshot) Diff(o *Snapshot) string {
	a, b := s.canonical(), o.canonical()
	ia, ib := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		ia[x] = true
	}
	for _, x := range b {
		ib[x] = true
	}
	var gone, added int
	for _, x := range a {
		if !ib[x] {
			gone++
		}
	}
	for _, x := range b {
		if !ia[x] {
			added++
		}
	}
	if gone == 0 && added == 0 && len(a) == len(b) {
		return ""
	}
	return fmt.Sprintf("%d entities before, %d after: %d gone, %d new", len(a), len(b), gone, added)
}

// Referencing lists the table entries (by table name and a short description) with a match field or an
// action parameter equal to one of the given canonical values.
func (s *Snapshot) Referencing(values ...[]byte) []string {
	var out []string
	hit := func(v []byte) bool {
		for _, x := range values {
			if bytes.Equal(trimZeros(v), trimZeros(x)) {
				return true
			}
		}
		return false
	}
	for _, e := range s.Entities {
		te := e.GetTableEntry()
		if te == nil {
			continue
		}
		found := false
		for _, m := range te.Match {
			switch {
			case m.GetExact() != nil:
				found = found || hit(m.GetExact().Value)
			case m.GetLpm() != nil:
				found = found || hit(m.GetLpm().Value)
			case m.GetTernary() != nil:
				found = found || hit(m.GetTernary().Value)
			case m.GetOptional() != nil:
				found = found || hit(m.GetOptional().Value)
			}
		}
		if a := te.GetAction().GetAction(); a != nil {
			for _, p := range a.Params {
				found = found || hit(p.Value)
			}
		}
		if found {
			out = append(out, s.tables[te.TableId]+" "+te.String())
		}
	}
	return out
}

// trimZeros makes a P4Runtime byte string canonical (no leading zero bytes; zero is one zero byte).
func trimZeros(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// PortValue is the P4Runtime value of an interface's port id (the embedded target's scheme).
func PortValue(iface string) []byte {
	id := ports.IDForName(iface)
	return trimZeros([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
}

// AddrValue is the P4Runtime value of an address.
func AddrValue(a netip.Addr) []byte { return trimZeros(a.AsSlice()) }
