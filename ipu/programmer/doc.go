// Package programmer keeps a P4Runtime target equal to a desired entry.Set.
//
// It owns what is installed: it remembers every entry it has written (and
// reads the target back after a manager restart, a target restart or a
// change of primary), computes the inserts, modifies and deletes between
// desired and installed, orders them (see "Write order"), sends them,
// handles each update's outcome from the target's p4.v1.Error details, and
// retries what failed without re-sending what succeeded. It allocates the
// numeric member and group ids behind the translator's symbolic names, and
// recovers them by content when reading back.
//
// # Write order
//
// Config.TableOrder ranks the tables (for k8s.p4, p4src.WriteOrder: what is
// relied on first, what admits packets last). A pass writes in stages, each
// a barrier (its writes, retries included, complete before the next stage
// starts): for each rank from the first to the last, its action profiles'
// member inserts and modifies, then group inserts and modifies, then its
// table entry inserts, modifies and default actions; then, for each rank
// from the last to the first, table entry deletes and default resets, group
// deletes, member deletes. An action profile has the rank of the table it
// implements. A stage whose updates keep failing transiently (after
// Config.MaxAttempts) stops the pass: the later stages stay pending and Run
// sends them, in order, once it succeeds. Entries refused for good (invalid)
// or for lack of room (RESOURCE_EXHAUSTED) do not stop the pass; they are
// reported (SyncError, metrics) and the rest is installed.
//
// With the translator's make-before-break (a changed policy's steps get new
// ids, translator/doc.go "Identifiers"), that order means: a new version's
// entries are written before the policy_list MODIFYs that switch to it, and
// the old version's entries are deleted after them; an endpoint's lists,
// endpoint_policy, source guard, next hop and routes are written before the
// port_endpoint that admits its packets, and a removed endpoint is detached
// (port_endpoint deleted) before anything it relied on.
//
// # Write modes and what each target profile guarantees
//
// Atomic (Config.Atomic; programmer.Open's default for p4rt.ProfileEmbedded):
// a pass is one DATAPLANE_ATOMIC write holding every stage's updates in
// order (up to Config.MaxAtomicBytes, default 64 MiB; a larger pass goes as
// ordered atomic chunks). The embedded softswitch applies it as one table
// snapshot and its pipeline reads one snapshot per packet for all of the
// packet's passes, so every packet is processed entirely by the old desired
// state or entirely by the new one. A write that fails is nothing applied:
// it is sent again without the updates that failed for good (table full,
// rejected) — only then is the new state partial, as reported. A pass into
// a target holding nothing of ours (first sync, restarted target) has no
// old state to protect and goes in 2 MiB ordered chunks, each encoded while
// the previous one is on the wire (every prefix of the write order is
// self-consistent). A target that answers UNIMPLEMENTED to atomic writes is
// written in order instead.
//
// Ordered (p4rt.ProfileP4DPDK, p4rt.ProfileIPUES2K: infrap4d does not
// document DATAPLANE_ATOMIC): CONTINUE_ON_ERROR batches of Config.BatchSize,
// stage by stage. Guaranteed even when the target applies every update on
// its own: no endpoint is admitted before its policy, routes and next hop
// are complete; each check runs one version of each policy (a walk that
// entered a version only meets steps of that version); a removed endpoint is
// detached before its policy goes; an IP-set member is added before the
// rules that would see it and removed after. Not guaranteed: a packet whose
// checks run two switched list positions (one program in two checks, or two
// programs changed in one pass, or an endpoint changing both of its lists)
// can see one switched and not the other for the duration of the pass; the
// members of one IP-set delta appear one by one; a packet still walking an
// old version when it is deleted drops (DROP_POLICY_PROGRAM, fail closed) —
// Config.DeleteGrace (1 ms on these profiles) waits between the last modify
// and the first delete so that walks in flight finish first.
//
// It must not translate (entries arrive as values) and must not talk to a
// target other than through ipu/p4rt.
package programmer
