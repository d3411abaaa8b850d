package translator

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/projectcalico/calico/felix/proto"
)

// testPorts derives port ids from names like the embedded target does (FNV-1a folded into
// [0x100, 0x7fffffff]); names starting with "missing" have no port.
var testPorts = PortFunc(func(iface string) (uint32, error) {
	if strings.HasPrefix(iface, "missing") {
		return 0, fmt.Errorf("no such interface %q", iface)
	}
	h := fnv.New32a()
	h.Write([]byte(iface))
	return 0x100 + h.Sum32()%(0x7fffffff-0x100), nil
})

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// testNode is node1 of the captures with a host port and an uplink.
func testNode() Options {
	return Options{Node: Node{
		Name:                  "node1",
		HostInterface:         "cp4host0",
		HostMAC:               mac("02:00:00:00:00:01"),
		UplinkInterface:       "cp4up0",
		HostEndpointInterface: "eth0",
		UplinkMAC:             mac("02:00:00:00:00:11"),
		GatewayMAC:            mac("02:00:00:00:01:01"),
		Neighbors: map[netip.Addr]net.HardwareAddr{
			netip.MustParseAddr("192.168.122.12"): mac("02:00:00:00:00:12"),
		},
	}}
}

// stateOf applies messages (through the wire form) to a new state.
func stateOf(t testing.TB, msgs []*proto.ToDataplane) *model.State {
	t.Helper()
	s := model.NewState()
	applyMsgs(t, s, msgs...)
	return s
}

func applyMsgs(t testing.TB, s *model.State, msgs ...*proto.ToDataplane) {
	t.Helper()
	for _, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		dec, err := model.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(dec); err != nil {
			t.Fatalf("%s: %v", model.PayloadName(dec), err)
		}
	}
}

func loadCapture(t testing.TB, name string) *felixsim.Stream {
	t.Helper()
	s, err := felixsim.LoadStream(felixsim.CapturePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testInfo *p4rt.Info

func p4info(t testing.TB) *p4rt.Info {
	t.Helper()
	if testInfo == nil {
		pi, err := p4src.P4Info()
		if err != nil {
			t.Fatal(err)
		}
		if testInfo, err = p4rt.NewInfo(pi); err != nil {
			t.Fatal(err)
		}
	}
	return testInfo
}

// checkEncodes fails the test for every entry of set the P4Info encoder refuses.
func checkEncodes(t testing.TB, set *entry.Set) {
	t.Helper()
	info := p4info(t)
	bad := 0
	for _, e := range set.All() {
		if err := info.Validate(e); err != nil {
			bad++
			if bad <= 5 {
				t.Errorf("does not encode: %v", err)
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d entries do not encode", bad)
	}
}
