package softswitch

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

// Learn is tables.Store.Learn with failures counted in calico_p4_softswitch_learn_failures_total.
func (s *Server) Learn(t *tables.Table, key []byte, actionID uint32, params []byte, profile uint8) (*tables.Entry, error) {
	e, err := s.store.Learn(t, key, actionID, params, profile)
	if err != nil {
		s.metrics.learnFailures.WithLabelValues(tables.CodeOf(err).String()).Inc()
	}
	return e, err
}

// DumpEntry is one entry of the debug dump.
type DumpEntry struct {
	Match    []string `json:"match,omitempty"`
	Priority int32    `json:"priority,omitempty"`
	Action   string   `json:"action"`
	Packets  *uint64  `json:"packets,omitempty"`
	Bytes    *uint64  `json:"bytes,omitempty"`
	Learned  bool     `json:"learned,omitempty"`
	Const    bool     `json:"const,omitempty"`
	Metadata string   `json:"metadata,omitempty"`
	IdleNs   int64    `json:"idle_timeout_ns,omitempty"`
}

// DumpTable is one table of the debug dump.
type DumpTable struct {
	Name    string      `json:"name"`
	ID      uint32      `json:"id"`
	Size    int64       `json:"size"`
	Default DumpEntry   `json:"default"`
	Entries []DumpEntry `json:"entries"`
}

// DumpProfile is an action profile of the debug dump.
type DumpProfile struct {
	Name    string            `json:"name"`
	ID      uint32            `json:"id"`
	Members map[uint32]string `json:"members"`
	Groups  map[uint32]string `json:"groups,omitempty"`
}

// Dump is the whole debug dump.
type Dump struct {
	Program   string            `json:"program"`
	Cookie    *uint64           `json:"cookie,omitempty"`
	Tables    []DumpTable       `json:"tables"`
	Profiles  []DumpProfile     `json:"action_profiles,omitempty"`
	Counters  map[string]string `json:"counters,omitempty"`
	Registers map[string]string `json:"registers,omitempty"`
	Digests   []string          `json:"digests_enabled,omitempty"`
}

// Dump renders the running forwarding state with names (the /debug endpoint's content).
func (s *Server) Dump() *Dump {
	st := s.store.Load()
	d := &Dump{}
	if st.Schema == nil {
		return d
	}
	d.Program = st.Schema.P4Info.GetPkgInfo().GetName()
	if c := st.Cookie(); c != nil {
		v := c.Cookie
		d.Cookie = &v
	}
	for _, ti := range st.Schema.Tables {
		t := st.Table(ti.Index)
		dt := DumpTable{Name: ti.Name, ID: ti.ID, Size: ti.Size, Default: s.dumpEntry(st, t, t.Default())}
		st.Each(t, func(e *tables.Entry) bool {
			dt.Entries = append(dt.Entries, s.dumpEntry(st, t, e))
			return true
		})
		sort.Slice(dt.Entries, func(i, j int) bool {
			a, b := dt.Entries[i], dt.Entries[j]
			if a.Priority != b.Priority {
				return a.Priority > b.Priority
			}
			return strings.Join(a.Match, " ") < strings.Join(b.Match, " ")
		})
		d.Tables = append(d.Tables, dt)
	}
	for _, pi := range st.Schema.Profiles {
		p := st.Profile(pi.Index)
		dp := DumpProfile{Name: pi.Name, ID: pi.ID, Members: map[uint32]string{}}
		p.EachMember(func(m *tables.Member) bool {
			dp.Members[m.ID] = actionString(&m.Action)
			return true
		})
		if pi.WithSelector {
			dp.Groups = map[uint32]string{}
			p.EachGroup(func(g *tables.Group) bool {
				var parts []string
				for _, gm := range g.Members {
					x := fmt.Sprintf("%d×%d", gm.ID, gm.Weight)
					if gm.Watch != tables.WatchNone {
						x += fmt.Sprintf("(watch %d)", gm.WatchPort)
					}
					parts = append(parts, x)
				}
				dp.Groups[g.ID] = fmt.Sprintf("max_size=%d members=[%s]", g.MaxSize, strings.Join(parts, " "))
				return true
			})
		}
		d.Profiles = append(d.Profiles, dp)
	}
	for _, ci := range st.Schema.Counters {
		for i := 0; i < int(ci.Size); i++ {
			if v := st.Counter(ci.Index, i); v.Packets != 0 || v.Bytes != 0 {
				if d.Counters == nil {
					d.Counters = map[string]string{}
				}
				d.Counters[fmt.Sprintf("%s[%d]", ci.Name, i)] = fmt.Sprintf("%d packets %d bytes", v.Packets, v.Bytes)
			}
		}
	}
	for _, ri := range st.Schema.Registers {
		if ri.Bitwidth == 0 || ri.Bitwidth > 64 {
			continue
		}
		for i := 0; i < int(ri.Size); i++ {
			if v := st.RegisterRead(ri.Index, i); v != 0 {
				if d.Registers == nil {
					d.Registers = map[string]string{}
				}
				d.Registers[fmt.Sprintf("%s[%d]", ri.Name, i)] = fmt.Sprintf("%#x", v)
			}
		}
	}
	for _, di := range st.Schema.Digests {
		if c := st.DigestConfig(di.ID); c != nil {
			d.Digests = append(d.Digests, fmt.Sprintf("%s max_timeout_ns=%d max_list_size=%d ack_timeout_ns=%d", di.Name, c.MaxTimeoutNs, c.MaxListSize, c.AckTimeoutNs))
		}
	}
	return d
}

