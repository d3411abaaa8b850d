package tables

import "math/bits"

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
	hbits = 5
	hmask = 1<<hbits - 1
)

type hnode[V any] struct {
	bitmap uint32
	gen    uint64
	kids   []hkid[V]
	vals   []V // a multi-value leaf (leaf set): kids unused
	leaf   bool
}

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
		return k.node.vals
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
	k.node = &hnode[V]{leaf: true, vals: vals}
}

// get returns the values stored under hash h (nil if none). The slice must not be modified.
func (m *hamt[V]) get(h uint64) []V {
	n := m.root
	shift := uint(0)
	for n != nil {
		bit := uint32(1) << ((h >> shift) & hmask)
		if n.bitmap&bit == 0 {
			return nil
		}
		k := &n.kids[bits.OnesCount32(n.bitmap&(bit-1))]
		if k.node == nil {
			if k.hash == h {
				return k.one[:]
			}
			return nil
		}
		if k.node.leaf {
			if k.hash == h {
				return k.node.vals
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
		m.root = &hnode[V]{gen: gen}
	} else if m.root.gen != gen {
		m.root = m.root.clone(gen, delta > 0)
	}
	m.root.update(gen, h, 0, delta > 0, f)
	m.n += delta
}

// clone copies n for gen. grow: the edit may add a kid, so room for one more is reserved (a replace or a
// removal copies exactly: a full node's 32 kids are 768 bytes, 33 would take a 896-byte size class).
func (n *hnode[V]) clone(gen uint64, grow bool) *hnode[V] {
	c := len(n.kids)
	if grow && c < 1<<hbits {
		c++
	}
	cl := &hnode[V]{bitmap: n.bitmap, gen: gen, kids: make([]hkid[V], len(n.kids), c)}
	copy(cl.kids, n.kids)
	return cl
}

// update works on a node owned by gen.
func (n *hnode[V]) update(gen, h uint64, shift uint, grow bool, f func([]V, bool) []V) {
	idx := (h >> shift) & hmask
	bit := uint32(1) << idx
	pos := bits.OnesCount32(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		vals := f(nil, false)
		if len(vals) == 0 {
			return
		}
		n.kids = append(n.kids, hkid[V]{})
		copy(n.kids[pos+1:], n.kids[pos:])
		n.kids[pos] = hkid[V]{hash: h}
		n.kids[pos].setVals(vals)
		n.bitmap |= bit
		return
	}
	k := &n.kids[pos]
	if k.isLeaf() {
		if k.hash == h {
			// The kid array belongs to gen, so a single inline value may change in place; a leaf
			// set may be shared with published snapshots.
			vals := f(k.vals(), k.node == nil)
			if len(vals) == 0 {
				n.remove(pos, bit)
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
		old := *k
		oidx := (old.hash >> (shift + hbits)) & hmask
		sub := &hnode[V]{gen: gen, bitmap: 1 << oidx, kids: make([]hkid[V], 1, 2)}
		sub.kids[0] = old
		*k = hkid[V]{node: sub}
		sub.update(gen, h, shift+hbits, true, func([]V, bool) []V { return vals })
		return
	}
	child := k.node
	if child.gen != gen {
		child = child.clone(gen, grow)
		k.node = child
	}
	child.update(gen, h, shift+hbits, grow, f)
	switch {
	case len(child.kids) == 0:
		n.remove(pos, bit)
	case len(child.kids) == 1 && child.kids[0].isLeaf():
		// Collapse a node holding a single leaf into its parent.
		*k = child.kids[0]
	}
}

func (n *hnode[V]) remove(pos int, bit uint32) {
	copy(n.kids[pos:], n.kids[pos+1:])
	n.kids[len(n.kids)-1] = hkid[V]{}
	n.kids = n.kids[:len(n.kids)-1]
	n.bitmap &^= bit
}

// each calls f for every value until f returns false. Order is by hash, stable for a given trie.
func (m *hamt[V]) each(f func(V) bool) bool {
	if m.root == nil {
		return true
	}
	return m.root.each(f)
}

func (n *hnode[V]) each(f func(V) bool) bool {
	for i := range n.kids {
		k := &n.kids[i]
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
