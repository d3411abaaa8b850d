package model

import (
	"iter"
	"maps"
	"slices"
)

// Table is one kind of object of a State, keyed by K. Its exported methods only read; deterministic
// iteration (Keys, All) is in key order.
type Table[K comparable, V any] struct {
	kind Kind
	m    map[K]V
	cmp  func(a, b K) int
	eq   func(a, b V) bool
	// touched records, for every key changed since the last takeChanges, whether it existed then.
	touched map[K]bool
}

func newTable[K comparable, V any](kind Kind, cmp func(a, b K) int, eq func(a, b V) bool) *Table[K, V] {
	return &Table[K, V]{kind: kind, m: map[K]V{}, cmp: cmp, eq: eq, touched: map[K]bool{}}
}

// Kind is the kind of object the table holds.
func (t *Table[K, V]) Kind() Kind { return t.kind }

// Get returns the object with key k.
func (t *Table[K, V]) Get(k K) (V, bool) {
	v, ok := t.m[k]
	return v, ok
}

// Has reports whether an object with key k exists.
func (t *Table[K, V]) Has(k K) bool {
	_, ok := t.m[k]
	return ok
}

// Len is the number of objects.
func (t *Table[K, V]) Len() int { return len(t.m) }

// Keys returns the keys in order.
func (t *Table[K, V]) Keys() []K {
	keys := slices.Collect(maps.Keys(t.m))
	slices.SortFunc(keys, t.cmp)
	return keys
}

// All iterates over the objects in key order.
func (t *Table[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for _, k := range t.Keys() {
			if !yield(k, t.m[k]) {
				return
			}
		}
	}
}

func (t *Table[K, V]) touch(k K, existed bool) {
	if _, seen := t.touched[k]; !seen {
		t.touched[k] = existed
	}
}

// put stores v under k unless an equal object is already there; it reports whether anything changed.
func (t *Table[K, V]) put(k K, v V) bool {
	old, existed := t.m[k]
	if existed && t.eq(old, v) {
		return false
	}
	t.touch(k, existed)
	t.m[k] = v
	return true
}

// remove deletes k; it reports whether it existed.
func (t *Table[K, V]) remove(k K) bool {
	if _, existed := t.m[k]; !existed {
		return false
	}
	t.touch(k, true)
	delete(t.m, k)
	return true
}

func (t *Table[K, V]) clone() *Table[K, V] {
	return &Table[K, V]{kind: t.kind, m: maps.Clone(t.m), cmp: t.cmp, eq: t.eq, touched: map[K]bool{}}
}

// replaceFrom makes t hold exactly n's objects (n must not be used afterwards), recording as changes only
// the keys whose objects differ.
func (t *Table[K, V]) replaceFrom(n *Table[K, V]) {
	for k, old := range t.m {
		if nv, ok := n.m[k]; !ok || !t.eq(old, nv) {
			t.touch(k, true)
		}
	}
	for k := range n.m {
		if _, ok := t.m[k]; !ok {
			t.touch(k, false)
		}
	}
	t.m = n.m
}

// takeChanges returns the changes since the previous call and starts a new change set.
func (t *Table[K, V]) takeChanges() KeyChanges[K] {
	out := KeyChanges[K]{cmp: t.cmp}
	for k, existed := range t.touched {
		_, exists := t.m[k]
		var ct ChangeType
		switch {
		case !existed && exists:
			ct = Added
		case existed && exists:
			ct = Updated
		case existed && !exists:
			ct = Removed
		default:
			continue // added and removed again: nothing to do
		}
		if out.m == nil {
			out.m = map[K]ChangeType{}
		}
		out.m[k] = ct
	}
	t.touched = map[K]bool{}
	return out
}

// restoreChanges puts back changes taken earlier (e.g. after a failed apply) under the changes recorded
// since: the older record of whether a key existed wins.
func (t *Table[K, V]) restoreChanges(c KeyChanges[K]) {
	for k, ct := range c.m {
		t.touched[k] = ct != Added
	}
}

func (t *Table[K, V]) pendingChanges() int { return len(t.touched) }

// unit is the key of single-object tables (config, encapsulation, BGP configuration).
type unit struct{}

func compareUnit(unit, unit) int { return 0 }
