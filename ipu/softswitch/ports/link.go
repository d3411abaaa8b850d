package ports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
)

// Kind is how a port reaches its interface.
type Kind string

const (
	// KindAFPacket opens a packet socket on the interface (veth host ends, NICs).
	KindAFPacket Kind = "afpacket"
	// KindTAP opens (or creates) the TAP device of that name through /dev/net/tun, the P4-DPDK target's
	// port type.
	KindTAP Kind = "tap"
)

// link is an open interface: batched, non-blocking receive and send of Ethernet frames, with
// virtio-net headers when vnet is set. The descriptor is polled by the port's poller (epoll), not by
// the Go netpoller. mu orders sends (read-locked) before close (write-locked), so a descriptor is
// never used after it was closed and its number reused.
type link struct {
	kind Kind
	// fds are the link's descriptors: an AF_PACKET port opened for several pollers has one socket per
	// poller, joined in a PACKET_FANOUT group that hands each frame to the socket of the CPU that
	// received it (fds[i] is poller i's); otherwise there is one.
	fds []int
	// rings are the receive rings of fds (nil entries: receive with recvmmsg).
	rings  []*rxRing
	vnet   bool
	mu     sync.RWMutex
	closed bool
	// refs counts the pollers that still poll (or are about to poll) one of fds; the last one to let
	// go closes the link.
	refs atomic.Int32
}

type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openAFPacket opens packet sockets bound to interface name in the current namespace, with
// PACKET_VNET_HDR (GSO / checksum offload metadata), PACKET_IGNORE_OUTGOING (our own sends are not
// received back), PACKET_QDISC_BYPASS and promiscuous membership. With more than one CPU in cpus it
// opens one socket per CPU in a PACKET_FANOUT group whose program hands a frame to the socket of the
// CPU that received it — the CPU of the pod that sent it, since veth delivers on the sender's CPU — so
// that poller i (pinned to cpus[i]) forwards it there, as the kernel would forward it in that CPU's
// softirq. If the kernel cannot (PACKET_FANOUT_FLAG_IGNORE_OUTGOING is Linux 6.2), it falls back to
// one socket.
//
// With ringFrames > 0 each socket receives through a TPACKET_V2 ring of about that many slots (rxRing).
func openAFPacket(name string, cpus []int, ringFrames int) (*link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, errNotPresent(err))
	}
	first, ring, err := packetSocket(name, ifi.Index, false, ringFrames)
	if err != nil {
		return nil, err
	}
	l := newLink(KindAFPacket, []int{first}, true)
	l.rings = []*rxRing{ring}
	mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	_ = unix.SetsockoptPacketMreq(first, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr)
	if len(cpus) > 1 {
		if err := joinFanout(l, name, ifi.Index, cpus, ringFrames); err != nil && !errors.Is(err, errNoFanout) {
			_ = l.close()
			return nil, err
		}
	}
	return l, nil
}

// packetSocket opens one AF_PACKET socket on ifindex, with a receive ring if ringFrames > 0. quiet
// attaches a drop-all filter before bind, so that a socket about to join a fanout group does not
// receive copies of frames meanwhile.
func packetSocket(name string, ifindex int, quiet bool, ringFrames int) (fd int, ring *rxRing, err error) {
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, nil, fmt.Errorf("packet socket: %w", err)
	}
	fail := func(what string, err error) (int, *rxRing, error) {
		ring.unmap()
		unix.Close(fd)
		return -1, nil, fmt.Errorf("%s on %s: %w", what, name, err)
	}
	if quiet {
		drop := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
			return fail("SO_ATTACH_FILTER", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	if ringFrames > 0 {
		if ring, err = setupRing(fd, ringFrames); err != nil {
			return fail("receive ring", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	return fd, ring, nil
}

var errNoFanout = errors.New("PACKET_FANOUT with PACKET_FANOUT_FLAG_IGNORE_OUTGOING not supported")

// joinFanout makes l's socket the first member of a new fanout group (a kernel-chosen id, so several
// softswitches in one namespace do not meet) steered by CPU, and opens and joins one more socket per
// further CPU, added to l. A frame received on a CPU not in cpus goes to member cpu % len(cpus).
func joinFanout(l *link, name string, ifindex int, cpus []int, ringFrames int) error {
	if !kernelAtLeast(6, 2) {
		// Older kernels accept PACKET_FANOUT_FLAG_IGNORE_OUTGOING without honouring it: the group
		// would receive our own transmissions back.
		return errNoFanout
	}
	first := l.fds[0]
	const flags = unix.PACKET_FANOUT_CBPF | unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING | unix.PACKET_FANOUT_FLAG_ROLLOVER
	if err := unix.SetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT, (flags|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
		if err == unix.EINVAL {
			return errNoFanout
		}
		return fmt.Errorf("PACKET_FANOUT on %s: %w", name, err)
	}
	id, err := unix.GetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return fmt.Errorf("PACKET_FANOUT id on %s: %w", name, err)
	}
	prog := cpuSteering(cpus)
	if err := unix.SetsockoptSockFprog(first, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fmt.Errorf("PACKET_FANOUT_DATA on %s: %w", name, err)
	}
	for range cpus[1:] {
		fd, ring, err := packetSocket(name, ifindex, true, ringFrames)
		if err != nil {
			return err
		}
		l.fds, l.rings = append(l.fds, fd), append(l.rings, ring)
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, id&0xffff|flags<<16); err != nil {
			return fmt.Errorf("joining PACKET_FANOUT group on %s: %w", name, err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil {
			return fmt.Errorf("SO_DETACH_FILTER on %s: %w", name, err)
		}
	}
	return nil
}

// cpuSteering is the fanout program: the index in cpus of the CPU running it (members joined in that
// order), else the CPU number (the kernel takes it modulo the member count).
func cpuSteering(cpus []int) []unix.SockFilter {
	const skfAdCPU = 0xfffff000 + 36 // SKF_AD_OFF + SKF_AD_CPU
	prog := []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAdCPU}}
	for i, c := range cpus {
		prog = append(prog,
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(c)},
			unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(i)})
	}
	return append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_A})
}

