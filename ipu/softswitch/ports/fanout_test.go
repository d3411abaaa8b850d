package ports_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

func suffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// fanoutNode is a dataplane with one poller pinned to each of two CPUs and a veth end attached in a
// fresh namespace; frames are sent from the other end (peer). No pipeline config: every frame is
// counted on receive, then dropped.
func fanoutNode(t *testing.T, cfg ports.Config) (d *ports.Dataplane, h netns.NsHandle, peer string, cpus []int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, packet sockets)")
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 1024 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		t.Skip("needs two CPUs")
	}
	sfx := suffix(t)
	nsName, attached := "cp4fan-"+sfx, "cp4fa"+sfx
	peer = "cp4fb" + sfx
	h, err := netnsutil.CreateNamed(nsName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); _ = netnsutil.DeleteNamed(nsName) })
	for _, k := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
		if err := netnsutil.SetSysctl(h, k, "1"); err != nil { // no router solicitations or MLD
			t.Fatal(err)
		}
	}
	if err := netnsutil.Do(h, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: attached}, PeerName: peer}); err != nil {
			return err
		}
		for _, n := range []string{attached, peer} {
			l, err := netlink.LinkByName(n)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pl, err := pipeline.New(pipeline.Options{Store: tables.NewStore(tables.Options{Workers: 2})})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipeline, cfg.PollerCPUs, cfg.Spin = pl, cpus, -1
	d, err = ports.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if _, err := d.Attach(context.Background(), ports.Spec{Name: attached, NetNS: netnsutil.Path(nsName)}); err != nil {
		t.Fatal(err)
	}
	if ps := d.Ports(); len(ps) != 1 || ps[0].State != ports.StateUp {
		t.Fatalf("port not up: %+v", ps)
	}
	for i, pi := range d.Pollers() {
		if pi.CPU != cpus[i] {
			t.Fatalf("poller %d on CPU %d, want %d", i, pi.CPU, cpus[i])
		}
	}
	return d, h, peer, cpus
}

// waitCounted waits (hang guard only) until received + dropped frames reach want.
func waitCounted(d *ports.Dataplane, want uint64) (received, dropped uint64) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		received, dropped = 0, 0
		for _, p := range d.Ports() {
			received += p.RxPackets
			dropped += p.RxDropped
		}
		if received+dropped >= want || time.Now().After(deadline) {
			return received, dropped
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Frames a pod sends are received by the softswitch on the CPU the pod sent them from; with one
// poller per CPU each frame must reach that CPU's poller, exactly once (no copies while the fanout
// group is assembled, none lost).
func TestFanoutHandsEachFrameOnceToThePollerOfTheSendingCPU(t *testing.T) {
	d, h, peer, cpus := fanoutNode(t, ports.Config{})
	const bursts, burst = 25, 8 // small bursts: no ring fills up, so no frame rolls over
	var want uint64
	for _, cpu := range cpus {
		for i := 0; i < bursts; i++ {
			if err := sendFrom(h, cpu, peer, burst); err != nil {
				t.Fatal(err)
			}
			want += burst
			if got, dropped := waitCounted(d, want); got != want || dropped != 0 {
				t.Fatalf("after %d frames: %d received, %d dropped", want, got, dropped)
			}
		}
	}
	for i, pi := range d.Pollers() {
		if pi.Packets != bursts*burst {
			t.Errorf("poller %d (CPU %d) received %d frames, want the %d sent from its CPU", i, pi.CPU, pi.Packets, bursts*burst)
		}
	}
}

// A burst larger than a receive ring is not lost silently: what the rings (and the other CPU's
// poller, by rollover) cannot take is counted as dropped.
func TestBurstsAreReceivedOrCountedAsDropped(t *testing.T) {
	d, h, peer, cpus := fanoutNode(t, ports.Config{})
	const n = 2000
	if err := sendFrom(h, cpus[0], peer, n); err != nil {
		t.Fatal(err)
	}
	got, dropped := waitCounted(d, n)
	if got+dropped != n {
		t.Fatalf("%d frames sent, %d received + %d dropped", n, got, dropped)
	}
	t.Logf("%d received, %d dropped", got, dropped)
}

// With --poller-priority the pollers run SCHED_FIFO, so that a woken poller preempts the sender as softirq
// processing would. The policy is checked on the threads themselves; the burst that follows is not required
// to arrive whole (on a loaded machine the kernel may still throttle or delay a real-time thread), only
// to be received or counted as dropped — how much got through is logged.
func TestRealTimePollersRunSCHEDFIFOAndAccountForABurst(t *testing.T) {
	if err := canRunFIFO(); err != nil {
		t.Skipf("this machine refuses SCHED_FIFO threads (%v): nothing to check", err)
	}
	d, h, peer, cpus := fanoutNode(t, ports.Config{RingFrames: 32, PollerPriority: 1})
	// The pollers of a dataplane an earlier test closed may still be on their way out (a locked goroutine's
	// thread is discarded after the goroutine ends): wait for them to go.
	policies := pollerPolicies(t)
	for deadline := time.Now().Add(10 * time.Second); len(policies) != len(cpus) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		policies = pollerPolicies(t)
	}
	if len(policies) != len(cpus) {
		t.Fatalf("found %d poller threads (%v), want %d", len(policies), policies, len(cpus))
	}
	for name, policy := range policies {
		if policy != unix.SCHED_FIFO {
			t.Errorf("thread %s runs policy %d, want SCHED_FIFO (%d)", name, policy, unix.SCHED_FIFO)
		}
	}
	const n = 2000
	if err := sendFrom(h, cpus[1], peer, n); err != nil {
		t.Fatal(err)
	}
	got, dropped := waitCounted(d, n)
	if got+dropped != n {
		t.Fatalf("%d frames sent, %d received + %d dropped", n, got, dropped)
	}
	t.Logf("burst of %d from CPU %d: %d received (%d by its poller), %d dropped", n, cpus[1], got, d.Pollers()[1].Packets, dropped)
}

