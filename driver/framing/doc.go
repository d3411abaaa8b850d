// Package framing implements the Felix external dataplane pipe framing: every message is an 8-byte
// little-endian uint64 length followed by that many bytes of a serialised protobuf envelope
// (felix.ToDataplane on fd 3, felix.FromDataplane on fd 4).
//
// It owns the length limit (MaxFrameSize, 64 MiB), the classification of framing errors (oversized,
// truncated, I/O) and a fuzzed decoder. It must not decode payloads: frames are opaque bytes here.
package framing
