package p4parse

import (
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
)

const small = `
#include <core.p4>
typedef bit<32> id_t;
const bit<8> KIND_A = 0x1;
const ExpireTimeProfileId_t P = (ExpireTimeProfileId_t) 3;
header h_t { bit<4> v; bit<4> l; id_t addr; }
struct m_t { id_t x; bit<1> flag; }
struct headers_t { h_t h; }
control Other(inout m_t m) { apply { } }
void helper(inout m_t m) { m.x = 1; }
control MainControlImpl(inout headers_t hdr, inout m_t meta, in pna_main_input_metadata_t istd) {
    @id(0x13000001) DirectCounter<bit<64>>(PNA_CounterType_t.PACKETS) dc;
    @id(0x11000001) @max_group_size(8) ActionSelector(PNA_HashAlgorithm_t.TARGET_DEFAULT, 32w64, 32w16) sel;
    bool b;
    @id(0x01000001) action a(id_t p, bit<48> mac) { meta.x = p; /* { */ }
    @id(0x01000002) action miss() { dc.count(); }
    @id(0x02000001) table t {
        key = { hdr.h.addr : lpm @name("addr"); meta.flag : optional; meta.x : selector; }
        actions = { @tableonly a; @defaultonly NoAction; }
        pna_implementation = sel;
        size = 512;
    }
    @id(0x02000002) table u {
        key = { meta.x : exact @name("x"); }
        actions = { miss; }
        const default_action = miss;
        pna_direct_counter = dc;
    }
    apply { t.apply(); u.apply(); }
}
`

func TestParserReadsDeclarationsAndWidths(t *testing.T) {
	prog, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	if len(prog.Consts) != 2 || prog.Consts[0].Value.Int64() != 1 || prog.Consts[1].Value.Int64() != 3 || prog.Consts[1].Width != 8 {
		t.Errorf("consts = %+v", prog.Consts)
	}
	tb := prog.Table("t")
	if tb == nil || len(tb.Keys) != 3 || tb.Keys[0].Width != 32 || tb.Keys[0].Name != "addr" || tb.Keys[1].Name != "meta.flag" || tb.Keys[1].Width != 1 {
		t.Fatalf("table t = %+v", tb)
	}
	if a := prog.Action("a"); a == nil || a.Params[0].Width != 32 || a.Params[1].Width != 48 {
		t.Errorf("action a = %+v", a)
	}
	if len(prog.Profiles) != 1 || prog.Profiles[0].Size != 64 || prog.Profiles[0].MaxGroupSize != 8 {
		t.Errorf("profiles = %+v", prog.Profiles)
	}
	info, err := prog.P4Info()
	if err != nil {
		t.Fatal(err)
	}
	var tInfo *p4configv1.Table
	for _, x := range info.Tables {
		if x.Preamble.Name == "MainControlImpl.t" {
			tInfo = x
		}
	}
	if tInfo == nil || len(tInfo.MatchFields) != 2 || tInfo.ImplementationId != 0x11000001 || tInfo.Size != 512 ||
		tInfo.ConstDefaultActionId != 0 || tInfo.InitialDefaultAction.GetActionId() != JenkinsID(PrefixAction, "NoAction") {
		t.Errorf("table t in P4Info = %v", tInfo)
	}
	if got := tInfo.MatchFields[1].GetMatchType(); got != p4configv1.MatchField_OPTIONAL {
		t.Errorf("meta.flag match type = %v", got)
	}
	if len(info.DirectCounters) != 1 || info.DirectCounters[0].DirectTableId != 0x02000002 {
		t.Errorf("direct counters = %v", info.DirectCounters)
	}
	if len(info.ActionProfiles) != 1 || info.ActionProfiles[0].MaxGroupSize != 8 || !info.ActionProfiles[0].WithSelector {
		t.Errorf("profiles = %v", info.ActionProfiles)
	}
}

func TestNoActionGetsTheIDP4cGivesIt(t *testing.T) {
	// 21257015 is NoAction's id in every P4Info p4c writes.
	if got := JenkinsID(PrefixAction, "NoAction"); got != 21257015 {
		t.Errorf("JenkinsID(NoAction) = %d, want 21257015", got)
	}
}

func TestAliasesAreShortestUniqueSuffixes(t *testing.T) {
	got := Aliases([]string{"C.a", "C.b", "D.b", "NoAction"})
	want := map[string]string{"C.a": "a", "C.b": "C.b", "D.b": "D.b", "NoAction": "NoAction"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("alias of %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestP4InfoRefusesUnpinnedOrMisprefixedIDs(t *testing.T) {
	for name, src := range map[string]string{
		"missing id":   strings.Replace(small, "@id(0x02000002) table u", "table u", 1),
		"wrong prefix": strings.Replace(small, "@id(0x01000001) action a", "@id(0x02000009) action a", 1),
		"unused action": strings.Replace(small, "apply { t.apply(); u.apply(); }",
			"@id(0x01000009) action spare() { }\n    apply { t.apply(); u.apply(); }", 1),
	} {
		prog, err := Parse([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := prog.P4Info(); err == nil {
			t.Errorf("%s: P4Info() accepted it", name)
		}
	}
}

func TestApplySitesAreCountedPerTable(t *testing.T) {
	prog, err := Parse([]byte(strings.Replace(small, "apply { t.apply(); u.apply(); }",
		"apply {\n if (t.apply().hit) { b = true; }\n switch (u.apply().action_run) { miss: { } }\n }", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := prog.ApplySites["t"]; len(got) != 1 {
		t.Errorf("sites of t = %v, want one (in an if condition)", got)
	}
	if got := prog.ApplySites["u"]; len(got) != 1 {
		t.Errorf("sites of u = %v, want one (in a switch)", got)
	}
	if err := prog.CheckApplySites(); err != nil {
		t.Errorf("one site per table refused: %v", err)
	}
}

func TestApplySitesCheckRefusesASecondSiteOrNone(t *testing.T) {
	for name, tc := range map[string]struct{ apply, want string }{
		"second site":       {"apply { t.apply(); if (b) { u.apply(); } else { t.apply(); u.apply(); } }", "table t is applied at 2 sites"},
		"twice in sequence": {"apply { t.apply(); u.apply(); u.apply(); }", "table u is applied at 2 sites"},
		"never applied":     {"apply { t.apply(); }", "table u (line"},
	} {
		prog, err := Parse([]byte(strings.Replace(small, "apply { t.apply(); u.apply(); }", tc.apply, 1)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = prog.CheckApplySites()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckApplySites() = %v, want an error with %q", name, err, tc.want)
		}
	}
}

func TestFormatTextQuotesLikeProtobuf(t *testing.T) {
	info := &p4configv1.P4Info{Actions: []*p4configv1.Action{{Preamble: &p4configv1.Preamble{Id: 1, Name: "x", Annotations: []string{`@noWarn("unused")`}}}}}
	got := FormatText(info)
	want := "actions {\n  preamble {\n    id: 1\n    name: \"x\"\n    annotations: \"@noWarn(\\\"unused\\\")\"\n  }\n}\n"
	if got != want {
		t.Errorf("FormatText =\n%s\nwant\n%s", got, want)
	}
}
