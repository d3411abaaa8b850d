package tables

import (
	"google.golang.org/grpc/codes"
)

// Canonical returns the shortest P4Runtime encoding of an unsigned big-endian value: leading zero bytes
// removed, at least one byte. It returns a sub-slice of v (no copy).
func Canonical(v []byte) []byte {
	i := 0
	for i < len(v)-1 && v[i] == 0 {
		i++
	}
	if len(v) == 0 {
		return []byte{0}
	}
	return v[i:]
}

// canonicalCopy is Canonical into a fresh slice (safe to hand to protobuf messages).
func canonicalCopy(v []byte) []byte {
	c := Canonical(v)
	out := make([]byte, len(c))
	copy(out, c)
	return out
}

// putBits decodes the P4Runtime bytestring b for an unsigned value of the given bitwidth into dst
// (len(dst) == (width+7)/8, right-aligned, zero padded). The value may carry leading zero bytes
// (spec §8.4: servers accept any length whose value fits); with strict set, only the canonical (shortest)
// encoding is accepted. Errors: OUT_OF_RANGE for an empty string or a value wider than width;
// INVALID_ARGUMENT for a non-canonical string in strict mode.
func putBits(dst, b []byte, width int, strict bool, what desc) *Error {
	if len(b) == 0 {
		return errf(codes.OutOfRange, "%s: empty bytestring", what)
	}
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	if strict && i > 0 {
		return errf(codes.InvalidArgument, "%s: bytestring %x is not canonical (leading zero bytes)", what, b)
	}
	v := b[i:]
	if len(v) > len(dst) {
		return errf(codes.OutOfRange, "%s: value %x does not fit in %d bits", what, b, width)
	}
	if len(v) == len(dst) {
		if extra := len(dst)*8 - width; extra > 0 && v[0]>>(8-extra) != 0 {
			return errf(codes.OutOfRange, "%s: value %x does not fit in %d bits", what, b, width)
		}
	}
	for j := 0; j < len(dst)-len(v); j++ {
		dst[j] = 0
	}
	copy(dst[len(dst)-len(v):], v)
	return nil
}

// isZero reports whether all bytes are zero.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// equalMasked reports whether key&mask == val (val is already masked). len(key) == len(mask) == len(val).
func equalMasked(key, mask, val []byte) bool {
	n := len(val)
	i := 0
	for ; i+8 <= n; i += 8 {
		if le64(key[i:])&le64(mask[i:]) != le64(val[i:]) {
			return false
		}
	}
	for ; i < n; i++ {
		if key[i]&mask[i] != val[i] {
			return false
		}
	}
	return true
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// compareBE compares two equal-length big-endian values.
func compareBE(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// prefixLen counts the leading one bits of a width-bit field mask (right-aligned in b); it returns -1
// if the mask is not a prefix mask.
func prefixLen(b []byte, width int) int {
	lead := len(b)*8 - width
	n := 0
	ones := true
	for bit := lead; bit < len(b)*8; bit++ {
		set := b[bit/8]&(0x80>>(bit%8)) != 0
		if set && !ones {
			return -1
		}
		if !set {
			ones = false
			continue
		}
		n++
	}
	return n
}

// U64 decodes a big-endian value of up to 8 bytes (for the fast path: params, key fields).
func U64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// PutU64 writes v big-endian into b (len(b) <= 8), truncating high bytes.
func PutU64(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// desc names the value being decoded; it is rendered only when an error is reported, so the write
// path does not build strings per update.
type desc struct{ a, b, c, d, e string }

func (d desc) with(s string) desc { d.e = s; return d }

func (d desc) String() string {
	out := ""
	for _, p := range []string{d.a, d.b, d.c, d.d, d.e} {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}
