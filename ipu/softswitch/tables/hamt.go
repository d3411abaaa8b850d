package tables

import (
	"math/bits"
	"unsafe"
)

// hamt is a persistent hash array mapped trie from a 64-bit hash to a small slice of values (the values
// whose hash is equal; callers compare keys). Readers walk it without locks. Writers copy the path they
// change, except nodes created by the same edit generation (the current write batch, which no reader
// can see yet): those are changed in place, so a batch of n updates costs about n leaf changes plus one
// copy of each touched path, never a copy of the table.
//
// Layout for the fast path: a leaf lives inline in its parent's kid array (hash and, for the common
// single-value leaf, the value itself), so a lookup costs one cache line per level plus the value.
type hamt[V any] struct {
	root *hnode[V]
	n    int // number of values
}

const (
	hbits  = 5
	hmask  = 1<<hbits - 1
	pbits  = 3                    // a node's 32 slots are kept in parts of 8
	pmask  = 1<<pbits - 1         //
	nparts = 1 << (hbits - pbits) // 4
)

// hnode is an internal node (or, with leaf set, a leaf set). Its kids are split by slot into nparts
// arrays, each compressed by the bitmap (popcount addressing), so a path copy copies the node header
// and the one part on the path (a full node: 64 + 192 bytes) instead of every kid (64 + 768 bytes).
// The other parts are shared with the node it was copied from until they change (owned says which
// parts belong to gen). A part is kept as a pointer to its first kid (its length is the bitmap's
// popcount in that part, its capacity in caps), so the header stays one 64-byte cache line and a
// lookup still reads header then kid.
type hnode[V any] struct {
	bitmap uint32
	owned  uint8 // bit p: parts[p] belongs to gen (may change in place)
	leaf   bool
	caps   [nparts]uint8
	parts  [nparts]unsafe.Pointer // *hkid[V]: see part
	gen    uint64
	vals   *[]V // a multi-value leaf (leaf set): parts unused
}

// part returns the kids of part p (shared with older versions unless owned).
func (n *hnode[V]) part(p uint64) []hkid[V] {
	if n.parts[p] == nil {
		return nil
	}
	l := bits.OnesCount32(n.bitmap >> (p << pbits) & (1<<(1<<pbits) - 1))
	return unsafe.Slice((*hkid[V])(n.parts[p]), int(n.caps[p]))[:l]
}

// setPart points part p at kids (the bitmap must say how many of them are in use).
func (n *hnode[V]) setPart(p uint64, kids []hkid[V]) {
	if cap(kids) == 0 {
		n.parts[p], n.caps[p] = nil, 0
		return
	}
	n.parts[p], n.caps[p] = unsafe.Pointer(unsafe.SliceData(kids)), uint8(cap(kids))
}

const allParts = 1<<nparts - 1

// get addresses parts[idx>>pbits] as &parts + idx&^pmask: a part spans as many slots as a pointer has
// bytes. This fails to compile where that does not hold.
var _ = [1]struct{}{}[unsafe.Sizeof(uintptr(0))-1<<pbits]

// hkid is a child (24 bytes, two pointers, so path copies stay small): a leaf holding one value
// (node == nil: hash, one[0]), a leaf holding several values (node.leaf: hash, node.vals), or an
// internal node.
type hkid[V any] struct {
	hash uint64
	node *hnode[V]
	one  [1]V
}

func (k *hkid[V]) isLeaf() bool { return k.node == nil || k.node.leaf }

func (k *hkid[V]) vals() []V {
	if k.node != nil {
		return *k.node.vals
	}
	return k.one[:]
}

func (k *hkid[V]) setVals(vals []V) {
	if len(vals) == 1 {
		k.one[0] = vals[0]
		k.node = nil
		return
	}
	var zero V
	k.one[0] = zero
	set := vals // only a leaf set's slice header goes to the heap (not every setVals' argument)
	k.node = &hnode[V]{leaf: true, vals: &set}
}

// slot returns the part holding slot idx and the kid's position in it.
func (n *hnode[V]) slot(idx uint64) (p uint64, pos int) {
	p = idx >> pbits
	// The set slots below idx, minus those of the lower parts.
	return p, bits.OnesCount32((n.bitmap & (1<<idx - 1)) >> (p << pbits))
}

