package entry

import (
	"encoding/binary"
	"math/bits"
)

// Canonical returns b in P4Runtime's canonical byte-string form: leading zero
// bytes removed, with the value zero as a single zero byte. An empty input
// stays empty (P4Runtime rejects empty strings; Validate reports it). The
// result never aliases b.
func Canonical(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	out := make([]byte, len(b)-i)
	copy(out, b[i:])
	return out
}

// IsCanonical reports whether b is a non-empty byte string without redundant
// leading zero bytes.
func IsCanonical(b []byte) bool {
	return len(b) > 0 && (len(b) == 1 || b[0] != 0)
}

// Uint returns v as a canonical byte string.
func Uint(v uint64) []byte {
	if v == 0 {
		return []byte{0}
	}
	n := (bits.Len64(v) + 7) / 8
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	out := make([]byte, n)
	copy(out, buf[8-n:])
	return out
}

// BitLen is the number of significant bits of the unsigned big-endian
// integer b (0 for zero).
func BitLen(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return (len(b)-i-1)*8 + bits.Len8(c)
		}
	}
	return 0
}

// isZero reports whether every byte of b is zero (true for an empty b).
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// and returns a & m as a canonical byte string, aligning the operands on
// their least significant byte.
func and(a, m []byte) []byte {
	n := len(a)
	if len(m) < n {
		n = len(m)
	}
	out := make([]byte, n)
	for i := 1; i <= n; i++ {
		out[n-i] = a[len(a)-i] & m[len(m)-i]
	}
	return Canonical(out)
}

// maskedEqual reports whether v&m == v (as unsigned integers), i.e. v has no bit outside m; it is
// bytes.Equal(and(v, m), v) for a canonical v, without allocating.
func maskedEqual(v, m []byte) bool {
	for i := 1; i <= len(v); i++ {
		var mb byte
		if i <= len(m) {
			mb = m[len(m)-i]
		}
		if v[len(v)-i]&^mb != 0 {
			return false
		}
	}
	return true
}

// compareUint compares two unsigned big-endian integers of any length.
func compareUint(a, b []byte) int {
	a, b = trimZeros(a), trimZeros(b)
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
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

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
