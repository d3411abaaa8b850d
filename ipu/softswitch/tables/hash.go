package tables

import "math/bits"

const (
	hk0 = 0xa0761d6478bd642f
	hk1 = 0xe7037ed1a0b428db
	hk2 = 0x8ebc6af09c88c6e3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashBytes hashes a key (wyhash-style mixing, 8 bytes per step).
func hashBytes(seed uint64, b []byte) uint64 {
	h := seed ^ uint64(len(b))*hk0
	for len(b) >= 8 {
		h = mix(h^le64(b)^hk1, hk2)
		b = b[8:]
	}
	if len(b) > 0 {
		var t uint64
		for i, c := range b {
			t |= uint64(c) << (8 * i)
		}
		h = mix(h^t^hk1, hk2^uint64(len(b)))
	}
	return mix(h, hk0)
}

// hashMasked hashes key&mask without materialising it; equal to hashBytes(seed, key&mask).
func hashMasked(seed uint64, b, m []byte) uint64 {
	h := seed ^ uint64(len(b))*hk0
	for len(b) >= 8 {
		h = mix(h^(le64(b)&le64(m))^hk1, hk2)
		b = b[8:]
		m = m[8:]
	}
	if len(b) > 0 {
		var t uint64
		for i, c := range b {
			t |= uint64(c&m[i]) << (8 * i)
		}
		h = mix(h^t^hk1, hk2^uint64(len(b)))
	}
	return mix(h, hk0)
}

func hashU32(seed uint64, v uint32) uint64 {
	return mix(seed^uint64(v)^hk1, hk2)
}
