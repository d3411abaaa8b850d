// Package programmer keeps a P4Runtime target equal to a desired entry.Set.
//
// It owns what is installed: it remembers every entry it has written (and
// reads the target back after a manager restart, a target restart or a
// change of primary), computes the inserts, modifies and deletes between
// desired and installed, orders them by dependency (members, then groups,
// then the table entries that use them; deletes in reverse; a changed action
// is a MODIFY so traffic never sees a gap), sends them in batches, handles
// each update's outcome from the target's p4.v1.Error details, and retries
// what failed without re-sending what succeeded. It allocates the numeric
// member and group ids behind the translator's symbolic names, and recovers
// them by content when reading back.
//
// It must not translate (entries arrive as values) and must not talk to a
// target other than through ipu/p4rt.
package programmer
