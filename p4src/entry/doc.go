// Package entry is the canonical value of one piece of P4Runtime-visible
// forwarding state: a table entry, the default action of a table, an
// action-profile member or an action-profile group.
//
// The translator produces entries; the programmer (ipu/programmer) consumes
// them, diffs them against what is installed and has ipu/p4rt encode them.
// Everything here is named the way the P4Info names it (tables, match fields,
// actions, params, action profiles). Members and groups are referred to by a
// stable symbolic name chosen by the translator (for example
// "svc/ns/name/tcp/80"); the numeric P4Runtime member and group ids are
// allocated and owned by the programmer, so recomputing the same desired state
// after a restart yields identical values.
//
// Byte strings (match values, masks, params) are held in P4Runtime's
// canonical form: big-endian, shortest string, zero is a single zero byte. The
// constructors canonicalise what they are given; Validate reports what cannot
// be fixed without the P4Info.
//
// A Set journals its changes, so a consumer that keeps one Set and mutates it
// in place (Put, Delete) lets the programmer sync in time proportional to the
// change rather than to the size of the set; handing over a freshly built Set
// is always correct, but costs a full comparison. A producer building a large
// set that nobody has seen yet may suspend the journal meanwhile
// (SuspendJournal), and may label each entry with its owner (Claim, Owner,
// SetOwner: one index for both instead of a map beside the set). Entries are
// stored packed (Packed: the part of an entry its key does not hold, as bytes) in pointer-free chunks, so
// a large set costs the garbage collector almost nothing to mark; Get and All unpack a fresh copy, and
// Pack, Set.Changed and Unpack let a consumer keep and compare entries in that form.
//
// This package must not know P4Runtime ids, must not do I/O and must not
// depend on a particular P4 program. Validation against a P4Info (unknown
// table, field, action or param, wrong width, missing priority) belongs to
// the encoder in ipu/p4rt.
package entry
