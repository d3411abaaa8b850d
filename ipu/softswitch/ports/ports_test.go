package ports

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/p4src/vectors"
)

func TestIDForNameIsStableAndInRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		want uint32
	}{
		// FNV-1a 32 of the name, folded: 0x100 + h % 0x7fffff00.
		{"cali1234567890a", 0x100 + fnv1a("cali1234567890a")%0x7fffff00},
		{"eth0", 0x100 + fnv1a("eth0")%0x7fffff00},
	} {
		got := IDForName(tc.name)
		if got != tc.want || got < FirstID || got > LastID {
			t.Errorf("IDForName(%q) = %#x, want %#x in [%#x, %#x]", tc.name, got, tc.want, FirstID, LastID)
		}
	}
	if IDForName("a") == IDForName("b") {
		t.Error("distinct short names share an id")
	}
}

func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func TestCollidingNamesAreRefused(t *testing.T) {
	m := newIDMap()
	// Find two names with the same id.
	seen := map[uint32]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		n := "if" + itoa(i)
		id := IDForName(n)
		if o, ok := seen[id]; ok {
			a, b = o, n
		}
		seen[id] = n
		if i > 5_000_000 {
			t.Skip("no collision found")
		}
	}
	if _, err := m.claim(a); err != nil {
		t.Fatal(err)
	}
	_, err := m.claim(b)
	var ce *CollisionError
	if !errors.As(err, &ce) || ce.Other != a {
		t.Fatalf("claim(%q) after %q = %v, want a collision", b, a, err)
	}
	m.release(a)
	if _, err := m.claim(b); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestVnetHeaderRoundTrips(t *testing.T) {
	h := vnetHdr{flags: vnetNeedsCsum, gsoType: gsoTCPv4, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16}
	b := make([]byte, vnetLen)
	h.encode(b)
	if got := decodeVnet(b); got != h {
		t.Fatalf("round trip: %+v != %+v", got, h)
	}
}

func checksumOK(t *testing.T, seg []byte, l4 int, v6 bool) {
	t.Helper()
	var ps uint32
	l4len := uint32(len(seg) - l4)
	if v6 {
		ps = sum16(seg[14+8:14+40], 0) + l4len + 6
	} else {
		ps = sum16(seg[14+12:14+20], 0) + l4len + 6
		if fold(sum16(seg[14:34], 0)) != 0xffff {
			t.Errorf("bad IPv4 header checksum")
		}
	}
	if fold(sum16(seg[l4:], ps)) != 0xffff {
		t.Errorf("bad TCP checksum")
	}
}

func TestSegmentationSplitsTCPWithValidChecksums(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		ip := "ipv4(src=10.65.0.2, dst=10.65.0.3, id=7)"
		l4 := 34
		if v6 {
			ip = "ipv6(src=fd00:65::2, dst=fd00:65::3)"
			l4 = 54
		}
		pkt, err := vectors.ParsePacket("eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / " + ip + " / tcp(sport=1, dport=2, seq=1000, flags=PA) / payload(len=3000)")
		if err != nil {
			t.Fatal(err)
		}
		var segs [][]byte
		out := make([]byte, 0, 70000)
		if err := segment(pkt, l4, 1400, false, out, func(s []byte) { segs = append(segs, append([]byte(nil), s...)) }); err != nil {
			t.Fatal(err)
		}
		if len(segs) != 3 {
			t.Fatalf("v6=%v: %d segments, want 3", v6, len(segs))
		}
		total := 0
		for i, s := range segs {
			checksumOK(t, s, l4, v6)
			seq := binary.BigEndian.Uint32(s[l4+4:])
			if seq != 1000+uint32(total) {
				t.Errorf("segment %d seq %d, want %d", i, seq, 1000+total)
			}
			psh := s[l4+13]&0x08 != 0
			if psh != (i == len(segs)-1) {
				t.Errorf("segment %d PSH=%v", i, psh)
			}
			total += len(s) - l4 - 20
		}
		if total != 3000 {
			t.Errorf("payload total %d", total)
		}
	}
}

