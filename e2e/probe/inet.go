package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

var seq atomic.Uint64

func dialIn(ctx context.Context, nsPath, network, addr string, laddr net.Addr) (net.Conn, error) {
	var c net.Conn
	err := netnsutil.DoPath(nsPath, func() error {
		d := net.Dialer{LocalAddr: laddr}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func tcpProbe(ctx context.Context, req Request) (string, error) {
	var laddr net.Addr
	if req.Source.IsValid() {
		laddr = net.TCPAddrFromAddrPort(req.Source)
	}
	c, err := dialIn(ctx, req.FromNetNS, "tcp", hostPort(req.To, req.Port), laddr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return readIdentity(ctx, c)
}

func readIdentity(ctx context.Context, c net.Conn) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read identity: %w", err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// udpProbe sends a token and waits for "<token> <identity>". It resends a few times within the attempt, as
// the first datagram may be lost while ARP/ND resolves.
func udpProbe(ctx context.Context, req Request) (string, error) {
	var laddr net.Addr
	if req.Source.IsValid() {
		laddr = net.UDPAddrFromAddrPort(req.Source)
	}
	c, err := dialIn(ctx, req.FromNetNS, "udp", hostPort(req.To, req.Port), laddr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	tok := token(seq.Add(1))
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Second)
	}
	slice := time.Until(dl) / 3
	buf := make([]byte, 512)
	var lastErr error = errors.New("no reply")
	for time.Now().Before(dl) {
		if _, err := c.Write([]byte(tok)); err != nil {
			lastErr = err
		}
		next := time.Now().Add(slice)
		if next.After(dl) {
			next = dl
		}
		_ = c.SetReadDeadline(next)
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if !(errors.As(err, &ne) && ne.Timeout()) {
					lastErr = err // e.g. ICMP port unreachable -> connection refused
				}
				break
			}
			reply := string(buf[:n])
			if who, found := strings.CutPrefix(reply, tok+" "); found {
				return who, nil
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("udp: %w", lastErr)
}