// canRunFIFO reports whether a thread of this process may switch to SCHED_FIFO (root in a container may
// lack CAP_SYS_NICE or a real-time budget).
func canRunFIFO() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded with its policy
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
		errc <- unix.SchedSetAttr(0, &attr, 0)
	}()
	return <-errc
}

// pollerPolicies maps this process's poller threads (named cp4-poller/N) to their scheduling policy,
// read from /proc/self/task/*/stat (field 41).
func pollerPolicies(t *testing.T) map[string]int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, task := range tasks {
		stat, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		open, closing := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if open < 0 || closing < open {
			t.Fatalf("unexpected stat line %q", stat)
		}
		name := string(stat[open+1 : closing])
		if !strings.HasPrefix(name, "cp4-poller/") {
			continue
		}
		fields := strings.Fields(string(stat[closing+1:])) // from field 3 (state) on
		if len(fields) < 39 {
			t.Fatalf("stat of %s has %d fields", name, len(fields)+2)
		}
		policy, err := strconv.Atoi(fields[41-3])
		if err != nil {
			t.Fatalf("policy of %s: %v", name, err)
		}
		out[name+" (tid "+task.Name()+")"] = policy
	}
	return out
}

func received(d *ports.Dataplane) uint64 {
	var n uint64
	for _, p := range d.Ports() {
		n += p.RxPackets
	}
	return n
}

// sendFrom sends n frames out of interface name in namespace h from a thread pinned to cpu.
func sendFrom(h netns.NsHandle, cpu int, name string, n int) error {
	return netnsutil.Do(h, func() error { // the thread is never unlocked: it is discarded, pinned
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: send only
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		const etherType = 0x88b5 // local experimental
		frame := make([]byte, 60)
		copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, etherType >> 8, etherType & 0xff})
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: etherType<<8&0xff00 | etherType>>8, Halen: 6,
			Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		for i := 0; i < n; i++ {
			if err := unix.Sendto(fd, frame, 0, to); err != nil {
				return fmt.Errorf("frame %d from CPU %d: %w", i, cpu, err)
			}
		}
		return nil
	})
}
