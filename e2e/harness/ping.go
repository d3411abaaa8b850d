package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// Pinger sends ICMP (or ICMPv6) echo requests at a fixed interval from a namespace and counts the replies,
// to measure loss across an event (a Felix or manager restart).
type Pinger struct {
	pc       *icmp.PacketConn
	dst      *net.IPAddr
	v6       bool
	id       int
	interval time.Duration

	mu    sync.Mutex
	sent  int
	got   map[int]bool
	stop  chan struct{}
	done  chan struct{}
	rdone chan struct{}
}

// PingStats are a pinger's counts.
type PingStats struct {
	Sent, Received int
	Lost           []int // sequence numbers without a reply
}

func (s PingStats) String() string {
	return fmt.Sprintf("%d sent, %d received, %d lost", s.Sent, s.Received, len(s.Lost))
}

// StartPing starts pinging to from the namespace at nsPath every interval.
func StartPing(nsPath string, to netip.Addr, interval time.Duration) (*Pinger, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if to.Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	var pc *icmp.PacketConn
	if err := netnsutil.DoPath(nsPath, func() error {
		var err error
		pc, err = icmp.ListenPacket(network, laddr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	p := &Pinger{pc: pc, dst: &net.IPAddr{IP: net.IP(to.AsSlice())}, v6: to.Is6(), id: rand.IntN(1 << 16),
		interval: interval, got: map[int]bool{}, stop: make(chan struct{}), done: make(chan struct{}),
		rdone: make(chan struct{})}
	go p.read()
	go p.send()
	return p, nil
}

func (p *Pinger) send() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if p.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	for seq := 1; ; seq++ {
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: seq & 0xffff, Data: []byte("cp4-ping")}}
		if b, err := msg.Marshal(nil); err == nil {
			_, _ = p.pc.WriteTo(b, p.dst)
		}
		p.mu.Lock()
		p.sent = seq
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *Pinger) read() {
	defer close(p.rdone)
	proto, want := 1, icmp.Type(ipv4.ICMPTypeEchoReply)
	if p.v6 {
		proto, want = 58, ipv6.ICMPTypeEchoReply
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := p.pc.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if ip, ok := peer.(*net.IPAddr); !ok || !ip.IP.Equal(p.dst.IP) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != want {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == p.id {
			p.mu.Lock()
			p.got[e.Seq] = true
			p.mu.Unlock()
		}
	}
}

// Stats returns the counts so far (requests still in flight count as lost).
func (p *Pinger) Stats() PingStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PingStats{Sent: p.sent}
	for seq := 1; seq <= p.sent; seq++ {
		if p.got[seq&0xffff] {
			st.Received++
		} else {
			st.Lost = append(st.Lost, seq)
		}
	}
	return st
}

// Stop stops sending, waits up to grace for the last replies and returns the final counts.
func (p *Pinger) Stop(grace time.Duration) PingStats {
	close(p.stop)
	<-p.done
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && len(p.Stats().Lost) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	p.pc.Close()
	<-p.rdone
	return p.Stats()
}
