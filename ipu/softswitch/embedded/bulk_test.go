package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// bulkTCP sends n bytes from the namespace at from to a listener in the namespace at to (address
// dst) and checks that the receiver counted them all.
func bulkTCP(ctx context.Context, from, to string, dst netip.Addr, n int) error {
	var ln net.Listener
	if err := netnsutil.DoPath(to, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(dst.String(), "0"))
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		m, _ := io.Copy(io.Discard, c)
		got <- m
	}()
	var conn net.Conn
	if err := netnsutil.DoPath(from, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		var err error
		conn, err = d.DialContext(ctx, "tcp", ln.Addr().String())
		return err
	}); err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = conn.SetDeadline(deadline)
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	binary.BigEndian.PutUint64(buf, uint64(n))
	sent := 0
	for sent < n {
		m, err := conn.Write(buf[:min(len(buf), n-sent)])
		sent += m
		if err != nil {
			conn.Close()
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
	}
	conn.Close()
	select {
	case m := <-got:
		if m != int64(n) {
			return fmt.Errorf("receiver got %d bytes, want %d", m, n)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