// openTAP opens (creating it if needed) TAP device name with virtio-net headers and TSO / checksum
// offload enabled, so the kernel hands over and accepts GSO super-packets.
func openTAP(name string) (*link, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	sz := vnetLen
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TUNSETVNETHDRSZ), uintptr(unsafe.Pointer(&sz))); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETVNETHDRSZ %s: %w", name, errno)
	}
	const offloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETOFFLOAD %s: %w", name, err)
	}
	return newLink(KindTAP, []int{fd}, true), nil
}

// tapFromFile takes over an already open TAP descriptor (IFF_TAP|IFF_NO_PI, no virtio-net header), as
// the e2e topology and CNI-style callers hand it over. The descriptor is duplicated; the caller keeps
// its own.
func tapFromFile(name string, f *os.File) (*link, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("tap %s: dup: %w", name, err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: non-blocking: %w", name, err)
	}
	return newLink(KindTAP, []int{fd}, false), nil
}

func newLink(kind Kind, fds []int, vnet bool) *link {
	return &link{kind: kind, fds: fds, vnet: vnet}
}

// drops returns the frames the kernel dropped on l's sockets since the last call (PACKET_STATISTICS
// reads and resets them).
func (l *link) drops() uint64 {
	if l.kind != KindAFPacket {
		return 0
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0
	}
	var n uint64
	for _, fd := range l.fds {
		if st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			n += uint64(st.Drops)
		}
	}
	return n
}

// fd is the descriptor poller i uses (receive and send).
func (l *link) fd(i int) int {
	if i < len(l.fds) {
		return l.fds[i]
	}
	return l.fds[0]
}

// ring is the receive ring of poller i's descriptor, or nil.
func (l *link) ring(i int) *rxRing {
	if i < len(l.rings) {
		return l.rings[i]
	}
	if len(l.fds) == 1 && len(l.rings) == 1 {
		return l.rings[0]
	}
	return nil
}

func (l *link) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, r := range l.rings {
		r.unmap()
	}
	var err error
	for _, fd := range l.fds {
		if e := unix.Close(fd); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// hdrLen is the length of the per-packet prefix (virtio-net header) in front of each frame.
func (l *link) hdrLen() int {
	if l.vnet {
		return vnetLen
	}
	return 0
}

// rxBatch is a set of receive buffers: frame i is bufs[i][pipeline.Headroom:][:lens[i]], its
// virtio-net header (if any) just in front.
type rxBatch struct {
	bufs [][]byte
	lens []int
	iov  []unix.Iovec
	msgs []mmsghdr
}

func newRxBatch(n int) *rxBatch {
	b := &rxBatch{bufs: make([][]byte, n), lens: make([]int, n), iov: make([]unix.Iovec, n), msgs: make([]mmsghdr, n)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, pipeline.BufferSize)
	}
	return b
}