func (s *Server) dumpEntry(st *tables.State, t *tables.Table, e *tables.Entry) DumpEntry {
	de := DumpEntry{Priority: e.Priority, Learned: e.Learned, Const: e.IsConst, IdleNs: e.IdleTimeoutNs}
	if len(e.Metadata) > 0 {
		de.Metadata = hex.EncodeToString(e.Metadata)
	}
	if !e.IsDefault {
		te := st.EncodeEntry(t, e)
		for _, m := range te.Match {
			var name string
			for _, f := range t.Info.Fields {
				if f.ID == m.FieldId {
					name = f.Name
				}
			}
			switch {
			case m.GetExact() != nil:
				de.Match = append(de.Match, fmt.Sprintf("%s=%s", name, hexVal(m.GetExact().Value)))
			case m.GetLpm() != nil:
				de.Match = append(de.Match, fmt.Sprintf("%s=%s/%d", name, hexVal(m.GetLpm().Value), m.GetLpm().PrefixLen))
			case m.GetTernary() != nil:
				de.Match = append(de.Match, fmt.Sprintf("%s=%s&&&%s", name, hexVal(m.GetTernary().Value), hexVal(m.GetTernary().Mask)))
			case m.GetRange() != nil:
				de.Match = append(de.Match, fmt.Sprintf("%s=%s..%s", name, hexVal(m.GetRange().Low), hexVal(m.GetRange().High)))
			case m.GetOptional() != nil:
				de.Match = append(de.Match, fmt.Sprintf("%s=%s?", name, hexVal(m.GetOptional().Value)))
			}
		}
	}
	switch e.Kind {
	case tables.ActDirect:
		de.Action = actionString(&e.Action)
	case tables.ActMember:
		de.Action = fmt.Sprintf("member %d", e.MemberID)
	case tables.ActGroup:
		de.Action = fmt.Sprintf("group %d", e.GroupID)
	case tables.ActOneShot:
		var parts []string
		for i := range e.OneShot.Actions {
			parts = append(parts, fmt.Sprintf("%s×%d", actionString(&e.OneShot.Actions[i]), e.OneShot.Members[i].Weight))
		}
		de.Action = "one-shot [" + strings.Join(parts, ", ") + "]"
	}
	if t.Info.DirectCounter != nil {
		v := st.DirectCounter(t, e.Handle)
		de.Packets, de.Bytes = &v.Packets, &v.Bytes
	}
	return de
}

func actionString(a *tables.Action) string {
	if a.Info == nil {
		return "NoAction"
	}
	var ps []string
	for i, p := range a.Info.Params {
		ps = append(ps, fmt.Sprintf("%s=%s", p.Name, hexVal(a.Param(i))))
	}
	return a.Info.Name + "(" + strings.Join(ps, ", ") + ")"
}

// WriteText writes the dump as text.
func (d *Dump) WriteText(w io.Writer) {
	fmt.Fprintf(w, "program %q", d.Program)
	if d.Cookie != nil {
		fmt.Fprintf(w, " cookie %d", *d.Cookie)
	}
	fmt.Fprintln(w)
	ctr := func(e DumpEntry) string {
		if e.Packets == nil {
			return ""
		}
		return fmt.Sprintf("  [%d pkts %d bytes]", *e.Packets, *e.Bytes)
	}
	for _, t := range d.Tables {
		fmt.Fprintf(w, "\ntable %s (%#x) %d/%d entries\n", t.Name, t.ID, len(t.Entries), t.Size)
		fmt.Fprintf(w, "  default: %s%s\n", t.Default.Action, ctr(t.Default))
		for _, e := range t.Entries {
			var flags []string
			if e.Priority != 0 {
				flags = append(flags, fmt.Sprintf("prio=%d", e.Priority))
			}
			if e.Learned {
				flags = append(flags, "learned")
			}
			if e.Const {
				flags = append(flags, "const")
			}
			if e.IdleNs != 0 {
				flags = append(flags, fmt.Sprintf("idle_timeout=%dns", e.IdleNs))
			}
			fmt.Fprintf(w, "  %s %s -> %s%s\n", strings.Join(e.Match, " "), strings.Join(flags, " "), e.Action, ctr(e))
		}
	}
	for _, p := range d.Profiles {
		fmt.Fprintf(w, "\naction profile %s (%#x)\n", p.Name, p.ID)
		for _, id := range sortedKeys(p.Members) {
			fmt.Fprintf(w, "  member %d: %s\n", id, p.Members[id])
		}
		for _, id := range sortedKeys(p.Groups) {
			fmt.Fprintf(w, "  group %d: %s\n", id, p.Groups[id])
		}
	}
	for _, title := range []string{"counters", "registers"} {
		m := d.Counters
		if title == "registers" {
			m = d.Registers
		}
		if len(m) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", title)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s = %s\n", k, m[k])
		}
	}
	for _, dg := range d.Digests {
		fmt.Fprintf(w, "\ndigest %s\n", dg)
	}
}

func sortedKeys(m map[uint32]string) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// DebugHandler serves the dump at /debug (text; ?format=json for JSON).
func (s *Server) DebugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := s.Dump()
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(d)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		d.WriteText(w)
	})
}

// hexVal renders a big-endian value as 0x… without leading zeros.
func hexVal(b []byte) string {
	h := strings.TrimLeft(hex.EncodeToString(b), "0")
	if h == "" {
		h = "0"
	}
	return "0x" + h
}
