package pipeline

// csum is PNA's InternetChecksum extern: a 16-bit ones' complement sum.
type csum struct{ s uint32 }

func (c *csum) clear()            { c.s = 0 }
func (c *csum) setState(v uint16) { c.s = uint32(v) }
func (c *csum) get() uint16       { return ^c.fold() }
func (c *csum) add16(v uint16)    { c.s += uint32(v) }
func (c *csum) sub16(v uint16)    { c.s += uint32(^v) }
func (c *csum) add32(v uint32)    { c.s += v>>16 + v&0xffff }
func (c *csum) sub32(v uint32)    { c.s += uint32(^uint16(v>>16)) + uint32(^uint16(v)) }
func (c *csum) addBytes(b []byte) { // len(b) even
	for i := 0; i+1 < len(b); i += 2 {
		c.s += uint32(b[i])<<8 | uint32(b[i+1])
	}
}
func (c *csum) subBytes(b []byte) {
	for i := 0; i+1 < len(b); i += 2 {
		c.s += uint32(^(uint16(b[i])<<8 | uint16(b[i+1])))
	}
}

// fold reduces the sum to 16 bits with end-around carries (never 0 unless every word added was 0).
func (c *csum) fold() uint16 {
	s := c.s
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	c.s = s
	return uint16(s)
}
