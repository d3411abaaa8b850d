package vectors

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

const testdata = "../testdata"

func mustSpec(t *testing.T) *Spec {
	t.Helper()
	s, err := NewSpec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEveryVectorFileParses(t *testing.T) {
	files, err := mustSpec(t).ParseDir(testdata)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d vector files", len(files))
	}
	cases, packets := 0, 0
	for _, f := range files {
		for _, c := range f.Cases {
			cases++
			for _, op := range c.Ops {
				if op.Packet != nil {
					packets++
				}
			}
		}
	}
	t.Logf("%d files, %d cases, %d packets", len(files), cases, packets)
}

// Every table and action of the P4Info must be exercised by a vector: named
// by a written entry or member, or by an "expect applied" line.
func TestVectorsExerciseEveryTableAndAction(t *testing.T) {
	s := mustSpec(t)
	files, err := s.ParseDir(testdata)
	if err != nil {
		t.Fatal(err)
	}
	tables, actions := map[string]bool{}, map[string]bool{}
	note := func(ops []Op) {
		for _, op := range ops {
			if w := op.Write; w != nil {
				if w.Table != "" {
					tables[w.Table] = true
				}
				if w.Action != "" {
					actions[w.Action] = true
				}
			}
			if p := op.Packet; p != nil {
				for _, e := range p.Expect {
					if e.Kind == ExpectApplied {
						tables[e.Table] = true
						actions[e.Action] = true
					}
				}
			}
		}
	}
	for _, f := range files {
		note(f.Setup)
		for _, c := range f.Cases {
			note(c.Ops)
		}
	}
	var missing []string
	for _, tb := range s.Info.Tables {
		if !tables[tb.Preamble.Name] {
			missing = append(missing, "table "+tb.Preamble.Name)
		}
	}
	for _, a := range s.Info.Actions {
		if !actions[a.Preamble.Name] {
			missing = append(missing, "action "+a.Preamble.Name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("not exercised by any vector:\n  %s", strings.Join(missing, "\n  "))
	}
}

func TestVectorsDropWithEveryReasonTheProgramCanReach(t *testing.T) {
	s := mustSpec(t)
	files, err := s.ParseDir(testdata)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		for _, c := range f.Cases {
			for _, op := range c.Ops {
				if op.Packet == nil {
					continue
				}
				for _, e := range op.Packet.Expect {
					if e.Kind == ExpectDrop {
						seen[e.ReasonName] = true
					}
				}
			}
		}
	}
	for _, r := range []string{"DROP_PARSE_ERROR", "DROP_UNKNOWN_PORT", "DROP_SPOOFED_SOURCE", "DROP_POLICY_DENY",
		"DROP_NO_ROUTE", "DROP_NO_SERVICE_BACKEND", "DROP_TTL_EXPIRED", "DROP_PASS_BUDGET", "DROP_POLICY_PROGRAM",
		"DROP_UNSUPPORTED", "DROP_SNAT_CONFLICT"} {
		if !seen[r] {
			t.Errorf("no vector expects a drop with %s", r)
		}
	}
}

func writeVec(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "x.vec")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParserBuildsP4RuntimeEntities(t *testing.T) {
	s := mustSpec(t)
	p := writeVec(t, `
port a 0x101
add port_endpoint port=a -> set_endpoint(endpoint_id=7, kind=EP_KIND_WORKLOAD, flags=EP_FLAG_SOURCE_CHECK|EP_FLAG_POLICY, peer_port=0)
add route_v4 dst_addr=10.65.1.0/26 -> set_nexthop(nexthop_id=20, flags=0)
add route_v4 dst_addr=0.0.0.0/0 -> set_nexthop(nexthop_id=30, flags=1)
add policy_rule priority=5 step_id=1 set_hit=1 protocol=6&&&0xff dst_port=9000..9100 src_port=* -> rule_allow(rule_id=3)
add member service_selector_v4 1 dnat_v4(addr=10.65.0.3, port=8080, flags=0)
add group service_selector_v4 1 1
add service_v4 dst_addr=10.96.0.20 protocol=6 dst_port=80 -> group 1
case c
packet a eth(dst=ee:ee:ee:ee:ee:ee, src=02:00:00:00:00:01) / ipv4(src=10.0.0.1, dst=10.0.0.2) / udp(sport=1, dport=2)
expect drop DROP_POLICY_DENY
expect applied port_endpoint set_endpoint
`)
	f, err := s.ParseFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Setup) != 7 || len(f.Cases) != 1 {
		t.Fatalf("setup %d ops, %d cases", len(f.Setup), len(f.Cases))
	}
	te := f.Setup[0].Write.Entity.GetTableEntry()
	if te.TableId != 0x02000001 || !bytes.Equal(te.Match[0].GetExact().Value, []byte{0x01, 0x01}) {
		t.Errorf("port_endpoint entry = %v", te)
	}
	params := te.Action.GetAction().Params
	if len(params) != 4 || !bytes.Equal(params[1].Value, []byte{1}) || !bytes.Equal(params[2].Value, []byte{3}) || !bytes.Equal(params[3].Value, []byte{0}) {
		t.Errorf("set_endpoint params = %v", params)
	}
	lpm := f.Setup[1].Write.Entity.GetTableEntry().Match[0].GetLpm()
	if !bytes.Equal(lpm.Value, []byte{10, 65, 1, 0}) || lpm.PrefixLen != 26 {
		t.Errorf("lpm = %v", lpm)
	}
	if n := len(f.Setup[2].Write.Entity.GetTableEntry().Match); n != 0 {
		t.Errorf("a /0 route has %d match fields, want none (don't care)", n)
	}
	rule := f.Setup[3].Write.Entity.GetTableEntry()
	if rule.Priority != 5 || len(rule.Match) != 4 {
		t.Fatalf("rule = %v", rule)
	}
	if r := rule.Match[3].GetRange(); r == nil || !bytes.Equal(r.Low, []byte{0x23, 0x28}) || !bytes.Equal(r.High, []byte{0x23, 0x8c}) {
		t.Errorf("range = %v", rule.Match[3])
	}
	if g := f.Setup[5].Write.Entity.GetActionProfileGroup(); g == nil || g.GroupId != 1 || len(g.Members) != 1 {
		t.Errorf("group = %v", f.Setup[5].Write.Entity)
	}
	if id := f.Setup[6].Write.Entity.GetTableEntry().Action.GetActionProfileGroupId(); id != 1 {
		t.Errorf("service entry group = %d", id)
	}
	pk := f.Cases[0].Ops[0].Packet
	if pk.Port != 0x101 || len(pk.Expect) != 2 || pk.Expect[0].Reason != 4 || pk.Expect[1].Action != "MainControlImpl.set_endpoint" {
		t.Errorf("packet = %+v", pk)
	}
	if f.Setup[0].Write.Type != p4v1.Update_INSERT {
		t.Errorf("add is %v", f.Setup[0].Write.Type)
	}
}

