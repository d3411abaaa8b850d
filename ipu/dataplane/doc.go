// Package dataplane is the manager's apply stage: it implements session.Applier by running the
// translator (model → k8s.p4 entries) and the programmer (entries → a P4Runtime target), and reports per
// endpoint what could not be programmed.
//
// It owns: the composition translator → programmer, the report of unsupported features (logged once per
// owner, counted by feature), and, for the embedded target, the in-process softswitch (served on a
// P4Runtime listener like any other target: the programmer reaches it over gRPC, no private shortcut)
// and its ports, kept equal to the interfaces the desired state names (workload endpoints, the host and
// uplink ports).
//
// It must not translate or encode entries itself, and must not decide Felix session semantics (when to
// apply, what status to report): the session does.
package dataplane