// recv reads up to a batch of frames from descriptor fd (one of l.fds) without blocking; 0 frames
// means none is waiting. Only the poller owning fd calls it.
func (l *link) recv(fd int, b *rxBatch) (int, error) {
	h := l.hdrLen()
	if l.kind == KindTAP {
		n := 0
		for n < len(b.bufs) {
			m, err := unix.Read(fd, b.bufs[n][pipeline.Headroom-h:pipeline.Headroom+pipeline.MaxPacket])
			if err != nil {
				if err == unix.EAGAIN {
					break
				}
				if err == unix.EINTR {
					continue
				}
				return n, err
			}
			b.lens[n] = m - h
			n++
		}
		return n, nil
	}
	for i := range b.msgs {
		buf := b.bufs[i][pipeline.Headroom-h : pipeline.Headroom+pipeline.MaxPacket]
		b.iov[i].Base = &buf[0]
		b.iov[i].SetLen(len(buf))
		b.msgs[i].hdr = unix.Msghdr{Iov: &b.iov[i], Iovlen: 1}
	}
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, errno
		}
		n := int(r)
		for i := 0; i < n; i++ {
			b.lens[i] = int(b.msgs[i].len) - h
		}
		return n, nil
	}
}

// txBatch collects frames for one link: frame i is data[i] with its virtio-net header written in the
// vnetLen bytes in front of it (the caller guarantees the room).
type txBatch struct {
	data [][]byte
	iov  []unix.Iovec
	msgs []mmsghdr
}

func (t *txBatch) add(frame []byte) { t.data = append(t.data, frame) }

// sendRetries bounds the retries of a send that finds the socket's buffer full.
const sendRetries = 64

// send writes the batch through poller i's descriptor; it returns the number of frames not sent.
func (l *link) send(i int, t *txBatch) (int, error) {
	if len(t.data) == 0 {
		return 0, nil
	}
	defer func() { t.data = t.data[:0] }()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return len(t.data), errors.New("port closed")
	}
	h := l.hdrLen()
	fd := l.fd(i)
	if l.kind == KindTAP {
		failed := 0
		var lastErr error
		for _, d := range t.data {
			p := withPrefix(d, h)
			for try := 0; ; try++ {
				_, err := unix.Write(fd, p)
				if err == nil {
					break
				}
				if (err == unix.EAGAIN || err == unix.EINTR) && try < sendRetries {
					runtime.Gosched()
					continue
				}
				failed++
				lastErr = err
				break
			}
		}
		return failed, lastErr
	}
	if len(t.data) == 1 {
		// One frame (request/response traffic): sendto, without sendmmsg's per-message header import.
		p := withPrefix(t.data[0], h)
		for try := 0; ; {
			_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT, 0, 0)
			switch {
			case errno == 0:
				return 0, nil
			case errno == unix.EINTR:
			case (errno == unix.EAGAIN || errno == unix.ENOBUFS) && try < sendRetries:
				try++
				runtime.Gosched()
			default:
				return 1, errno
			}
		}
	}
	if cap(t.iov) < len(t.data) {
		t.iov = make([]unix.Iovec, len(t.data))
		t.msgs = make([]mmsghdr, len(t.data))
	}
	t.iov, t.msgs = t.iov[:len(t.data)], t.msgs[:len(t.data)]
	for i, d := range t.data {
		p := withPrefix(d, h)
		t.iov[i].Base = &p[0]
		t.iov[i].SetLen(len(p))
		t.msgs[i] = mmsghdr{hdr: unix.Msghdr{Iov: &t.iov[i], Iovlen: 1}}
	}
	sent, failed := 0, 0
	var opErr error
	for try := 0; sent < len(t.msgs); {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&t.msgs[sent])), uintptr(len(t.msgs)-sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == 0:
			sent += int(r)
		case errno == unix.EINTR:
		case (errno == unix.EAGAIN || errno == unix.ENOBUFS) && try < sendRetries:
			try++
			runtime.Gosched()
		default:
			// Skip the frame that failed (e.g. EMSGSIZE, or the buffer stayed full) and go on.
			opErr = errno
			sent++
			failed++
		}
	}
	return failed, opErr
}

// withPrefix returns d extended backwards by h bytes (the virtio-net header written there).
func withPrefix(d []byte, h int) []byte {
	if h == 0 {
		return d
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(d)), -h)), len(d)+h)
}

// errNotPresent marks "no such interface" so that attach waits for the interface to appear.
type notPresentError struct{ err error }

func (e *notPresentError) Error() string { return e.err.Error() }
func (e *notPresentError) Unwrap() error { return e.err }

func errNotPresent(err error) error { return &notPresentError{err: err} }

// IsNotPresent reports whether err means the interface does not exist (yet).
func IsNotPresent(err error) bool {
	var np *notPresentError
	return errors.As(err, &np)
}

// kernelAtLeast reports whether the running kernel's release is at least major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
