package ports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
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
	kind   Kind
	fd     int
	vnet   bool
	mu     sync.RWMutex
	closed bool
}

type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openAFPacket opens a packet socket bound to interface name in the current namespace, with
// PACKET_VNET_HDR (GSO / checksum offload metadata), PACKET_IGNORE_OUTGOING (our own sends are not
// received back), PACKET_QDISC_BYPASS and promiscuous membership.
func openAFPacket(name string) (*link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, errNotPresent(err))
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	fail := func(what string, err error) (*link, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s on %s: %w", what, name, err)
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
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	_ = unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr)
	return newLink(KindAFPacket, fd, "afpacket:"+name, true)
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
	return newLink(KindTAP, fd, "tap:"+name, true)
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
	return newLink(KindTAP, fd, "tap:"+name, false)
}

func newLink(kind Kind, fd int, _ string, vnet bool) (*link, error) {
	return &link{kind: kind, fd: fd, vnet: vnet}, nil
}

func (l *link) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return unix.Close(l.fd)
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

// recv reads up to a batch of frames without blocking; 0 frames means none is waiting. Only the
// port's poller calls it.
func (l *link) recv(b *rxBatch) (int, error) {
	h := l.hdrLen()
	if l.kind == KindTAP {
		n := 0
		for n < len(b.bufs) {
			m, err := unix.Read(l.fd, b.bufs[n][pipeline.Headroom-h:pipeline.Headroom+pipeline.MaxPacket])
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
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
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

// send writes the batch; it returns the number of frames not sent.
func (l *link) send(t *txBatch) (int, error) {
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
	if l.kind == KindTAP {
		failed := 0
		var lastErr error
		for _, d := range t.data {
			p := withPrefix(d, h)
			for try := 0; ; try++ {
				_, err := unix.Write(l.fd, p)
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
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&t.msgs[sent])), uintptr(len(t.msgs)-sent), unix.MSG_DONTWAIT, 0, 0)
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
