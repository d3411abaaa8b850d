package ports

import (
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// poller receives from a set of ports with epoll on its own locked thread. After traffic it keeps
// polling without blocking for Spin (busy-poll, as DPDK and AF_XDP targets do), so that a reply
// arriving within that window is forwarded without a wakeup; then it blocks in epoll_wait.
type poller struct {
	d    *Dataplane
	ep   int
	wake int // eventfd: commands waiting, or stop

	mu    sync.Mutex
	cmds  []func()
	ports map[int]*attached // by fd
}

type attached struct {
	p    *port
	l    *link
	gen  int
	rx   *rxBatch
	dead bool
}

func newPoller(d *Dataplane) (*poller, error) {
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
	return &poller{d: d, ep: ep, wake: wake, ports: map[int]*attached{}}, nil
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

// add starts receiving from l for port p (called through do).
func (pl *poller) add(p *port, l *link, gen int) {
	if err := unix.EpollCtl(pl.ep, unix.EPOLL_CTL_ADD, l.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.fd)}); err != nil {
		pl.d.log.Error("epoll add", zap.Stringer("port", p.spec), zap.Error(err))
		return
	}
	pl.ports[l.fd] = &attached{p: p, l: l, gen: gen, rx: newRxBatch(pl.d.cfg.Batch)}
}

// remove stops receiving from l and closes it (called through do).
func (pl *poller) remove(l *link) {
	if _, ok := pl.ports[l.fd]; ok {
		_ = unix.EpollCtl(pl.ep, unix.EPOLL_CTL_DEL, l.fd, nil)
		delete(pl.ports, l.fd)
	}
	l.close()
}

func (pl *poller) run() {
	defer pl.d.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(pl.ep)
	defer unix.Close(pl.wake)
	events := make([]unix.EpollEvent, 64)
	tx := newTxState()
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
					for _, a := range pl.ports {
						a.l.close()
					}
					return
				default:
				}
				continue
			}
			a := pl.ports[fd]
			if a == nil {
				continue
			}
			if pl.drain(a, tx) {
				last = time.Now()
			}
		}
	}
}

// drain receives what is waiting on a (a few batches at most, to stay fair to the other ports).
func (pl *poller) drain(a *attached, tx *txState) bool {
	d := pl.d
	got := false
	for round := 0; round < 4; round++ {
		n, err := a.l.recv(a.rx)
		if err != nil {
			pl.failed(a, err)
			return got
		}
		if n == 0 {
			return got
		}
		got = true
		w := <-d.workers
		for i := 0; i < n; i++ {
			d.processOne(w, a.p, a.l, a.rx.bufs[i], a.rx.lens[i], tx)
		}
		d.workers <- w
		tx.flush(d)
		if n < len(a.rx.bufs) {
			return got
		}
	}
	return got
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
		pl.d.log.Warn("port receive failed; reopening when the interface is back", zap.Stringer("port", p.spec), zap.Error(err))
	}
}
