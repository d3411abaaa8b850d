package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// icmpProbe sends ICMP (v4) or ICMPv6 echo requests from a raw socket in the source namespace and waits for
// the matching echo reply (same id, sequence and payload, from the target address).
func icmpProbe(ctx context.Context, req Request) error {
	network, laddr := "ip4:icmp", "0.0.0.0"
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if req.To.Is6() && !req.To.Is4In6() {
		network, laddr = "ip6:ipv6-icmp", "::"
		reqType, replyType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
		proto = 58
	}
	if req.Source.IsValid() {
		laddr = req.Source.Addr().String()
	}
	var pc *icmp.PacketConn
	if err := netnsutil.DoPath(req.FromNetNS, func() error {
		var err error
		pc, err = icmp.ListenPacket(network, laddr)
		return err
	}); err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer pc.Close()
	id := int(seq.Add(1)+uint64(rand.IntN(1<<15))) & 0xffff
	if req.EchoID != 0 {
		id = int(req.EchoID)
	}
	payload := []byte(token(seq.Add(1)))
	dst := &net.IPAddr{IP: net.IP(req.To.AsSlice())}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Second)
	}
	slice := time.Until(dl) / 3
	buf := make([]byte, 1500)
	var lastErr error = errors.New("no echo reply")
	for n := 1; time.Now().Before(dl); n++ {
		msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: n, Data: payload}}
		b, err := msg.Marshal(nil) // ICMPv6 checksum is filled in by the kernel
		if err != nil {
			return err
		}
		if _, err := pc.WriteTo(b, dst); err != nil {
			lastErr = err
		}
		next := time.Now().Add(slice)
		if next.After(dl) {
			next = dl
		}
		_ = pc.SetReadDeadline(next)
		for {
			m, peer, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			if ip, ok := peer.(*net.IPAddr); !ok || !ip.IP.Equal(dst.IP) {
				continue
			}
			rm, err := icmp.ParseMessage(proto, buf[:m])
			if err != nil || rm.Type != replyType {
				continue
			}
			if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && bytes.Equal(e.Data, payload) {
				return nil
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("icmp: %w", lastErr)
}
