// Package probe sends and answers reachability probes between network namespaces: TCP, UDP (with an echo
// protocol so a reply proves the path in both directions), SCTP (when the kernel has it) and ICMP/ICMPv6 echo.
//
// Sockets are created on a thread switched into the namespace (netnsutil.Do) and then used from ordinary
// goroutines, so one test process can run many probes in parallel across namespaces without exec'ing anything.
// Servers answer with their identity so a probe also proves that the right pod answered.
//
// The package must not create or change namespaces or links (package topology does) and must not decide what
// is expected (package matrix does).
package probe