// len is the number of kids.
func (n *hnode[V]) len() int { return bits.OnesCount32(n.bitmap) }

// first returns the kid in the lowest slot (n must have one).
func (n *hnode[V]) first() *hkid[V] {
	return &n.part(uint64(bits.TrailingZeros32(n.bitmap)) >> pbits)[0]
}

// get returns the values stored under hash h (nil if none). The slice must not be modified.
func (m *hamt[V]) get(h uint64) []V {
	n := m.root
	shift := uint(0)
	for n != nil {
		idx := (h >> shift) & hmask
		if n.bitmap&(1<<idx) == 0 {
			return nil
		}
		// parts[idx>>pbits] is 8 bytes per part at &parts + idx&^pmask; the kid's position in it
		// is the count of set slots below idx minus those of the lower parts.
		off := idx &^ pmask
		base := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(&n.parts), off))
		pos := bits.OnesCount32((n.bitmap & (1<<idx - 1)) >> off)
		k := (*hkid[V])(unsafe.Add(base, uintptr(pos)*unsafe.Sizeof(hkid[V]{})))
		if k.node == nil {
			if k.hash == h {
				return k.one[:]
			}
			return nil
		}
		if k.node.leaf {
			if k.hash == h {
				return *k.node.vals
			}
			return nil
		}
		n = k.node
		shift += hbits
	}
	return nil
}

// update replaces the values under hash h by f(old). f receives the current values (nil if none) and
// an owned flag: true if the slice may be modified in place (it belongs to this generation). An empty
// result removes the hash. delta is the change in value count reported by the caller.
func (m *hamt[V]) update(gen uint64, h uint64, delta int, f func(old []V, owned bool) []V) {
	if m.root == nil {
		m.root = &hnode[V]{gen: gen, owned: allParts}
	} else if m.root.gen != gen {
		m.root = m.root.clone(gen, (h&hmask)>>pbits)
	}
	m.root.update(gen, h, 0, f)
	m.n += delta
}

// clone copies n's header for gen; its parts stay shared until own copies them. A node of up to
// maxSmall kids is copied whole instead (see small), with room for one more kid in part grow, the part
// the caller is about to change.
func (n *hnode[V]) clone(gen uint64, grow uint64) *hnode[V] {
	if k := n.len(); k < maxSmall {
		c, buf := newSmall[V](k + 1)
		c.bitmap, c.gen, c.owned = n.bitmap, gen, allParts
		off := 0
		for p := range uint64(nparts) {
			kids := n.part(p)
			room := len(kids)
			if p == grow {
				room++
			}
			if room == 0 {
				continue
			}
			copy(buf[off:], kids)
			c.setPart(p, buf[off:off+len(kids):off+room])
			off += room
		}
		return c
	}
	c := *n
	c.gen = gen
	c.owned = 0
	return &c
}

// Small nodes. Most nodes of a large trie are near the leaves and hold 2 to 4 kids spread over several
// parts; as a header plus one array per part they cost the garbage collector 3 to 5 objects each (the
// collector's mark work is mostly per object). A small node is allocated as one object, header and kids
// together, every part a window of the inline array: a fresh node on a push-down, and the copy of a
// node of fewer than maxSmall kids on a path copy (which copies 64 + 24·k bytes instead of a header plus
// one part: about the same). A part outgrowing its window moves to an array of its own, as any part.
const maxSmall = 8

type hnode2[V any] struct {
	n    hnode[V]
	kids [2]hkid[V]
}

type hnode4[V any] struct {
	n    hnode[V]
	kids [4]hkid[V]
}

type hnode8[V any] struct {
	n    hnode[V]
	kids [8]hkid[V]
}

// newSmall returns a node and inline room for k <= maxSmall kids, in one allocation.
func newSmall[V any](k int) (*hnode[V], []hkid[V]) {
	switch {
	case k <= 2:
		s := new(hnode2[V])
		return &s.n, s.kids[:]
	case k <= 4:
		s := new(hnode4[V])
		return &s.n, s.kids[:]
	default:
		s := new(hnode8[V])
		return &s.n, s.kids[:]
	}
}

