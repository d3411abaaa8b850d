package ports

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
)

// poller receives from a set of ports with epoll on its own locked thread, pinned to its CPU when it
// has one (cpu >= 0). After traffic it keeps polling without blocking for Spin (busy-poll, as DPDK
// and AF_XDP targets do), so that a frame arriving within that window is forwarded without a wakeup;
// then it blocks in epoll_wait.
type poller struct {
	d    *Dataplane
	idx  int // which of a link's descriptors is this poller's (link.fd)
	cpu  int // pinned CPU, or -1
	ep   int
	wake int // eventfd: commands waiting, or stop

	mu    sync.Mutex
	cmds  []func()
	ports map[int]*attached // by fd

	// rx holds the frames of one receive round (any port: a round is sent before the next starts).
	rx *rxBatch

	packets atomic.Uint64
}

type attached struct {
	p    *port
	l    *link
	fd   int
	ring *rxRing // nil: recvmmsg
	gen  int
}

func newPoller(d *Dataplane, idx, cpu int) (*poller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, err
	}
	return &poller{d: d, idx: idx, cpu: cpu, ep: ep, wake: wake, ports: map[int]*attached{}, rx: newRxBatch(d.cfg.Batch)}, nil
}

// do runs f on the poller's thread (between receive rounds).
func (pl *poller) do(f func()) {
	pl.mu.Lock()
	pl.cmds = append(pl.cmds, f)
	pl.mu.Unlock()
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(pl.wake, one[:])
}

// add starts receiving from l for port p (called through do; l.refs counts this poller already).
func (pl *poller) add(p *port, l *link, gen int) {
	fd := l.fd(pl.idx)
	if err := unix.EpollCtl(pl.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		pl.d.log.Error("epoll add", zap.Stringer("port", p.spec), zap.Error(err))
		pl.release(l)
		return
	}
	pl.ports[fd] = &attached{p: p, l: l, fd: fd, ring: l.ring(pl.idx), gen: gen}
}

// remove stops receiving from l (called on the poller's thread); the last poller to let go of l
// closes it. Removing a link this poller does not poll (any more) does nothing.
func (pl *poller) remove(l *link) {
	fd := l.fd(pl.idx)
	if a, ok := pl.ports[fd]; ok && a.l == l {
		_ = unix.EpollCtl(pl.ep, unix.EPOLL_CTL_DEL, fd, nil)
		delete(pl.ports, fd)
		pl.release(l)
	}
}

func (pl *poller) release(l *link) {
	if l.refs.Add(-1) == 0 {
		_ = l.close()
	}
}

// setup names, pins and prioritises the poller's (locked) thread. It reports whether the thread was
// changed (it must then not go back to the Go runtime's pool).
func (pl *poller) setup() (changed bool, err error) {
	setThreadName(fmt.Sprintf("cp4-poller/%d", pl.idx))
	if pl.cpu >= 0 {
		var set unix.CPUSet
		set.Set(pl.cpu)
		changed = true
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return changed, fmt.Errorf("pinning poller %d to CPU %d: %w", pl.idx, pl.cpu, err)
		}
	}
	if prio := pl.d.cfg.PollerPriority; prio > 0 {
		changed = true
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return changed, fmt.Errorf("SCHED_FIFO priority %d for poller %d: %w", prio, pl.idx, err)
		}
	} else if slice := pl.d.cfg.PollerSlice; slice > 0 {
		// A short EEVDF slice (sched_runtime of a SCHED_OTHER thread, Linux 6.12): woken by a frame,
		// the poller preempts the sending task at once (as the kernel would process the frame in the
		// sender's softirq) instead of waiting out the sender's slice while the ring fills.
		changed = true
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Runtime: uint64(slice.Nanoseconds())}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return changed, fmt.Errorf("scheduling slice %v for poller %d: %w", slice, pl.idx, err)
		}
	}
	return changed, nil
}

// threadState is what a poller changes on its thread.
type threadState struct {
	name     string
	affinity unix.CPUSet
	attr     *unix.SchedAttr
}

func saveThread() threadState {
	st := threadState{name: threadName()}
	_ = unix.SchedGetaffinity(0, &st.affinity)
	st.attr, _ = unix.SchedGetAttr(0, 0)
	return st
}

// restore gives the calling thread back its name and, if changed, its affinity and scheduling.
func (st threadState) restore(changed bool) {
	setThreadName(st.name)
	if !changed {
		return
	}
	_ = unix.SchedSetaffinity(0, &st.affinity)
	if st.attr != nil {
		_ = unix.SchedSetAttr(0, st.attr, 0)
	}
}

// threadName returns the calling thread's name (comm).
func threadName() string {
	var buf [16]byte
	_ = unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&buf[0])), 0, 0, 0)
	return unix.ByteSliceToString(buf[:])
}

