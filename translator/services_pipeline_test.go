package translator

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/p4src/vectors"
	"github.com/projectcalico/calico/felix/proto"
)

// seqIDs numbers members and groups in the order they are first encoded (what the programmer does).
type seqIDs map[string]uint32

func (s seqIDs) id(kind, profile, name string) (uint32, bool) {
	k := kind + "\x00" + profile + "\x00" + name
	if id, ok := s[k]; ok {
		return id, true
	}
	s[k] = uint32(len(s) + 1)
	return s[k], true
}
func (s seqIDs) MemberID(p, n string) (uint32, bool) { return s.id("m", p, n) }
func (s seqIDs) GroupID(p, n string) (uint32, bool)  { return s.id("g", p, n) }

// svcSwitch loads an entry set into a fresh k8s.p4 store (softswitch) and returns a worker over it.
func svcSwitch(t *testing.T, set *entry.Set, now *atomic.Int64) *pipeline.Worker {
	t.Helper()
	p, _ := softswitch(t, set, now)
	w, err := p.NewWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// tuple is a packet's addresses and ports, decoded from a frame the pipeline emitted.
type tuple struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func (x tuple) String() string {
	return fmt.Sprintf("%s -> %s", netip.AddrPortFrom(x.src, x.sport), netip.AddrPortFrom(x.dst, x.dport))
}

func decodeTuple(t *testing.T, b []byte) tuple {
	t.Helper()
	if len(b) < 14 {
		t.Fatalf("frame of %d bytes", len(b))
	}
	et, off := binary.BigEndian.Uint16(b[12:]), 14
	var x tuple
	switch et {
	case 0x0800:
		x.src, _ = netip.AddrFromSlice(b[off+12 : off+16])
		x.dst, _ = netip.AddrFromSlice(b[off+16 : off+20])
		off += int(b[off]&0x0f) * 4
	case 0x86dd:
		x.src, _ = netip.AddrFromSlice(b[off+8 : off+24])
		x.dst, _ = netip.AddrFromSlice(b[off+24 : off+40])
		off += 40
	default:
		t.Fatalf("ethertype %#x", et)
	}
	x.sport, x.dport = binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(b[off+2:])
	return x
}

func tcpFrame(t *testing.T, srcMAC string, x tuple, flags string) []byte {
	t.Helper()
	ip := "ipv4"
	if x.src.Is6() {
		ip = "ipv6"
	}
	b, err := vectors.ParsePacket(fmt.Sprintf("eth(dst=ee:ee:ee:ee:ee:ee, src=%s) / %s(src=%s, dst=%s) / tcp(sport=%d, dport=%d, flags=%s) / payload(len=8)",
		srcMAC, ip, x.src, x.dst, x.sport, x.dport, flags))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The translator's service entries on the softswitch pipeline, packet by packet: a ClusterIP spreads new
// connections over its backends and conntrack undoes the DNAT on replies (both families); a service
// without endpoints rejects (ICMP port unreachable, counted under its own drop reason); a NodePort from the uplink with externalTrafficPolicy
// Local reaches only this node's backend; ClientIP affinity keeps a client on one backend; and policy
// runs on the translated packet (the backend's port, not the service's).
func TestServicesOnTheSoftswitchPipeline(t *testing.T) {
	const clientMAC, b1MAC, b2MAC = "0a:58:0a:41:00:3c", "0a:58:0a:41:00:33", "0a:58:0a:41:00:34"
	allowProf := msgProfile("kns.svc", []*proto.Rule{{Action: "allow"}}, []*proto.Rule{{Action: "allow"}})
	// web-2 admits TCP 8080 only (the target port): a policy seeing the service port (80) would deny.
	onlyTarget := msgPolicy("default", "svc/knp.default.web2", []*proto.Rule{{Action: "allow", Protocol: tcp(), DstPorts: ports(8080, 8080)}}, nil)
	msgs := append(node1Meta(), msgConfig(), allowProf, onlyTarget,
		msgWEP("svc/client", "caliclient", clientMAC, []string{"10.65.0.60/32"}, []string{"fd00:65::60/128"}, []string{"kns.svc"}),
		msgWEP("svc/web-1", "caliweb1", b1MAC, []string{"10.65.0.51/32"}, []string{"fd00:65::51/128"}, []string{"kns.svc"}),
		msgWEP("svc/web-2", "caliweb2", b2MAC, []string{"10.65.0.52/32"}, []string{"fd00:65::52/128"}, []string{"kns.svc"},
			&proto.TierInfo{Name: "default", IngressPolicies: []string{"svc/knp.default.web2"}}))
	s := stateOf(t, msgs)
	setWatch(t, s, watchServicesOf(t, []byte(`
objects:
- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: svc},
   spec: {type: NodePort, externalTrafficPolicy: Local, clusterIPs: [10.96.0.10, "fd00:10:96::10"],
          ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: web-4, namespace: svc, labels: {kubernetes.io/service-name: web}},
   addressType: IPv4, ports: [{name: http, port: 8080}],
   endpoints: [{addresses: [10.65.0.51], nodeName: node1}, {addresses: [10.65.0.52], nodeName: node1}, {addresses: [10.65.1.53], nodeName: node2}]}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: web-6, namespace: svc, labels: {kubernetes.io/service-name: web}},
   addressType: IPv6, ports: [{name: http, port: 8080}],
   endpoints: [{addresses: ["fd00:65::51"], nodeName: node1}, {addresses: ["fd00:65::52"], nodeName: node1}]}
- {apiVersion: v1, kind: Service, metadata: {name: sticky, namespace: svc},
   spec: {clusterIPs: [10.96.0.60], sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}},
          ports: [{name: http, port: 80, targetPort: 8080}]}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: sticky-1, namespace: svc, labels: {kubernetes.io/service-name: sticky}},
   addressType: IPv4, ports: [{name: http, port: 8080}], endpoints: [{addresses: [10.65.0.51]}, {addresses: [10.65.0.52]}]}
- {apiVersion: v1, kind: Service, metadata: {name: empty, namespace: svc},
   spec: {clusterIPs: [10.96.0.99], ports: [{port: 80}]}}
`)))
	res := Translate(s, testPorts, testNode())
	if len(res.Report.Workloads) > 0 {
		t.Fatalf("endpoint errors: %v", res.Report.Workloads)
	}
	var now atomic.Int64
	now.Store(1)
	w := svcSwitch(t, res.Entries, &now)
	port := func(iface string) uint32 { p, _ := testPorts.PortID(iface); return p }
	clientPort, b1Port, b2Port, uplink := port("caliclient"), port("caliweb1"), port("caliweb2"), port("cp4up0")
	backendOf := map[uint32]string{b1Port: "web-1", b2Port: "web-2"}

	t.Run("ClusterIP spreads connections and replies are un-NATed, both families", func(t *testing.T) {
		for _, fam := range []struct{ client, vip, b1, b2 string }{
			{"10.65.0.60", "10.96.0.10", "10.65.0.51", "10.65.0.52"},
			{"fd00:65::60", "fd00:10:96::10", "fd00:65::51", "fd00:65::52"},
		} {
			seen := map[string]int{}
			for sport := uint16(20000); sport < 20032; sport++ {
				x := tuple{netip.MustParseAddr(fam.client), netip.MustParseAddr(fam.vip), sport, 80}
				r := w.Process(tcpFrame(t, clientMAC, x, "S"), clientPort)
				if !r.Forwarded() {
					t.Fatalf("%s: dropped (%s)", x, pipeline.DropReasonName(r.DropReason))
				}
				b, ok := backendOf[r.Port]
				if r.Port == uplink {
					b, ok = "web-3", true // on node2, reached through the uplink
				}
				if !ok {
					t.Fatalf("%s: sent to port %#x, not a backend's", x, r.Port)
				}
				got := decodeTuple(t, r.Data)
				wantDst := map[string]string{"web-1": fam.b1, "web-2": fam.b2, "web-3": "10.65.1.53"}[b]
				if got.dst != netip.MustParseAddr(wantDst) || got.dport != 8080 || got.src != x.src || got.sport != sport {
					t.Fatalf("%s: DNAT gave %s (to %s)", x, got, b)
				}
				seen[b]++
				if b == "web-3" {
					continue
				}
				// The backend's reply comes back from the service address.
				reply := tuple{got.dst, got.src, got.dport, got.sport}
				bmac := map[string]string{"web-1": b1MAC, "web-2": b2MAC}[b]
				rr := w.Process(tcpFrame(t, bmac, reply, "SA"), map[string]uint32{"web-1": b1Port, "web-2": b2Port}[b])
				if !rr.Forwarded() || rr.Port != clientPort {
					t.Fatalf("reply %s: forwarded %v to %#x (%s)", reply, rr.Forwarded(), rr.Port, pipeline.DropReasonName(rr.DropReason))
				}
				if g := decodeTuple(t, rr.Data); g.src != x.dst || g.sport != 80 || g.dst != x.src || g.dport != sport {
					t.Fatalf("reply %s reached the client as %s", reply, g)
				}
			}
			if seen["web-1"] == 0 || seen["web-2"] == 0 || (fam.b1 == "10.65.0.51" && seen["web-3"] == 0) {
				t.Errorf("%s: 32 connections reached %v, want every backend (web-2's policy admits its target port 8080)",
					fam.vip, seen)
			}
		}
	})

	t.Run("a service without endpoints rejects with ICMP port unreachable to the client", func(t *testing.T) {
		x := tuple{netip.MustParseAddr("10.65.0.60"), netip.MustParseAddr("10.96.0.99"), 21000, 80}
		r := w.Process(tcpFrame(t, clientMAC, x, "S"), clientPort)
		if r.Fate != p4src.FateReply || r.Port != clientPort || r.DropReason != p4src.DropNoServiceBackend {
			t.Fatalf("fate %d to %#x, reason %s; want the reject back to the client", r.Fate, r.Port,
				pipeline.DropReasonName(r.DropReason))
		}
		d := r.Data
		if len(d) < 14+56 || d[14+9] != 1 || d[14+20] != 3 || d[14+21] != 3 {
			t.Fatalf("not an ICMP port unreachable: %x", d)
		}
		if src, dst := netip.AddrFrom4([4]byte(d[26:30])), netip.AddrFrom4([4]byte(d[30:34])); src != x.dst || dst != x.src {
			t.Errorf("ICMP error %s -> %s, want %s -> %s", src, dst, x.dst, x.src)
		}
		// Checksums, summed by hand: a header with a correct checksum sums to 0xffff. The ICMP message
		// ends where the IP length says (56 bytes); what follows is padding no checksum covers.
		ipLen := int(d[16])<<8 | int(d[17])
		if ipLen != 56 || onesSum(d[14:34]) != 0xffff || onesSum(d[34:14+ipLen]) != 0xffff {
			t.Errorf("IP length %d, IPv4 header sum %#x, ICMP sum %#x; want 56, 0xffff, 0xffff", ipLen,
				onesSum(d[14:34]), onesSum(d[34:14+ipLen]))
		}
		// The quote: the client's IP header and its ports.
		if q := d[42:]; netip.AddrFrom4([4]byte(q[12:16])) != x.src || int(q[20])<<8|int(q[21]) != int(x.sport) {
			t.Errorf("the error quotes %x", q[:28])
		}
	})

	t.Run("NodePort from the uplink with externalTrafficPolicy Local reaches only local backends", func(t *testing.T) {
		seen := map[string]int{}
		for sport := uint16(40000); sport < 40032; sport++ {
			x := tuple{netip.MustParseAddr("192.168.122.1"), netip.MustParseAddr("192.168.122.11"), sport, 30080}
			r := w.Process(tcpFrame(t, "02:00:00:00:01:01", x, "S"), uplink)
			if !r.Forwarded() {
				t.Fatalf("%s: dropped (%s)", x, pipeline.DropReasonName(r.DropReason))
			}
			b, ok := backendOf[r.Port]
			if !ok {
				t.Fatalf("%s: sent to port %#x (web-3 on node2 must not be used)", x, r.Port)
			}
			if got := decodeTuple(t, r.Data); got.src != x.src || got.dport != 8080 {
				t.Fatalf("%s became %s: Local policy keeps the client address", x, got)
			}
			seen[b]++
		}
		if len(seen) != 2 {
			t.Errorf("node port connections reached %v", seen)
		}
	})

	t.Run("ClientIP affinity keeps a client on one backend", func(t *testing.T) {
		seen := map[string]int{}
		for sport := uint16(22000); sport < 22032; sport++ {
			x := tuple{netip.MustParseAddr("10.65.0.60"), netip.MustParseAddr("10.96.0.60"), sport, 80}
			r := w.Process(tcpFrame(t, clientMAC, x, "S"), clientPort)
			if !r.Forwarded() {
				t.Fatalf("%s: dropped (%s)", x, pipeline.DropReasonName(r.DropReason))
			}
			seen[backendOf[r.Port]]++
		}
		if len(seen) != 1 {
			t.Errorf("an affine client reached %v", seen)
		}
	})
}

// onesSum is the 16-bit ones' complement sum of b (even length).
func onesSum(b []byte) uint16 {
	s := uint32(0)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
