package ports_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded/podnet"
	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/vectors"
)

type noIDs struct{}

func (noIDs) MemberID(string, string) (uint32, bool) { return 0, false }
func (noIDs) GroupID(string, string) (uint32, bool)  { return 0, false }

var (
	macA = net.HardwareAddr{0x0a, 0x58, 0x0a, 0x41, 0x00, 0x02}
	macB = net.HardwareAddr{0x0a, 0x58, 0x0a, 0x41, 0x00, 0x03}
)

// ringNode is a dataplane for two pods (host ends "cp4ra" and "cp4rb") configured as podnet does,
// with a ring round feeding port cp4ra; what is forwarded to cp4rb arrives on out, and frames
// larger than a slot are queued on copyIn.
func ringNode(t *testing.T, slots int) (r *ports.RingRound, out, copyIn int) {
	t.Helper()
	st := tables.NewStore(tables.Options{Workers: 2})
	info := p4src.MustP4Info()
	if err := st.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		t.Fatal(err)
	}
	in, err := p4rt.NewInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	var ups []*p4v1.Update
	for _, e := range podnet.Entries([]podnet.Pod{
		{HostIface: "cp4ra", MAC: macA, IPv4: netip.MustParseAddr("10.65.0.2"), IPv6: netip.MustParseAddr("fd00:65::2"), Endpoint: 101},
		{HostIface: "cp4rb", MAC: macB, IPv4: netip.MustParseAddr("10.65.0.3"), IPv6: netip.MustParseAddr("fd00:65::3"), Endpoint: 102},
	}) {
		ent, err := in.Encode(e, noIDs{})
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent})
	}
	if errs, err := st.Write(ups, p4v1.WriteRequest_CONTINUE_ON_ERROR); err != nil {
		t.Fatal(err)
	} else {
		for i, e := range errs {
			if e != nil {
				t.Fatalf("update %d: %v", i, e)
			}
		}
	}
	pl, err := pipeline.New(pipeline.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ports.New(ports.Config{Pipeline: pl, Pollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	outPair := socketpair(t)
	copyPair := socketpair(t)
	return ports.NewRingRound(d, "cp4ra", "cp4rb", outPair[0], copyPair[0], slots), outPair[1], copyPair[1]
}

func socketpair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	_ = unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds
}

func frame(t *testing.T, desc string) []byte {
	t.Helper()
	b, err := vectors.ParsePacket(desc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	syn = "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(sport=40000, dport=80, flags=S)"
	ack = "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(sport=40000, dport=80, flags=A) / payload(len=1)"
)

// recvFrame reads one forwarded frame (virtio-net header stripped), or nil if none is waiting.
func recvFrame(fd int, buf []byte) []byte {
	n, err := unix.Read(fd, buf)
	if err != nil || n < ports.VnetLen {
		return nil
	}
	return buf[ports.VnetLen:n]
}

func TestRingFramesAreForwardedInPlaceAndTheirSlotsHandedBack(t *testing.T) {
	r, out, _ := ringNode(t, 8)
	buf := make([]byte, 1<<17)
	// More frames than slots, in several fills: slots must come back to be reused.
	for i := 0; i < 20; i++ {
		desc := ack
		if i == 0 {
			desc = syn
		}
		if !r.Put(frame(t, desc)) {
			t.Fatalf("frame %d: ring full (slots not handed back)", i)
		}
		if !r.Round() {
			t.Fatalf("frame %d: round found nothing", i)
		}
		got := recvFrame(out, buf)
		if got == nil {
			t.Fatalf("frame %d not forwarded to the other pod", i)
		}
		if !bytes.Equal(got[:6], macB) || !bytes.Equal(got[6:12], []byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}) {
			t.Fatalf("frame %d: ethernet %x -> %x, want gateway -> pod B", i, got[6:12], got[:6])
		}
		if h := r.Held(); h != 0 {
			t.Fatalf("frame %d: %d slots still held after the round", i, h)
		}
	}
	if r.Round() {
		t.Fatal("an empty ring reported traffic")
	}
	if got := r.Received(); got != 20 {
		t.Fatalf("poller counted %d frames, want 20", got)
	}
}

func TestRingBatchesUpToTheSlotCount(t *testing.T) {
	r, out, _ := ringNode(t, 8)
	buf := make([]byte, 1<<17)
	r.Put(frame(t, syn))
	r.Round()
	recvFrame(out, buf)
	n := 0
	for r.Put(frame(t, ack)) {
		n++
	}
	if n != 8 {
		t.Fatalf("filled %d slots, want 8", n)
	}
	r.Round()
	for i := 0; i < n; i++ {
		if recvFrame(out, buf) == nil {
			t.Fatalf("only %d of %d batched frames forwarded", i, n)
		}
	}
	if h := r.Held(); h != 0 {
		t.Fatalf("%d slots held", h)
	}
}

func TestFramesLargerThanASlotAreReadFromTheSocketQueue(t *testing.T) {
	r, out, copyIn := ringNode(t, 8)
	buf := make([]byte, 1<<17)
	r.Put(frame(t, syn))
	r.Round()
	recvFrame(out, buf)
	big := frame(t, "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(sport=40000, dport=80, flags=A) / payload(len=6000)")
	// The kernel queues the whole frame (with its virtio-net header) and cuts the slot's copy.
	if _, err := unix.Write(copyIn, append(make([]byte, ports.VnetLen), big...)); err != nil {
		t.Fatal(err)
	}
	r.Put(big)
	r.Put(frame(t, ack)) // the next frame stays in order behind it
	r.Round()
	got := recvFrame(out, buf)
	if len(got) != len(big) {
		t.Fatalf("large frame forwarded with %d bytes, want %d", len(got), len(big))
	}
	if !bytes.Equal(got[54:], big[54:]) { // after the IPv4 and TCP headers (TTL, checksums change)
		t.Fatal("large frame's payload changed")
	}
	if next := recvFrame(out, buf); next == nil || len(next) >= len(big) {
		t.Fatalf("frame after the large one: %d bytes", len(next))
	}
	if h := r.Held(); h != 0 {
		t.Fatalf("%d slots held", h)
	}
}

func TestRingRoundOfAnEstablishedFlowDoesNotAllocate(t *testing.T) {
	r, out, _ := ringNode(t, 8)
	buf := make([]byte, 1<<17)
	r.Put(frame(t, syn))
	r.Round()
	if recvFrame(out, buf) == nil {
		t.Fatal("syn not forwarded")
	}
	a := frame(t, ack)
	forwarded := 0
	allocs := testing.AllocsPerRun(200, func() {
		r.Put(a)
		r.Round()
		if recvFrame(out, buf) != nil {
			forwarded++
		}
	})
	if forwarded != 201 {
		t.Fatalf("forwarded %d of 201", forwarded)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per frame (receive ring, pipeline, transmit)", allocs)
	}
}

func TestPollerCPUsMustBeDistinct(t *testing.T) {
	pl, err := pipeline.New(pipeline.Options{Store: tables.NewStore(tables.Options{Workers: 1})})
	if err != nil {
		t.Fatal(err)
	}
	for _, cpus := range [][]int{{0, 0}, {-1}} {
		if d, err := ports.New(ports.Config{Pipeline: pl, PollerCPUs: cpus}); err == nil {
			_ = d.Close()
			t.Errorf("poller CPUs %v accepted", cpus)
		}
	}
}