func TestPartialChecksumCompletes(t *testing.T) {
	pkt, _ := vectors.ParsePacket("eth() / ipv4(src=10.0.0.1, dst=10.0.0.2) / tcp(sport=1, dport=2) / payload(len=101)")
	want := binary.BigEndian.Uint16(pkt[34+16:])
	// Make it CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
	l4len := uint32(len(pkt) - 34)
	binary.BigEndian.PutUint16(pkt[34+16:], fold(sum16(pkt[26:34], 0)+l4len+6))
	completeChecksum(pkt, 34, 34+16)
	if got := binary.BigEndian.Uint16(pkt[34+16:]); got != want {
		t.Fatalf("completed checksum %#x, want %#x", got, want)
	}
}

// A NATed CHECKSUM_PARTIAL packet: the pipeline's incremental update (RFC 1624, on the inverted field)
// moves the pseudo-header sum for the new addresses but also adds the port change, which the completion
// counts again; unportPartial takes it out, so the completed checksum equals the checksum of the
// rewritten packet computed from scratch (TCP and UDP).
func TestPartialChecksumAfterAddressAndPortRewrite(t *testing.T) {
	for _, l4 := range []string{"tcp(sport=40000, dport=8000)", "udp(sport=40000, dport=5353)"} {
		orig, _ := vectors.ParsePacket("eth() / ipv4(src=10.65.0.11, dst=10.96.0.10) / " + l4 + " / payload(len=33)")
		want, _ := vectors.ParsePacket("eth() / ipv4(src=10.65.0.11, dst=10.65.1.22) / " +
			strings.NewReplacer("8000", "80", "5353", "53").Replace(l4) + " / payload(len=33)")
		field := 34 + 16
		if strings.HasPrefix(l4, "udp") {
			field = 34 + 6
		}
		wantSum := binary.BigEndian.Uint16(want[field:])
		// CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
		pkt := append([]byte(nil), orig...)
		proto := uint32(pkt[23])
		binary.BigEndian.PutUint16(pkt[field:], fold(sum16(pkt[26:34], 0)+uint32(len(pkt)-34)+proto))
		before, ok := partialPorts(pkt, 34, field)
		if !ok {
			t.Fatalf("%s: not a partial TCP/UDP packet", l4)
		}
		// What processOne and the pipeline do: invert, rewrite the destination address and port with an
		// incremental update of the (inverted) field, invert back.
		invert16(pkt, field)
		update := func(off int, n int) {
			old := append([]byte(nil), pkt[off:off+n]...)
			copy(pkt[off:], want[off:off+n])
			c := uint32(^binary.BigEndian.Uint16(pkt[field:]))
			for i := 0; i < n; i += 2 {
				c += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(pkt[off+i:]))
			}
			binary.BigEndian.PutUint16(pkt[field:], ^fold(c))
		}
		update(30, 4)                 // destination address
		update(36, 2)                 // destination port
		copy(pkt[14:34], want[14:34]) // the IPv4 header checksum is not under test
		invert16(pkt, field)
		after, _ := partialPorts(pkt, 34, field)
		unportPartial(pkt, field, before, after)
		completeChecksum(pkt, 34, field)
		if got := binary.BigEndian.Uint16(pkt[field:]); got != wantSum {
			t.Errorf("%s: completed checksum %#04x, want %#04x", l4, got, wantSum)
		}
	}
}

// A poller that cannot discard its thread (the runtime never ends the main thread) gives it back as it
// found it: name, CPU affinity and scheduling policy.
func TestThreadStateRestoresNameAffinityAndPolicy(t *testing.T) {
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		was := saveThread()
		var one unix.CPUSet
		one.Set(0)
		setThreadName("cp4-poller/9")
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			done <- err
			return
		}
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_BATCH}, 0)
		was.restore(true)
		var now unix.CPUSet
		_ = unix.SchedGetaffinity(0, &now)
		attr, _ := unix.SchedGetAttr(0, 0)
		switch {
		case threadName() != was.name:
			done <- fmt.Errorf("name %q, want %q", threadName(), was.name)
		case now != was.affinity:
			done <- fmt.Errorf("affinity %v, want %v", now, was.affinity)
		case attr == nil || was.attr == nil || attr.Policy != was.attr.Policy:
			done <- fmt.Errorf("policy %+v, want %+v", attr, was.attr)
		default:
			done <- nil
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