// own makes part p belong to n's generation, copying it (with room for extra more kids) if shared.
func (n *hnode[V]) own(p uint64, extra int) {
	if n.owned&(1<<p) != 0 {
		return
	}
	old := n.part(p)
	if len(old)+extra > 0 {
		c := make([]hkid[V], len(old), len(old)+extra)
		copy(c, old)
		n.setPart(p, c)
	}
	n.owned |= 1 << p
}

// update works on a node owned by gen.
func (n *hnode[V]) update(gen, h uint64, shift uint, f func([]V, bool) []V) {
	idx := (h >> shift) & hmask
	bit := uint32(1) << idx
	p, pos := n.slot(idx)
	if n.bitmap&bit == 0 {
		vals := f(nil, false)
		if len(vals) == 0 {
			return
		}
		n.own(p, 1)
		kids := append(n.part(p), hkid[V]{})
		copy(kids[pos+1:], kids[pos:])
		kids[pos] = hkid[V]{hash: h}
		kids[pos].setVals(vals)
		n.setPart(p, kids)
		n.bitmap |= bit
		return
	}
	k := &n.part(p)[pos]
	if k.isLeaf() {
		if k.hash == h {
			// Once the part belongs to gen, a single inline value may change in place; a leaf set
			// may be shared with published snapshots.
			n.own(p, 0)
			k = &n.part(p)[pos]
			vals := f(k.vals(), k.node == nil)
			if len(vals) == 0 {
				n.remove(p, pos, bit)
				return
			}
			k.setVals(vals)
			return
		}
		// A different hash shares this slot: push the existing leaf one level down.
		vals := f(nil, false)
		if len(vals) == 0 {
			return
		}
		if shift+hbits >= 64 {
			panic("tables: hamt depth exhausted") // distinct 64-bit hashes always differ within 13 levels
		}
		n.own(p, 0)
		k = &n.part(p)[pos]
		old := *k
		oidx := (old.hash >> (shift + hbits)) & hmask
		nidx := (h >> (shift + hbits)) & hmask
		sub, buf := newSmall[V](2)
		sub.gen, sub.owned, sub.bitmap = gen, allParts, 1<<oidx
		buf[0] = old
		if oidx>>pbits == nidx>>pbits {
			sub.setPart(oidx>>pbits, buf[0:1:2])
		} else {
			sub.setPart(oidx>>pbits, buf[0:1:1])
			sub.setPart(nidx>>pbits, buf[1:1:2])
		}
		*k = hkid[V]{node: sub}
		sub.update(gen, h, shift+hbits, func([]V, bool) []V { return vals })
		return
	}
	child := k.node
	if child.gen != gen {
		n.own(p, 0)
		k = &n.part(p)[pos]
		child = child.clone(gen, ((h>>(shift+hbits))&hmask)>>pbits)
		k.node = child
	}
	child.update(gen, h, shift+hbits, f)
	switch {
	case child.len() == 0:
		n.own(p, 0)
		n.remove(p, pos, bit)
	case child.len() == 1 && child.first().isLeaf():
		// Collapse a node holding a single leaf into its parent.
		n.own(p, 0)
		n.part(p)[pos] = *child.first()
	}
}

// remove drops the kid at pos of part p (owned by gen).
func (n *hnode[V]) remove(p uint64, pos int, bit uint32) {
	kids := n.part(p)
	copy(kids[pos:], kids[pos+1:])
	kids[len(kids)-1] = hkid[V]{}
	n.bitmap &^= bit // the part's length follows the bitmap; its array and capacity stay
}

// each calls f for every value until f returns false. Order is by hash, stable for a given trie.
func (m *hamt[V]) each(f func(V) bool) bool {
	if m.root == nil {
		return true
	}
	return m.root.each(f)
}

func (n *hnode[V]) each(f func(V) bool) bool {
	for p := range n.parts {
		if !eachKid(n.part(uint64(p)), f) {
			return false
		}
	}
	return true
}

func eachKid[V any](kids []hkid[V], f func(V) bool) bool {
	for i := range kids {
		k := &kids[i]
		if k.isLeaf() {
			for _, v := range k.vals() {
				if !f(v) {
					return false
				}
			}
			continue
		}
		if !k.node.each(f) {
			return false
		}
	}
	return true
}
