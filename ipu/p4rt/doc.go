// Package p4rt is the thin P4Runtime client calico-p4 uses to talk to a
// target (the embedded softswitch, infrap4d / P4-DPDK, an Intel IPU): dialing
// (unix socket, TCP, TLS and mutual TLS), Capabilities, primary/backup
// arbitration on the StreamChannel with re-arbitration and reconnection,
// forwarding-pipeline handling (push only when the target's differs, per
// target profile), batched Write with per-update errors, streaming Read, and
// the encoding of entry.Entry values to and from p4.v1.Entity by name through
// a P4Info.
//
// The package is generic over any P4Info. Names are the P4Info preamble names
// (not aliases). Member and group ids are not chosen here: the encoder asks
// the caller (the programmer) for them.
//
// It must not keep desired state, diff, or decide what to write: that is
// ipu/programmer's job.
package p4rt
