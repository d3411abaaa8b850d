package ports

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

func ptr(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }

// RingRound drives one poller's receive rounds over a receive ring that the test fills in memory the
// way the kernel's tpacket_rcv does, for port in; frames the pipeline forwards to port out are sent
// on outFD (with virtio-net headers), and frames larger than a slot are read from copyFD (the socket
// queue of TP_STATUS_COPY).
type RingRound struct {
	pl    *poller
	a     *attached
	tx    *txState
	ring  *rxRing
	khead int
}

// NewRingRound registers ports in and out on d (which must have no ports attached) over the given
// descriptors.
func NewRingRound(d *Dataplane, in, out string, outFD, copyFD, slots int) *RingRound {
	ring := &rxRing{mem: make([]byte, slots*ringSlotSize), n: slots}
	pin := &port{spec: Spec{Name: in, Kind: KindAFPacket}, id: IDForName(in), state: StateUp}
	pin.link = &link{kind: KindAFPacket, fds: []int{copyFD}, rings: []*rxRing{ring}, vnet: true}
	pout := &port{spec: Spec{Name: out, Kind: KindAFPacket}, id: IDForName(out), state: StateUp}
	pout.link = &link{kind: KindAFPacket, fds: []int{outFD}, vnet: true}
	d.mu.Lock()
	d.ports[in], d.ports[out] = pin, pout
	d.publish()
	d.mu.Unlock()
	pl := &poller{d: d, cpu: -1, rx: newRxBatch(d.cfg.Batch)}
	return &RingRound{pl: pl, a: &attached{p: pin, l: pin.link, fd: copyFD, ring: ring}, tx: newTxState(0), ring: ring}
}

// Put writes frame into the next free slot as the kernel would (status TP_STATUS_USER; a frame too
// large for a slot is cut and marked TP_STATUS_COPY, its whole copy being the caller's to queue on
// copyFD). It reports false when the ring is full.
func (r *RingRound) Put(frame []byte) bool {
	off := r.khead * ringSlotSize
	s := r.ring.mem[off : off+ringSlotSize]
	st := (*uint32)(ptr(&s[0]))
	if atomic.LoadUint32(st) != tpStatusKernel {
		return false
	}
	const mac = 316 // TPACKET_ALIGN(52 + 16) + ringReserve + vnetLen - 14
	snap := min(len(frame), ringSlotSize-mac)
	status := uint32(tpStatusUser)
	if snap < len(frame) {
		status |= tpStatusCopy
	}
	binary.LittleEndian.PutUint32(s[4:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(s[8:], uint32(snap))
	binary.LittleEndian.PutUint16(s[12:], mac)
	binary.LittleEndian.PutUint16(s[14:], mac+14)
	clear(s[mac-vnetLen : mac])
	copy(s[mac:], frame[:snap])
	atomic.StoreUint32(st, status)
	if r.khead++; r.khead == r.ring.n {
		r.khead = 0
	}
	return true
}

// Round runs one drain of the port, as the poller does when epoll reports it readable.
func (r *RingRound) Round() bool { return r.pl.drainRing(r.a, r.tx) }

// Held counts the slots not handed back to the kernel.
func (r *RingRound) Held() int {
	n := 0
	for i := 0; i < r.ring.n; i++ {
		if atomic.LoadUint32(r.ring.status(i)) != tpStatusKernel {
			n++
		}
	}
	return n
}

// Received counts the frames the round's poller received.
func (r *RingRound) Received() uint64 { return r.pl.packets.Load() }

// VnetLen is the virtio-net header's length.
const VnetLen = vnetLen
