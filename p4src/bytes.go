package p4src

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
)

// P4Runtime 1.4 (§8.4) encodes every bit<W> value as a big-endian byte
// string.  The canonical form is the shortest string that holds the value:
// no leading zero bytes, and the value 0 is the single byte 0x00.  A value
// must fit in W bits.  Servers must return canonical strings and accept
// them; these helpers produce canonical strings and accept any string of at
// most ceil(W/8) bytes whose value fits.

// ErrEmpty is returned for a zero-length byte string, which encodes nothing.
var ErrEmpty = errors.New("empty byte string")

// byteLen is the number of bytes a W-bit value occupies when padded.
func byteLen(bitwidth int) int { return (bitwidth + 7) / 8 }

func checkWidth(bitwidth int) error {
	if bitwidth <= 0 {
		return fmt.Errorf("bit width %d is not positive", bitwidth)
	}
	return nil
}

// Canonical returns the canonical form of a big-endian byte string for a
// bitwidth-bit field, or an error if it is empty or does not fit.
func Canonical(b []byte, bitwidth int) ([]byte, error) {
	if err := checkWidth(bitwidth); err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, ErrEmpty
	}
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	out := b[i:]
	if !fitsStripped(out, bitwidth) {
		return nil, fmt.Errorf("value 0x%x does not fit in %d bits", b, bitwidth)
	}
	return append([]byte(nil), out...), nil
}

// IsCanonical reports whether b is the canonical encoding of a value that
// fits in bitwidth bits.
func IsCanonical(b []byte, bitwidth int) bool {
	if bitwidth <= 0 || len(b) == 0 || (len(b) > 1 && b[0] == 0) {
		return false
	}
	return fitsStripped(b, bitwidth)
}

// Fits reports whether the value of b (any padding) fits in bitwidth bits.
func Fits(b []byte, bitwidth int) bool {
	if bitwidth <= 0 || len(b) == 0 {
		return false
	}
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	return fitsStripped(b[i:], bitwidth)
}

// fitsStripped: b has no leading zero byte (or is a single byte).
func fitsStripped(b []byte, bitwidth int) bool {
	if len(b) > byteLen(bitwidth) {
		return false
	}
	if len(b) < byteLen(bitwidth) {
		return true
	}
	extra := byteLen(bitwidth)*8 - bitwidth // unused high bits of the first byte
	return b[0]>>(8-extra) == 0 || extra == 0
}

// EncodeUint encodes v for a bitwidth-bit field.
func EncodeUint(v uint64, bitwidth int) ([]byte, error) {
	if err := checkWidth(bitwidth); err != nil {
		return nil, err
	}
	if bitwidth < 64 && v>>uint(bitwidth) != 0 {
		return nil, fmt.Errorf("value %d does not fit in %d bits", v, bitwidth)
	}
	var buf [8]byte
	for i := 7; i >= 0; i-- {
		buf[i] = byte(v)
		v >>= 8
	}
	return Canonical(buf[:], 64)
}

// MustEncodeUint is EncodeUint for values known to fit (constants).
func MustEncodeUint(v uint64, bitwidth int) []byte {
	b, err := EncodeUint(v, bitwidth)
	if err != nil {
		panic(err)
	}
	return b
}

// EncodeBig encodes a non-negative big integer for a bitwidth-bit field.
func EncodeBig(v *big.Int, bitwidth int) ([]byte, error) {
	if err := checkWidth(bitwidth); err != nil {
		return nil, err
	}
	if v.Sign() < 0 {
		return nil, fmt.Errorf("negative value %v", v)
	}
	if v.BitLen() > bitwidth {
		return nil, fmt.Errorf("value %v does not fit in %d bits", v, bitwidth)
	}
	if v.Sign() == 0 {
		return []byte{0}, nil
	}
	return v.Bytes(), nil
}

// EncodeBytes encodes a big-endian value of any length (e.g. a 16-byte IPv6
// address) for a bitwidth-bit field.
func EncodeBytes(b []byte, bitwidth int) ([]byte, error) { return Canonical(b, bitwidth) }

// EncodeAddr encodes an IPv4 (32-bit field) or IPv6 (128-bit field) address.
func EncodeAddr(a netip.Addr) ([]byte, error) {
	if !a.IsValid() {
		return nil, errors.New("invalid IP address")
	}
	if a.Is4() || a.Is4In6() {
		v := a.Unmap().As4()
		return Canonical(v[:], 32)
	}
	v := a.As16()
	return Canonical(v[:], 128)
}

// EncodePrefix encodes an LPM match: the canonical value of the masked
// address and the prefix length.  Host bits must be zero (P4Runtime rejects
// them), so the prefix is masked here.
func EncodePrefix(p netip.Prefix) ([]byte, int32, error) {
	if !p.IsValid() {
		return nil, 0, errors.New("invalid prefix")
	}
	p = p.Masked()
	b, err := EncodeAddr(p.Addr())
	if err != nil {
		return nil, 0, err
	}
	return b, int32(p.Bits()), nil
}

// EncodeMAC encodes a 48-bit MAC address.
func EncodeMAC(mac net.HardwareAddr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("MAC %v is not 48 bits", mac)
	}
	return Canonical(mac, 48)
}

// DecodeUint decodes a byte string of a field of at most 64 bits.
func DecodeUint(b []byte, bitwidth int) (uint64, error) {
	if err := checkWidth(bitwidth); err != nil {
		return 0, err
	}
	if bitwidth > 64 {
		return 0, fmt.Errorf("a %d-bit field does not fit a uint64", bitwidth)
	}
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	if !Fits(b, bitwidth) {
		return 0, fmt.Errorf("value 0x%x does not fit in %d bits", b, bitwidth)
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// DecodeFixed decodes a byte string into exactly ceil(bitwidth/8) bytes,
// big-endian and zero-padded: the representation a pipeline stores.
func DecodeFixed(b []byte, bitwidth int) ([]byte, error) {
	if err := checkWidth(bitwidth); err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, ErrEmpty
	}
	if !Fits(b, bitwidth) {
		return nil, fmt.Errorf("value 0x%x does not fit in %d bits", b, bitwidth)
	}
	n := byteLen(bitwidth)
	out := make([]byte, n)
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	copy(out[n-len(b[i:]):], b[i:])
	return out, nil
}

// DecodeAddr decodes a 32-bit field as IPv4 or a 128-bit field as IPv6.
func DecodeAddr(b []byte, bitwidth int) (netip.Addr, error) {
	switch bitwidth {
	case 32, 128:
	default:
		return netip.Addr{}, fmt.Errorf("a %d-bit field is not an IP address", bitwidth)
	}
	f, err := DecodeFixed(b, bitwidth)
	if err != nil {
		return netip.Addr{}, err
	}
	a, _ := netip.AddrFromSlice(f)
	return a, nil
}

// DecodeMAC decodes a 48-bit field as a MAC address.
func DecodeMAC(b []byte) (net.HardwareAddr, error) {
	f, err := DecodeFixed(b, 48)
	if err != nil {
		return nil, err
	}
	return net.HardwareAddr(f), nil
}

// Mask returns the canonical all-ones mask of a bitwidth-bit field (for
// ternary matches that must match the whole field).
func Mask(bitwidth int) []byte {
	v := new(big.Int).Lsh(big.NewInt(1), uint(bitwidth))
	v.Sub(v, big.NewInt(1))
	b, _ := EncodeBig(v, bitwidth)
	return b
}