func TestParserRejectsWhatATargetWouldReject(t *testing.T) {
	s := mustSpec(t)
	bad := map[string]string{
		"unknown table":            "add nosuch x=1 -> NoAction",
		"unknown field":            "add route_v4 dst=10.0.0.0/8 -> route_unreachable",
		"default-only action":      "add port_endpoint port=1 -> unknown_port",
		"action not in table":      "add route_v4 dst_addr=10.0.0.0/8 -> nh_local(port=1, dst_mac=00:00:00:00:00:01, endpoint_id=1, flags=0)",
		"missing param":            "add route_v4 dst_addr=10.0.0.0/8 -> set_nexthop(nexthop_id=1)",
		"extra param":              "add route_v4 dst_addr=10.0.0.0/8 -> set_nexthop(nexthop_id=1, flags=0, x=1)",
		"value too wide":           "add route_v4 dst_addr=10.0.0.0/8 -> set_nexthop(nexthop_id=1, flags=256)",
		"host bits in a prefix":    "add route_v4 dst_addr=10.0.0.1/8 -> route_unreachable",
		"missing priority":         "add policy_rule step_id=1 -> rule_allow(rule_id=1)",
		"priority on exact table":  "add nexthop priority=3 nexthop_id=1 -> nexthop_missing",
		"missing exact field":      "add source_guard_v4 src_addr=10.0.0.0/8 -> source_allowed",
		"action on selector table": "add service_v4 dst_addr=10.0.0.1 protocol=6 dst_port=80 -> dnat_v4(addr=10.0.0.2, port=1, flags=0)",
		"IPv6 in a 32-bit field":   "add route_v4 dst_addr=fd00::/8 -> route_unreachable",
		"unknown constant":         "add endpoint_policy endpoint_id=1 stage=STAGE_NOPE -> set_policy_list(list_id=1)",
	}
	for name, line := range bad {
		p := writeVec(t, line+"\ncase c\npacket 1 eth()\nexpect drop DROP_NONE\n")
		if _, err := s.ParseFile(p); err == nil {
			t.Errorf("%s: accepted %q", name, line)
		}
	}
	structural := map[string]string{
		"packet without expectation": "case c\npacket 1 eth()\n",
		"expect without packet":      "case c\nexpect drop DROP_NO_ROUTE\n",
		"no case":                    "add route_v4 dst_addr=10.0.0.0/8 -> route_unreachable\n",
		"unknown drop reason":        "case c\npacket 1 eth()\nexpect drop NO_ROUTE\n",
		"applied on wrong table":     "case c\npacket 1 eth()\nexpect drop DROP_NO_ROUTE\nexpect applied route_v4 nh_local\n",
		"unknown layer":              "case c\npacket 1 eth() / ipx()\nexpect drop DROP_NO_ROUTE\n",
		"duplicate case":             "case c\npacket 1 eth()\nexpect drop DROP_NO_ROUTE\ncase c\npacket 1 eth()\nexpect drop DROP_NO_ROUTE\n",
	}
	for name, body := range structural {
		if _, err := s.ParseFile(writeVec(t, body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPacketBuilderComputesLengthsAndChecksums(t *testing.T) {
	tests := []struct {
		name, desc, want string
	}{
		{
			// A TCP SYN with every computed field checked against a capture-style reference.
			"ipv4 tcp",
			"eth(dst=0a:58:0a:41:00:03, src=ee:ee:ee:ee:ee:ee) / ipv4(src=10.65.0.2, dst=10.65.0.3, ttl=63) / tcp(sport=40000, dport=80, flags=S)",
			"0a580a410003eeeeeeeeeeee0800" +
				"45000028000000003f06" + "674a" + "0a4100020a410003" +
				"9c400050000000000000000050022000decb0000", // checksums cross-checked with an independent implementation
		},
		{
			"arp reply",
			"eth(dst=0a:58:0a:41:00:02, src=ee:ee:ee:ee:ee:ee) / arp(op=2, sha=ee:ee:ee:ee:ee:ee, spa=169.254.1.1, tha=0a:58:0a:41:00:02, tpa=10.65.0.2)",
			"0a580a410002eeeeeeeeeeee0806" + "0001080006040002" + "eeeeeeeeeeee" + "a9fe0101" + "0a580a410002" + "0a410002",
		},
	}
	for _, tc := range tests {
		got, err := ParsePacket(tc.desc)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%s:\n got %x\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestPacketChecksumsVerify(t *testing.T) {
	for _, desc := range []string{
		"eth() / ipv4(src=10.0.0.1, dst=10.0.0.2) / udp(sport=1, dport=2) / payload(len=7)",
		"eth() / ipv6(src=fd00::1, dst=fd00::2) / tcp(sport=1, dport=2, flags=SA) / payload(len=3)",
		"eth() / ipv6(src=fe80::1, dst=fe80::2, hlim=255) / icmpv6(type=136, id=0xe000) / nd(target=fe80::1) / ndopt(type=2, lladdr=ee:ee:ee:ee:ee:ee)",
		"eth() / ipv4(src=10.0.0.1, dst=10.0.0.2) / icmp(type=3, code=3) / ipv4(src=10.0.0.2, dst=10.0.0.1) / udp(sport=5, dport=6)",
	} {
		b, err := ParsePacket(desc)
		if err != nil {
			t.Fatal(err)
		}
		ip := b[14:]
		if ip[0]>>4 == 4 {
			if checksum(ip[:20], 0) != 0 {
				t.Errorf("%s: IPv4 header checksum does not verify", desc)
			}
			seg := ip[20:]
			if ip[9] == 1 {
				if checksum(seg, 0) != 0 {
					t.Errorf("%s: ICMP checksum does not verify", desc)
				}
				continue
			}
			pseudo := append(append([]byte{}, ip[12:20]...), 0, ip[9], byte(len(seg)>>8), byte(len(seg)))
			if checksum(seg, sum16(pseudo)) != 0 {
				t.Errorf("%s: L4 checksum does not verify", desc)
			}
		} else {
			seg := ip[40:]
			pseudo := append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, ip[6])
			if checksum(seg, sum16(pseudo)) != 0 {
				t.Errorf("%s: L4 checksum does not verify", desc)
			}
		}
	}
}

func TestPacketBuilderRejectsBadDescriptions(t *testing.T) {
	for _, desc := range []string{
		"eth(dst=zz:00:00:00:00:00)",
		"ipv4(src=fd00::1)",
		"ipv4(ttl=300)",
		"tcp(flags=SX)",
		"eth(foo=1)",
		"eth(dst=00:00:00:00:00:01, dst=00:00:00:00:00:02)",
		"payload(hex=0g)",
		"ipv4(options=010101)",
	} {
		if _, err := ParsePacket(desc); err == nil {
			t.Errorf("ParsePacket(%q) accepted it", desc)
		}
	}
}

func FuzzParsePacketDoesNotPanic(f *testing.F) {
	f.Add("eth() / ipv4(src=10.0.0.1, dst=10.0.0.2) / tcp(sport=1, dport=2, flags=S)")
	f.Add("eth() / vlan(vid=3) / ipv6() / icmpv6(type=135) / nd(target=::1) / ndopt()")
	f.Fuzz(func(t *testing.T, desc string) {
		_, _ = ParsePacket(desc)
	})
}
