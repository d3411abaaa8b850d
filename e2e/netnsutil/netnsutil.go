package netnsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// RunDir is where named network namespaces are bind-mounted (the iproute2 convention).
const RunDir = "/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(RunDir, name) }

// CreateNamed creates a new network namespace bind-mounted at RunDir/name and returns an open handle to it.
// The calling goroutine's thread is not affected. It fails if the name already exists.
func CreateNamed(name string) (netns.NsHandle, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return netns.None(), fmt.Errorf("create netns: invalid name %q", name)
	}
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// This thread is moved into the new namespace by unshare and is never unlocked: the runtime
		// terminates it when the goroutine returns, so no other goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		ch <- result{h, err}
	}()
	r := <-ch
	if r.err != nil {
		return netns.None(), fmt.Errorf("create netns %s: %w", name, r.err)
	}
	return r.h, nil
}

// DeleteNamed unmounts and removes the named namespace. The namespace itself disappears once nothing else
// (an open handle, a socket, a process) holds it. A missing namespace is not an error.
func DeleteNamed(name string) error {
	if _, err := os.Stat(Path(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// Do runs fn on a dedicated OS thread switched into the namespace h and returns fn's error. Sockets that fn
// creates belong to that namespace for their whole life and may be used from any goroutine afterwards.
func Do(h netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see CreateNamed
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DoPath is Do for a namespace given by path (e.g. /run/netns/x or /proc/<pid>/ns/net).
func DoPath(path string, fn func() error) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer h.Close()
	return Do(h, fn)
}

// SetSysctl writes value to /proc/sys/<key> (key with slashes, e.g. "net/ipv4/ip_forward") as seen from
// inside the namespace h. Only net/ keys are namespaced; others would change the host, so they are refused.
func SetSysctl(h netns.NsHandle, key, value string) error {
	if !strings.HasPrefix(key, "net/") || strings.Contains(key, "..") {
		return fmt.Errorf("sysctl %s: only per-namespace net/ keys may be set", key)
	}
	return Do(h, func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}

// GetSysctl reads /proc/sys/<key> inside the namespace h.
func GetSysctl(h netns.NsHandle, key string) (string, error) {
	var out string
	err := Do(h, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
		out = strings.TrimSpace(string(b))
		return nil
	})
	return out, err
}
