package tables

import "math/bits"

// hamt is a persistent hash array mapped trie from a 64-bit hash to a small slice of values (the values
// whose hash is equal; callers compare keys). Readers walk it without locks. Writers copy the path they
// change, except nodes created by the same edit generation (the current write batch, which no reader
// can see yet): those are changed in place, so a batch of n updates costs about n leaf changes plus one
// copy of each touched path, never a copy of the table.
type hamt[V any] struct {
	root *hnode[V]
	n    int // number of values
}

const (
	hbits  = 5
	hwidth = 1 << hbits
	hmask  = hwidth - 1
)

type hnode[V any] struct {
	bitmap uint32
	gen    uint64
	kids   []hkid[V]
}

type hkid[V any] struct {
	node *hnode[V]
	leaf *hleaf[V]
}

type hleaf[V any] struct {
	hash uint64
	gen  uint64
	vals []V
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
		if k.leaf != nil {
			if k.leaf.hash == h {
				return k.leaf.vals
			}
			return nil
		}
		n = k.node
		shift += hbits
	}
	return nil
}

// update replaces the values under hash h by f(old). f receives the current slice (nil if none) and
// an owned flag: true if the slice belongs to this generation and may be modified in place. An empty
// result removes the hash. delta is the change in value count reported by the caller.
func (m *hamt[V]) update(gen uint64, h uint64, delta int, f func(old []V, owned bool) []V) {
	if m.root == nil {
		m.root = &hnode[V]{gen: gen}
	} else if m.root.gen != gen {
		m.root = m.root.clone(gen)
	}
	m.root.update(gen, h, 0, f)
	m.n += delta
}

func (n *hnode[V]) clone(gen uint64) *hnode[V] {
	c := &hnode[V]{bitmap: n.bitmap, gen: gen, kids: make([]hkid[V], len(n.kids), len(n.kids)+1)}
	copy(c.kids, n.kids)
	return c
}

// update works on a node owned by gen.
func (n *hnode[V]) update(gen, h uint64, shift uint, f func([]V, bool) []V) {
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
		n.kids[pos] = hkid[V]{leaf: &hleaf[V]{hash: h, gen: gen, vals: vals}}
		n.bitmap |= bit
		return
	}
	k := &n.kids[pos]
	if k.leaf != nil {
		if k.leaf.hash == h {
			owned := k.leaf.gen == gen
			vals := f(k.leaf.vals, owned)
			if len(vals) == 0 {
				n.remove(pos, bit)
				return
			}
			if owned {
				k.leaf.vals = vals
			} else {
				k.leaf = &hleaf[V]{hash: h, gen: gen, vals: vals}
			}
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
		sub := &hnode[V]{gen: gen}
		old := k.leaf
		oidx := (old.hash >> (shift + hbits)) & hmask
		sub.bitmap = 1 << oidx
		sub.kids = []hkid[V]{{leaf: old}}
		k.leaf = nil
		k.node = sub
		sub.update(gen, h, shift+hbits, func([]V, bool) []V { return vals })
		return
	}
	child := k.node
	if child.gen != gen {
		child = child.clone(gen)
		k.node = child
	}
	child.update(gen, h, shift+hbits, f)
	switch {
	case len(child.kids) == 0:
		n.remove(pos, bit)
	case len(child.kids) == 1 && child.kids[0].leaf != nil:
		// Collapse a node holding a single leaf into its parent.
		k.node = nil
		k.leaf = child.kids[0].leaf
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
		if k.leaf != nil {
			for _, v := range k.leaf.vals {
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
