// Package netnsutil runs code inside Linux network namespaces for the end-to-end harness: named namespaces
// (bind-mounted under /run/netns, so `ip netns exec` works on them for debugging), functions executed on an OS
// thread switched into a namespace, and per-namespace sysctls.
//
// It owns only the mechanics of entering namespaces. It must not decide topology (package topology does) and
// must never switch the namespace of a thread that it then hands back to the Go scheduler: a thread that entered
// another namespace is discarded when its goroutine ends (runtime.LockOSThread without Unlock).
package netnsutil
