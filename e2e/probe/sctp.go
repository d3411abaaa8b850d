package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// SCTP has no support in Go's net package; these use one-to-one (SOCK_STREAM) SCTP sockets directly.

// SCTPSupported reports whether SCTP sockets can be created inside the namespace at nsPath, and if not, why
// (typically the kernel has no sctp module).
func SCTPSupported(nsPath string) (bool, string) {
	var ok bool
	var why string
	err := netnsutil.DoPath(nsPath, func() error {
		ok, why = sctpSupportedHere()
		return nil
	})
	if err != nil {
		return false, err.Error()
	}
	return ok, why
}

func sctpSupportedHere() (bool, string) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if err != nil {
		return false, fmt.Sprintf("kernel refuses SCTP sockets (%v); load the sctp module to enable SCTP probes", err)
	}
	unix.Close(fd)
	return true, ""
}

type sctpListener struct {
	fd   int
	once sync.Once
}

func listenSCTP(port int) (*sctpListener, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_SCTP)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Port: port}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &sctpListener{fd: fd}, nil
}

func (l *sctpListener) Close() error {
	l.once.Do(func() { _ = unix.Shutdown(l.fd, unix.SHUT_RDWR) })
	return nil
}

func (s *Server) serveSCTP(ctx context.Context, l *sctpListener) {
	defer s.wg.Done()
	defer unix.Close(l.fd)
	for ctx.Err() == nil {
		pfd := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 200)
		if err != nil && !errors.Is(err, unix.EINTR) || n <= 0 {
			continue
		}
		cfd, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if err != nil {
			continue
		}
		s.count(SCTP)
		_ = unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 2})
		_, _ = unix.Write(cfd, []byte(s.Identity+"\n"))
		unix.Close(cfd)
	}
}

func sctpProbe(ctx context.Context, req Request) (string, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: req.Port, Addr: req.To.As4()}
	if req.To.Is6() && !req.To.Is4In6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: req.Port, Addr: req.To.As16()}
	}
	var fd int
	err := netnsutil.DoPath(req.FromNetNS, func() error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_SCTP)
		if err != nil {
			return fmt.Errorf("sctp socket: %w", err)
		}
		if req.Source.IsValid() {
			if err := unix.Bind(fd, sockaddr(req.Source)); err != nil {
				unix.Close(fd)
				return fmt.Errorf("sctp bind: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return "", fmt.Errorf("sctp connect: %w", err)
	}
	if err := pollFd(ctx, fd, unix.POLLOUT); err != nil {
		return "", fmt.Errorf("sctp connect: %w", err)
	}
	if soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
		if err == nil {
			err = unix.Errno(soerr)
		}
		return "", fmt.Errorf("sctp connect: %w", err)
	}
	var line []byte
	buf := make([]byte, 256)
	for {
		if err := pollFd(ctx, fd, unix.POLLIN); err != nil {
			return "", fmt.Errorf("sctp read: %w", err)
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			return "", fmt.Errorf("sctp read: %w", err)
		}
		if n == 0 {
			return "", errors.New("sctp read: closed before identity")
		}
		line = append(line, buf[:n]...)
		if i := indexByte(line, '\n'); i >= 0 {
			return string(line[:i]), nil
		}
	}
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// pollFd waits until fd is ready for events or ctx ends.
func pollFd(ctx context.Context, fd int, events int16) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := 100 * time.Millisecond
		if dl, ok := ctx.Deadline(); ok {
			if d := time.Until(dl); d < wait {
				wait = d
			}
		}
		if wait <= 0 {
			return context.DeadlineExceeded
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, int(wait/time.Millisecond)+1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if n > 0 {
			if pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 && pfd[0].Revents&events == 0 {
				return errors.New("socket error")
			}
			return nil
		}
	}
}
