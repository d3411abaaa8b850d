package cni

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetNS runs fn on a dedicated OS thread switched into ns (netns.None(): the process's own namespace,
// fn runs on an ordinary locked thread). A thread that entered another namespace is never handed back to
// the Go scheduler: its goroutine ends with the thread still locked, so the runtime discards it.
func inNetNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				errc <- fmt.Errorf("entering network namespace: %w", err)
				return
			}
		} else {
			defer runtime.UnlockOSThread()
		}
		errc <- fn()
	}()
	return <-errc
}

// setSysctls writes /proc/sys keys (e.g. "net/ipv6/conf/eth0/disable_ipv6") inside ns; /proc/sys/net
// shows the namespace of the thread that opens it.
func setSysctls(ns netns.NsHandle, kv [][2]string) error {
	return inNetNS(ns, func() error {
		for _, e := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", e[0]), []byte(e[1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", e[0], e[1], err)
			}
		}
		return nil
	})
}