// setThreadName names the calling thread (at most 15 bytes are kept).
func setThreadName(name string) {
	b := append([]byte(name), 0)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

func (pl *poller) run() {
	defer pl.d.wg.Done()
	runtime.LockOSThread()
	was := saveThread()
	changed, err := pl.setup()
	if err != nil {
		pl.d.log.Warn("poller thread setup", zap.Error(err))
	}
	if !changed || unix.Gettid() == unix.Getpid() {
		// The thread goes back to the runtime's pool as it was: its old name, or every later goroutine
		// it runs would show up as a poller (in ps, top, and the tests that count pollers), and its
		// affinity and policy. A changed thread is normally discarded instead (the goroutine exits
		// locked), but not the main thread: the runtime never ends it, it would stay parked as a
		// pinned "poller" for the life of the process.
		defer runtime.UnlockOSThread()
		defer was.restore(changed)
	} // else: the goroutine exits locked and the runtime discards the pinned / real-time thread
	defer unix.Close(pl.ep)
	defer unix.Close(pl.wake)
	events := make([]unix.EpollEvent, 64)
	tx := newTxState(pl.idx)
	spin := pl.d.cfg.Spin
	var last time.Time
	for {
		timeout := -1
		if spin > 0 && time.Since(last) < spin {
			timeout = 0
		}
		n, err := unix.EpollWait(pl.ep, events, timeout)
		if err != nil && err != unix.EINTR {
			pl.d.log.Error("epoll_wait", zap.Error(err))
			return
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == pl.wake {
				var b [8]byte
				_, _ = unix.Read(pl.wake, b[:])
				pl.mu.Lock()
				cmds := pl.cmds
				pl.cmds = nil
				pl.mu.Unlock()
				for _, f := range cmds {
					f()
				}
				select {
				case <-pl.d.stop:
					return // the dataplane closes the links once every poller is gone
				default:
				}
				continue
			}
			a := pl.ports[fd]
			if a == nil {
				continue
			}
			if pl.drain(a, tx) && spin > 0 {
				last = time.Now()
			}
		}
	}
}

// drain receives what is waiting on a (a few batches at most, to stay fair to the other ports).
func (pl *poller) drain(a *attached, tx *txState) bool {
	if a.ring != nil {
		return pl.drainRing(a, tx)
	}
	d := pl.d
	rx := pl.rx
	got := false
	for round := 0; round < 4; round++ {
		n, err := a.l.recv(a.fd, rx)
		if err != nil {
			pl.failed(a, err)
			return got
		}
		if n == 0 {
			return got
		}
		got = true
		pl.packets.Add(uint64(n))
		w := <-d.workers
		for i := 0; i < n; i++ {
			d.processOne(w, a.p, a.l, rx.bufs[i], rx.lens[i], tx)
		}
		d.workers <- w
		tx.flush(d)
		if n < len(rx.bufs) {
			return got
		}
	}
	return got
}

// drainRing is drain for a port with a receive ring: frames are processed in their slots, which go
// back to the kernel once the round is sent.
func (pl *poller) drainRing(a *attached, tx *txState) bool {
	d, r, rx := pl.d, a.ring, pl.rx
	got := false
	for round := 0; round < 4; round++ {
		if !r.ready() {
			return got
		}
		got = true
		w := <-d.workers
		first, n, copies := r.head, 0, 0
		for n < len(rx.bufs) && r.ready() {
			buf, m, status, inPlace := r.frame()
			if !inPlace {
				buf, m = pl.copyIn(a, status, rx.bufs[copies])
				copies++
			}
			r.next()
			n++
			d.processOne(w, a.p, a.l, buf, m, tx)
		}
		d.workers <- w
		tx.flush(d)
		pl.packets.Add(uint64(n))
		for i, s := 0, first; i < n; i++ {
			r.release(s)
			if s++; s == r.n {
				s = 0
			}
		}
		if n < len(rx.bufs) {
			return got
		}
	}
	return got
}

// copyIn copies the frame of a's ring slot at head into buf when it cannot be processed in place:
// the whole frame queued to the socket (TP_STATUS_COPY: larger than a slot), or a slot whose layout
// leaves no headroom. It returns 0 for a frame that was cut short without a queued copy (the socket's
// buffer was full) — counted as a receive error.
func (pl *poller) copyIn(a *attached, status uint32, buf []byte) ([]byte, int) {
	if status&tpStatusCopy != 0 {
		for {
			m, err := unix.Read(a.fd, buf[pipeline.Headroom-vnetLen:pipeline.Headroom+pipeline.MaxPacket])
			if err == unix.EINTR {
				continue
			}
			if err != nil || m < vnetLen {
				return buf, 0
			}
			return buf, m - vnetLen
		}
	}
	raw := a.ring.raw()
	if raw == nil {
		return buf, 0
	}
	if full := int(*(*uint32)(unsafe.Pointer(&a.ring.mem[a.ring.head*ringSlotSize+4]))); full != len(raw)-vnetLen {
		return buf, 0 // truncated
	}
	return buf, copy(buf[pipeline.Headroom-vnetLen:], raw) - vnetLen
}

// failed handles a receive error: the interface went away; the port waits for it to come back.
func (pl *poller) failed(a *attached, err error) {
	p := a.p
	pl.remove(a.l)
	p.mu.Lock()
	current := p.gen == a.gen && p.link == a.l
	if current {
		p.link = nil
		p.state = StatePending
		p.lastErr = err.Error()
	}
	p.mu.Unlock()
	if current {
		pl.d.unlink(p, a.l)
		pl.d.log.Warn("port receive failed; reopening when the interface is back", zap.Stringer("port", p.spec), zap.Error(err))
	}
}
