package probe

import (
	"net/netip"
	"testing"
)

func TestSourcePortsNeverRepeatPerNamespaceAndStayBelowTheEphemeralRange(t *testing.T) {
	s := NewSourcePorts()
	seen := map[string]map[uint16]bool{}
	for i := 0; i < 20000; i++ {
		for _, ns := range []string{"/run/netns/a", "/run/netns/b"} {
			for _, p := range []Protocol{TCP, UDP, ICMP} {
				v := s.Next(ns, p)
				k := ns + string(p)
				if seen[k] == nil {
					seen[k] = map[uint16]bool{}
				}
				if seen[k][v] {
					t.Fatalf("%s %s: %d handed out twice within %d", ns, p, v, i)
				}
				seen[k][v] = true
				if p != ICMP && (v < 10000 || v >= 32768) {
					t.Fatalf("%s port %d outside 10000-32767", p, v)
				}
				if p == ICMP && v == 0 {
					t.Fatal("echo identifier 0")
				}
			}
		}
	}
	req := Request{FromNetNS: "/run/netns/a", Proto: TCP}
	s.Fill(&req, netip.MustParseAddr("10.65.0.11"))
	if req.Source.Addr() != netip.MustParseAddr("10.65.0.11") || req.Source.Port() < 10000 {
		t.Errorf("Fill TCP: %v", req.Source)
	}
	req = Request{FromNetNS: "/run/netns/a", Proto: ICMP}
	s.Fill(&req, netip.MustParseAddr("10.65.0.11"))
	if req.EchoID == 0 || req.Source.IsValid() {
		t.Errorf("Fill ICMP: id %d source %v", req.EchoID, req.Source)
	}
	var none *SourcePorts
	req = Request{Proto: UDP}
	none.Fill(&req, netip.MustParseAddr("10.65.0.11"))
	if req.Source.IsValid() {
		t.Error("a nil allocator set a source")
	}
}
