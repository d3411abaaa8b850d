package p4src

import (
	"bytes"
	"os"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"

	"github.com/calico-p4/calico-p4/p4src/internal/names"
	"github.com/calico-p4/calico-p4/p4src/internal/p4parse"
)

func TestEmbeddedP4InfoLoadsIntoP4InfoMessage(t *testing.T) {
	info, err := P4Info()
	if err != nil {
		t.Fatal(err)
	}
	if got := info.GetPkgInfo().GetArch(); got != "pna" {
		t.Errorf("arch = %q, want pna", got)
	}
	if len(info.Tables) == 0 || len(info.Actions) == 0 {
		t.Fatalf("P4Info has %d tables and %d actions", len(info.Tables), len(info.Actions))
	}
	// Callers may modify what they get.
	info.Tables = nil
	again := MustP4Info()
	if len(again.Tables) == 0 {
		t.Error("P4Info returned a shared message")
	}
}

func TestEveryP4InfoObjectHasTheRightIDPrefix(t *testing.T) {
	info := MustP4Info()
	check := func(kind string, prefix byte, pre *p4configv1.Preamble) {
		t.Helper()
		if byte(pre.GetId()>>24) != prefix {
			t.Errorf("%s %s: id %#08x, want prefix %#02x", kind, pre.GetName(), pre.GetId(), prefix)
		}
	}
	for _, x := range info.Tables {
		check("table", p4parse.PrefixTable, x.Preamble)
	}
	for _, x := range info.Actions {
		check("action", p4parse.PrefixAction, x.Preamble)
	}
	for _, x := range info.ActionProfiles {
		check("action profile", p4parse.PrefixActionProfile, x.Preamble)
	}
	for _, x := range info.Counters {
		check("counter", p4parse.PrefixCounter, x.Preamble)
	}
	for _, x := range info.DirectCounters {
		check("direct counter", p4parse.PrefixDirectCounter, x.Preamble)
	}
}

func TestProgramAndP4InfoAgree(t *testing.T) {
	if err := p4parse.Check(program, p4infoText); err != nil {
		t.Fatal(err)
	}
}

