package p4src

import (
	"bytes"
	"math/big"
	"net"
	"net/netip"
	"testing"
)

func TestEncodeUintGivesTheShortestStringThatFits(t *testing.T) {
	tests := []struct {
		v     uint64
		width int
		want  []byte
		bad   bool
	}{
		{0, 8, []byte{0}, false},
		{0, 32, []byte{0}, false},
		{1, 1, []byte{1}, false},
		{2, 1, nil, true},
		{0x0800, 16, []byte{0x08, 0x00}, false},
		{0x7f, 9, []byte{0x7f}, false},
		{0x1ff, 9, []byte{0x01, 0xff}, false},
		{0x200, 9, nil, true},
		{0xffffff, 24, []byte{0xff, 0xff, 0xff}, false},
		{1 << 24, 24, nil, true},
		{0x100, 32, []byte{0x01, 0x00}, false},
		{0xeeeeeeeeeeee, 48, []byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}, false},
		{^uint64(0), 64, bytes.Repeat([]byte{0xff}, 8), false},
		{1, 0, nil, true},
	}
	for _, tc := range tests {
		got, err := EncodeUint(tc.v, tc.width)
		if tc.bad {
			if err == nil {
				t.Errorf("EncodeUint(%#x, %d) = %x, want an error", tc.v, tc.width, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("EncodeUint(%#x, %d) = %x, %v; want %x", tc.v, tc.width, got, err, tc.want)
		}
		if !IsCanonical(got, tc.width) {
			t.Errorf("EncodeUint(%#x, %d) = %x is not canonical", tc.v, tc.width, got)
		}
		back, err := DecodeUint(got, tc.width)
		if err != nil || back != tc.v {
			t.Errorf("DecodeUint(%x, %d) = %#x, %v; want %#x", got, tc.width, back, err, tc.v)
		}
	}
}

func TestCanonicalStripsPaddingAndRejectsOverflow(t *testing.T) {
	tests := []struct {
		in    []byte
		width int
		want  []byte
		bad   bool
	}{
		{[]byte{0, 0, 0, 5}, 32, []byte{5}, false},
		{[]byte{0, 0}, 16, []byte{0}, false},
		{[]byte{}, 8, nil, true},
		{[]byte{0x01, 0x00}, 8, nil, true},
		{[]byte{0x00, 0x01, 0x00}, 9, []byte{0x01, 0x00}, false},
		{[]byte{0x02, 0x00}, 9, nil, true},
		{[]byte{0, 0, 0, 0, 0x80}, 8, []byte{0x80}, false},
	}
	for _, tc := range tests {
		got, err := Canonical(tc.in, tc.width)
		if tc.bad {
			if err == nil {
				t.Errorf("Canonical(%x, %d) = %x, want an error", tc.in, tc.width, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("Canonical(%x, %d) = %x, %v; want %x", tc.in, tc.width, got, err, tc.want)
		}
	}
	if IsCanonical([]byte{0, 1}, 16) {
		t.Error("a padded string is reported canonical")
	}
	if !Fits([]byte{0, 0, 1}, 8) || Fits([]byte{1, 0}, 8) {
		t.Error("Fits ignores padding or overflow")
	}
}

func TestAddressesAndMACsRoundTrip(t *testing.T) {
	for _, s := range []string{"10.65.0.2", "0.0.0.0", "169.254.1.1", "fe80::ecee:eeff:feee:eeee", "::", "fd00:10:244::1"} {
		a := netip.MustParseAddr(s)
		b, err := EncodeAddr(a)
		if err != nil {
			t.Fatalf("EncodeAddr(%s): %v", s, err)
		}
		width := 32
		if a.Is6() {
			width = 128
		}
		if !IsCanonical(b, width) {
			t.Errorf("EncodeAddr(%s) = %x is not canonical", s, b)
		}
		back, err := DecodeAddr(b, width)
		if err != nil || back != a {
			t.Errorf("DecodeAddr(%x) = %v, %v; want %v", b, back, err, a)
		}
	}
	v, plen, err := EncodePrefix(netip.MustParsePrefix("10.65.1.77/26"))
	if err != nil || !bytes.Equal(v, []byte{10, 65, 1, 64}) || plen != 26 {
		t.Errorf("EncodePrefix(10.65.1.77/26) = %x/%d, %v; want host bits cleared", v, plen, err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	mb, err := EncodeMAC(mac)
	if err != nil || !bytes.Equal(mb, []byte{2, 0, 0, 0, 0, 1}) {
		t.Errorf("EncodeMAC = %x, %v", mb, err)
	}
	mac0, _ := net.ParseMAC("00:00:00:00:00:07")
	mb0, _ := EncodeMAC(mac0)
	if !bytes.Equal(mb0, []byte{7}) {
		t.Errorf("EncodeMAC(00:..:07) = %x, want 07", mb0)
	}
	back, err := DecodeMAC(mb0)
	if err != nil || back.String() != "00:00:00:00:00:07" {
		t.Errorf("DecodeMAC = %v, %v", back, err)
	}
}

func TestEncodeBigAndMask(t *testing.T) {
	v, _ := new(big.Int).SetString("fe800000000000000000000000000001", 16)
	b, err := EncodeBig(v, 128)
	if err != nil || len(b) != 16 {
		t.Errorf("EncodeBig(128-bit) = %x, %v", b, err)
	}
	if _, err := EncodeBig(v, 64); err == nil {
		t.Error("EncodeBig accepted a value wider than the field")
	}
	if got := Mask(9); !bytes.Equal(got, []byte{0x01, 0xff}) {
		t.Errorf("Mask(9) = %x", got)
	}
	f, err := DecodeFixed([]byte{5}, 24)
	if err != nil || !bytes.Equal(f, []byte{0, 0, 5}) {
		t.Errorf("DecodeFixed = %x, %v", f, err)
	}
}

func FuzzCanonicalIsIdempotentAndPreservesValue(f *testing.F) {
	f.Add([]byte{0, 1, 2}, 24)
	f.Add([]byte{0xff}, 7)
	f.Add([]byte{}, 8)
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		if width <= 0 || width > 256 {
			return
		}
		c, err := Canonical(b, width)
		if err != nil {
			if Fits(b, width) {
				t.Fatalf("Canonical(%x, %d) failed on a value that fits: %v", b, width, err)
			}
			return
		}
		if !IsCanonical(c, width) {
			t.Fatalf("Canonical(%x, %d) = %x is not canonical", b, width, c)
		}
		if new(big.Int).SetBytes(c).Cmp(new(big.Int).SetBytes(b)) != 0 {
			t.Fatalf("Canonical changed the value of %x", b)
		}
		again, err := Canonical(c, width)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("Canonical is not idempotent on %x", c)
		}
	})
}
