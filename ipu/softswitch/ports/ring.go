package ports

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
)

// rxRing is a PACKET_MMAP TPACKET_V2 receive ring: the kernel copies each frame into the next free
// slot in softirq and flips its status to TP_STATUS_USER; the poller reads slots in order without a
// system call, runs the pipeline on the frame where it lies (the slot's layout leaves the pipeline's
// headroom in front of it), and hands the slot back (TP_STATUS_KERNEL) once the batch is sent.
// TPACKET_V2 retires every frame on its own — unlike TPACKET_V3's blocks there is no retire timer, so
// a lone request is visible at once. Frames larger than a slot (GSO super-packets, jumbo frames) are
// queued to the socket as well (PACKET_COPY_THRESH) and their slot is marked TP_STATUS_COPY: the
// poller reads those with a system call, in the same order.
type rxRing struct {
	mem  []byte
	n    int // slots
	head int // next slot to read
}

const (
	ringSlotSize = 2048
	ringBlock    = 1 << 16
	// ringReserve (PACKET_RESERVE) puts the MAC header of a frame at slot offset
	// TPACKET_ALIGN(tpacket2 header + sockaddr_ll + 16) + ringReserve + vnetLen - 14 = 316, so that the
	// pipeline's Headroom in front of it (and the virtio-net header just before the frame) stays clear
	// of the slot's tpacket2_hdr and sockaddr_ll (52 bytes) that the kernel and we use for handover.
	ringReserve = 240
	// ringHdrEnd is the end of tpacket2_hdr + sockaddr_ll in a slot.
	ringHdrEnd = 32 + 20

	tpStatusKernel = 0
	tpStatusUser   = unix.TP_STATUS_USER
	tpStatusCopy   = unix.TP_STATUS_COPY
)

// setupRing configures fd (a packet socket with PACKET_VNET_HDR set, not yet bound) for a TPACKET_V2
// receive ring of about frames slots and maps it.
func setupRing(fd, frames int) (*rxRing, error) {
	perBlock := ringBlock / ringSlotSize
	blocks := max(1, (frames+perBlock-1)/perBlock)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("PACKET_VERSION: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_RESERVE, ringReserve); err != nil {
		return nil, fmt.Errorf("PACKET_RESERVE: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
		return nil, fmt.Errorf("PACKET_COPY_THRESH: %w", err)
	}
	req := unix.TpacketReq{Block_size: ringBlock, Block_nr: uint32(blocks), Frame_size: ringSlotSize, Frame_nr: uint32(blocks * perBlock)}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, blocks*ringBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap of the receive ring: %w", err)
	}
	return &rxRing{mem: mem, n: blocks * perBlock}, nil
}

func (r *rxRing) unmap() {
	if r != nil && r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

func (r *rxRing) status(slot int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[slot*ringSlotSize]))
}

// ready reports whether the slot at head holds a frame for us.
func (r *rxRing) ready() bool {
	return atomic.LoadUint32(r.status(r.head))&tpStatusUser != 0
}

// frame describes the slot at head (ready() must be true): the pipeline buffer over the slot (frame
// at buf[pipeline.Headroom:][:n], its virtio-net header in front), its status, and whether the frame
// is whole and laid out as expected (else the caller copies it, or reads the queued copy for
// TP_STATUS_COPY).
func (r *rxRing) frame() (buf []byte, n int, status uint32, inPlace bool) {
	off := r.head * ringSlotSize
	s := r.mem[off : off+ringSlotSize]
	status = atomic.LoadUint32(r.status(r.head))
	snap := int(*(*uint32)(unsafe.Pointer(&s[8])))
	full := int(*(*uint32)(unsafe.Pointer(&s[4])))
	mac := int(*(*uint16)(unsafe.Pointer(&s[12])))
	if mac < ringHdrEnd+pipeline.Headroom || mac+snap > len(s) {
		return s, 0, status, false
	}
	return s[mac-pipeline.Headroom:], snap, status, snap == full && status&tpStatusCopy == 0
}

// raw returns the frame bytes of the slot at head as the kernel wrote them, virtio-net header
// included in front (for copying a frame whose layout is not the expected one).
func (r *rxRing) raw() []byte {
	off := r.head * ringSlotSize
	s := r.mem[off : off+ringSlotSize]
	snap := int(*(*uint32)(unsafe.Pointer(&s[8])))
	mac := int(*(*uint16)(unsafe.Pointer(&s[12])))
	if mac < vnetLen || mac+snap > len(s) {
		return nil
	}
	return s[mac-vnetLen : mac+snap]
}

// next moves head on (the slot stays ours until release).
func (r *rxRing) next() int {
	slot := r.head
	r.head++
	if r.head == r.n {
		r.head = 0
	}
	return slot
}

// release hands a slot back to the kernel.
func (r *rxRing) release(slot int) {
	atomic.StoreUint32(r.status(slot), tpStatusKernel)
}