// The consistency check must notice a change on either side.
func TestConsistencyCheckFailsWhenEitherSideDrifts(t *testing.T) {
	mutate := func(src []byte, old, new string) []byte {
		t.Helper()
		if !bytes.Contains(src, []byte(old)) {
			t.Fatalf("mutation target %q not found", old)
		}
		return bytes.Replace(src, []byte(old), []byte(new), 1)
	}
	programCases := []struct{ name, old, new string }{
		{"typedef width", "typedef bit<32>  endpoint_id_t;", "typedef bit<24>  endpoint_id_t;"},
		{"header field width", "    ipv4_addr_t target_ip;", "    bit<16>     target_ip;"},
		{"struct field width", "    bit<8>        stage;", "    bit<16>       stage;"},
		{"match field name", `meta.src.port : exact @name("port")`, `meta.src.port : exact @name("in_port")`},
		{"match kind", `meta.dst.addr4 : lpm @name("dst_addr")`, `meta.dst.addr4 : ternary @name("dst_addr")`},
		{"table size", "        size = 16384;\n    }\n\n    @id(0x02000013)", "        size = 8192;\n    }\n\n    @id(0x02000013)"},
		{"table id", "@id(0x02000012)", "@id(0x02000099)"},
		{"action id", "@id(0x01000019)", "@id(0x01000099)"},
		{"param width", "action set_nexthop(nexthop_id_t nexthop_id, bit<8> flags)", "action set_nexthop(nexthop_id_t nexthop_id, bit<16> flags)"},
		{"param added", "action route_unreachable()", "action route_unreachable(bit<8> reason)"},
		{"action removed from a table", "            set_nexthop;\n            route_unreachable;\n        }\n        const default_action = route_unreachable;\n        size = 16384;\n    }\n\n    @id(0x02000013)",
			"            route_unreachable;\n        }\n        const default_action = route_unreachable;\n        size = 16384;\n    }\n\n    @id(0x02000013)"},
		{"scope", "@tableonly set_endpoint;", "set_endpoint;"},
		{"default not const", "const default_action = unknown_port;", "default_action = unknown_port;"},
		{"selector size", "32w32768, 32w16) service_selector_v4", "32w65536, 32w16) service_selector_v4"},
		{"max group size", "@id(0x11000001) @max_group_size(256)", "@id(0x11000001) @max_group_size(128)"},
		{"counter size", "const bit<32> DROP_REASONS           = 32;", "const bit<32> DROP_REASONS           = 64;"},
		{"direct counter moved", "pna_direct_counter = nexthop_counter;", ""},
		{"learner table applied at a second site", "                    ct_orig_v4.apply();\n",
			"                    ct_orig_v4.apply();\n                    if (meta.ct.hit_orig == 0) { ct_orig_v4.apply(); }\n"},
		{"table applied twice in a row", "                    policy_rule_stats.apply();\n",
			"                    policy_rule_stats.apply();\n                    policy_rule_stats.apply();\n"},
		{"table never applied", "                    nexthop.apply();\n", "\n"},
	}
	for _, tc := range programCases {
		t.Run("program/"+tc.name, func(t *testing.T) {
			if err := p4parse.Check(mutate(program, tc.old, tc.new), p4infoText); err == nil {
				t.Errorf("a program with a changed %s still matches the P4Info", tc.name)
			}
		})
	}
	p4infoCases := []struct{ name, old, new string }{
		{"bitwidth", "name: \"port\"\n    bitwidth: 32", "name: \"port\"\n    bitwidth: 16"},
		{"match type", "name: \"src_addr\"\n    bitwidth: 32\n    match_type: LPM", "name: \"src_addr\"\n    bitwidth: 32\n    match_type: TERNARY"},
		{"table name", `name: "MainControlImpl.route_v4"`, `name: "MainControlImpl.routes_v4"`},
		{"size", "size: 131072", "size: 65536"},
		{"param name", `name: "nexthop_id"`, `name: "next_hop_id"`},
		{"scope", "scope: DEFAULT_ONLY", "scope: TABLE_AND_DEFAULT"},
		{"extra table", "tables {\n", "tables {\n  preamble {\n    id: 33619967\n    name: \"MainControlImpl.extra\"\n    alias: \"extra\"\n  }\n}\ntables {\n"},
	}
	for _, tc := range p4infoCases {
		t.Run("p4info/"+tc.name, func(t *testing.T) {
			if err := p4parse.Check(program, mutate(p4infoText, tc.old, tc.new)); err == nil {
				t.Errorf("a P4Info with a changed %s still matches the program", tc.name)
			}
		})
	}
}

func TestGeneratedNamesAreCurrent(t *testing.T) {
	prog, err := p4parse.Parse(program)
	if err != nil {
		t.Fatal(err)
	}
	want, err := names.Generate(MustP4Info(), prog)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("names_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("names_gen.go is stale: run `go generate ./p4src`")
	}
}

func TestGeneratedConstantsMatchTheP4Info(t *testing.T) {
	info := MustP4Info()
	find := func(name string) *p4configv1.Table {
		for _, tb := range info.Tables {
			if tb.Preamble.Name == name {
				return tb
			}
		}
		return nil
	}
	tb := find(string(TableRouteV4))
	if tb == nil {
		t.Fatalf("%s not in the P4Info", TableRouteV4)
	}
	if tb.Preamble.Id != uint32(TableRouteV4ID) || tb.Size != TableRouteV4Size {
		t.Errorf("route_v4: id %#x size %d, constants say %#x %d", tb.Preamble.Id, tb.Size, TableRouteV4ID, TableRouteV4Size)
	}
	if mf := tb.MatchFields[0]; mf.Name != string(KeyRouteV4DstAddr) || mf.Bitwidth != KeyRouteV4DstAddrBits {
		t.Errorf("route_v4 key: %s/%d, constants say %s/%d", mf.Name, mf.Bitwidth, KeyRouteV4DstAddr, KeyRouteV4DstAddrBits)
	}
	if EPKindWorkload != 1 || StageWorkloadIngress != 2 || DropPolicyDeny != 4 || GatewayMAC != 0xeeeeeeeeeeee {
		t.Error("program constants were not generated with their values")
	}
}

func TestProgramDeclaresPNAMain(t *testing.T) {
	for _, want := range []string{"#include <core.p4>", "#include <pna.p4>", "PNA_NIC(", ") main;"} {
		if !strings.Contains(string(program), want) {
			t.Errorf("k8s.p4 lacks %q", want)
		}
	}
}
