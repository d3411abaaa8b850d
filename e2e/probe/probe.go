package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocol is a probe protocol. ICMP means ICMP echo for IPv4 targets and ICMPv6 echo for IPv6 targets.
type Protocol string

const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
	ICMP Protocol = "icmp"
)

// ParseProtocol accepts tcp, udp, sctp, icmp and icmpv6 (any case).
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "sctp":
		return SCTP, nil
	case "icmp", "icmpv6", "icmp6", "ping":
		return ICMP, nil
	}
	return "", fmt.Errorf("unknown probe protocol %q", s)
}

// Request is one probe: from the namespace at FromNetNS to To:Port.
type Request struct {
	FromNetNS string         // path of the source namespace
	To        netip.Addr     // destination address
	Proto     Protocol       //
	Port      int            // ignored for ICMP
	Timeout   time.Duration  // per attempt; default 1s
	Attempts  int            // default 2; the probe succeeds if any attempt does
	Expect    string         // if set, the responder's identity must equal it (not checked for ICMP)
	Source    netip.AddrPort // optional source address/port to bind
	EchoID    uint16         // ICMP echo identifier (0: random)
}

// Result of a probe.
type Result struct {
	OK        bool
	Responder string        // identity the server answered with (TCP, UDP, SCTP)
	Attempts  int           // attempts made
	Elapsed   time.Duration // wall time of the whole probe
	Err       error         // the last attempt's error when !OK
}

func (r Result) String() string {
	if r.OK {
		return fmt.Sprintf("ok (%s, %d attempt(s), %v)", r.Responder, r.Attempts, r.Elapsed.Round(time.Millisecond))
	}
	return fmt.Sprintf("fail after %d attempt(s): %v", r.Attempts, r.Err)
}

// ErrWrongResponder is returned when a server other than the expected one answered.
var ErrWrongResponder = errors.New("wrong responder")

// Do runs a probe. It never takes longer than about Attempts×Timeout (plus ctx).
func Do(ctx context.Context, req Request) Result {
	if req.Timeout <= 0 {
		req.Timeout = time.Second
	}
	if req.Attempts <= 0 {
		req.Attempts = 2
	}
	start := time.Now()
	var res Result
	for i := 0; i < req.Attempts; i++ {
		if err := ctx.Err(); err != nil {
			res.Err = err
			break
		}
		res.Attempts++
		actx, cancel := context.WithTimeout(ctx, req.Timeout)
		var who string
		var err error
		switch req.Proto {
		case TCP:
			who, err = tcpProbe(actx, req)
		case UDP:
			who, err = udpProbe(actx, req)
		case SCTP:
			who, err = sctpProbe(actx, req)
		case ICMP:
			err = icmpProbe(actx, req)
		default:
			err = fmt.Errorf("unknown protocol %q", req.Proto)
		}
		cancel()
		if err == nil && req.Expect != "" && req.Proto != ICMP && who != req.Expect {
			err = fmt.Errorf("%w: %q answered, want %q", ErrWrongResponder, who, req.Expect)
		}
		res.Responder, res.Err = who, err
		if err == nil {
			res.OK = true
			break
		}
		if errors.Is(err, ErrWrongResponder) {
			break // retrying will not fix a misroute
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

func hostPort(a netip.Addr, port int) string {
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// token makes a unique payload for UDP echo.
func token(n uint64) string { return "cp4probe-" + strconv.FormatUint(n, 36) }

// SourcePorts hands out source ports (TCP, UDP, SCTP: 10000–32767, below Linux's ephemeral range, so they
// never collide with ports the kernel picks) and ICMP echo identifiers per source namespace, each value once
// per namespace and protocol until the range wraps. Probes that use them never repeat a flow's tuple within
// a run: a repeated tuple would match connection tracking left by an earlier probe (in the dataplane under
// test, as in Linux conntrack) and pass whatever the policy says now.
type SourcePorts struct {
	mu   sync.Mutex
	next map[string]uint32
	base uint32
}

// NewSourcePorts returns an allocator starting at a random offset.
func NewSourcePorts() *SourcePorts {
	return &SourcePorts{next: map[string]uint32{}, base: uint32(rand.IntN(1 << 16))}
}

// Next returns the next source port (or, for ICMP, echo identifier) for a probe from nsPath.
func (s *SourcePorts) Next(nsPath string, p Protocol) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := nsPath + "|" + string(p)
	n := s.next[k]
	s.next[k] = n + 1
	if p == ICMP {
		return uint16((s.base+n)%0xffff + 1)
	}
	return uint16(10000 + (s.base+n)%(32768-10000))
}

// Fill sets a request's source (from the address src) or echo identifier from the allocator; a nil
// allocator leaves the request alone (the kernel picks).
func (s *SourcePorts) Fill(req *Request, src netip.Addr) {
	if s == nil {
		return
	}
	n := s.Next(req.FromNetNS, req.Proto)
	switch req.Proto {
	case ICMP:
		req.EchoID = n
	case TCP, UDP, SCTP:
		if src.IsValid() {
			req.Source = netip.AddrPortFrom(src, n)
		}
	}
}
