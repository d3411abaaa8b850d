package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// Listen says which ports a server answers on.
type Listen struct {
	TCP, UDP, SCTP []int
}

// Server answers probes inside one namespace: TCP and SCTP connections get "<identity>\n", UDP datagrams get
// "<payload> <identity>" back. ICMP echo is answered by the namespace's kernel. Listeners are dual-stack.
type Server struct {
	Identity string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closers  []func() error
	mu       sync.Mutex
	served   map[Protocol]int
}

// Serve starts a server in the namespace at nsPath. SCTP ports are skipped (not an error) when the kernel
// lacks SCTP; SCTPSupported tells why.
func Serve(ctx context.Context, nsPath, identity string, l Listen) (*Server, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{Identity: identity, cancel: cancel, served: map[Protocol]int{}}
	var tcp []net.Listener
	var udp []net.PacketConn
	var sctp []*sctpListener
	err := netnsutil.DoPath(nsPath, func() error {
		var lc net.ListenConfig
		for _, p := range l.TCP {
			ln, err := lc.Listen(ctx, "tcp", fmt.Sprintf(":%d", p))
			if err != nil {
				return fmt.Errorf("tcp :%d: %w", p, err)
			}
			tcp = append(tcp, ln)
		}
		for _, p := range l.UDP {
			pc, err := lc.ListenPacket(ctx, "udp", fmt.Sprintf(":%d", p))
			if err != nil {
				return fmt.Errorf("udp :%d: %w", p, err)
			}
			udp = append(udp, pc)
		}
		if len(l.SCTP) > 0 {
			if ok, _ := sctpSupportedHere(); ok {
				for _, p := range l.SCTP {
					sl, err := listenSCTP(p)
					if err != nil {
						return fmt.Errorf("sctp :%d: %w", p, err)
					}
					sctp = append(sctp, sl)
				}
			}
		}
		return nil
	})
	for _, ln := range tcp {
		s.closers = append(s.closers, ln.Close)
	}
	for _, pc := range udp {
		s.closers = append(s.closers, pc.Close)
	}
	for _, sl := range sctp {
		s.closers = append(s.closers, sl.Close)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("probe server %s: %w", identity, err)
	}
	for _, ln := range tcp {
		s.wg.Add(1)
		go s.serveTCP(ln)
	}
	for _, pc := range udp {
		s.wg.Add(1)
		go s.serveUDP(pc)
	}
	for _, sl := range sctp {
		s.wg.Add(1)
		go s.serveSCTP(ctx, sl)
	}
	return s, nil
}

// Served returns how many probes the server answered per protocol (for diagnostics).
func (s *Server) Served() map[Protocol]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Protocol]int, len(s.served))
	for k, v := range s.served {
		out[k] = v
	}
	return out
}

func (s *Server) count(p Protocol) {
	s.mu.Lock()
	s.served[p]++
	s.mu.Unlock()
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() {
	s.cancel()
	for _, c := range s.closers {
		_ = c()
	}
	s.closers = nil
	s.wg.Wait()
}

func (s *Server) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.count(TCP)
		go func() {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write([]byte(s.Identity + "\n"))
			_ = c.Close()
		}()
	}
}

func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.count(UDP)
		reply := append(append(append([]byte(nil), buf[:n]...), ' '), s.Identity...)
		_, _ = pc.WriteTo(reply, from)
	}
}
