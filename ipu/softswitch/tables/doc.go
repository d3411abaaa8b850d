// Package tables is the embedded target's forwarding state: the P4Runtime object model of any P4Info
// (tables, action profiles and selectors, counters, registers, digest configs) in indexed structures
// that the packet pipeline reads lock-free while the P4Runtime server writes.
//
// It owns: compiling a P4Info into a Schema (fixed key and parameter layouts), validating and applying
// P4Runtime updates with the spec's status codes, answering P4Runtime reads, snapshots for the data
// plane, data-plane learning (PNA add_on_miss), expiry and idle-timeout scans, and per-worker counters.
// It must not know any particular P4 program (k8s.p4 semantics live in the pipeline), do I/O, or log.
//
// # Snapshots
//
// A Store holds immutable *State snapshots. The pipeline calls Store.Load once per packet or burst and
// does every lookup on that snapshot without locks. Writers (control-plane batches, Learn, Sweep)
// serialise on one mutex and build the next State by path copying: tables are persistent hash tries, so
// inserting one entry into a 100k-entry table copies a handful of small nodes, and nodes created by the
// current batch are changed in place. A batch is published with one atomic pointer store, so
// DATAPLANE_ATOMIC and ROLLBACK_ON_ERROR come for free (a failed batch is simply not published).
// CONTINUE_ON_ERROR batches are published to the data plane every Options.ChunkSize updates so that
// learning is never blocked for long; Read sees a batch only once it is complete.
//
// A MODIFY does not touch the trie: the entry in the trie is an identity onto which the modify pushes a
// new version (versions.go), so a batch of modifies costs a slab slot per update and no trie node. A
// snapshot reads the version current at its edit generation: State.Lookup, State.Each, State.Resolve,
// State.Version and Read resolve it (the newest version, or the one before, or, for a snapshot older
// than that, the one recorded in the overlay a later batch linked when it was published). Once a batch
// is published the newest versions drop their link to the ones they replaced, so those stay reachable
// only from older snapshots somebody still holds. A modified entry holds two slots (identity and newest
// version); Sweep folds entries versioned for Options.CollapseAge back into one, Options.CollapseBudget
// per sweep (a path copy each, off the write path), so a table at rest costs one slot per entry.
//
// Entries written by the control plane are allocated from per-table slabs (slab.go) and small trie
// nodes are single objects, so the long-lived state is few objects for the garbage collector to mark; a
// slot is written once before publication and never reused, and slabs emptied by churn are compacted.
//
// # Lookup structures
//
// Every table is a tuple-space search: entries are grouped by mask (exact fields all ones, lpm prefix
// masks, ternary masks, optional all-or-nothing, range fields all ones when low == high, else zero and
// checked per entry). Each group is a persistent hash of key&mask; groups are ordered by the highest rank
// they hold (priority, or prefix length for lpm tables without priorities), so a lookup stops at the
// first group that cannot beat the best hit. An exact table is one group: one hash probe. An lpm table
// is one group per prefix length present, longest first: the first hit wins. A ternary/range table
// probes each distinct mask until the remaining groups rank below the hit.
//
// # Fast-path API (zero allocation)
//
// Keys are a fixed-width concatenation of the match fields in P4Info order; field i occupies
// Key[f.Offset : f.Offset+f.Width] with f = TableInfo.Fields[i], big-endian, Width = (Bitwidth+7)/8,
// unused high bits zero. The pipeline builds keys in its own pre-allocated buffers:
//
//	st := store.Load()                      // once per packet / burst
//	t := st.Table(idx)                      // idx bound by name once per Schema (st.Schema pointer changes on a new config)
//	e := st.Lookup(t, key[:t.Info.KeyLen])  // nil on miss; the entry as this snapshot sees it
//	if e == nil { e = t.Default() }
//	act := st.Resolve(e, flowHash)          // direct action, member, or selector pick (nil: empty group)
//	port := tables.U64(act.Param(0))        // params at ActionInfo.Params[i].Offset, fixed width
//	st.AddDirect(worker, t, e.Handle, n)    // direct counter, in the worker's shard
//	st.Touch(t, e.Handle, now)              // idle timeout / PNA restart_expire_timer (now = store.Now())
//
// Indexed counters: st.AddCounter(worker, c, index, bytes) with c = CounterInfo.Index. Registers up to 64
// bits: st.RegisterRead / RegisterWrite. Selector groups choose a member by weight from the hash and skip
// members whose watch port is down (Store.SetPortDown). Learner tables (Options.Learners or
// Store.SetLearner by table name) take data-plane inserts with Store.Learn / TryLearn and lose learned
// entries whose expire-time profile elapsed since the last Touch when Store.Sweep runs.
//
// Learner tables are not part of the snapshots: they are data-plane volatile (P4Runtime §8.3.1), so
// every snapshot of a pipeline config shares one live concurrent hash per learner table (lock-free reads,
// immutable chains, writers under the store lock). A learned entry is visible to every reader at once and
// a learn costs a hash insert (≈0.6 µs), not a snapshot. Control-plane writes to a learner table are
// applied live too: ROLLBACK_ON_ERROR undoes them, and a DATAPLANE_ATOMIC batch that includes one is
// refused with UNIMPLEMENTED (the spec's answer for batches a target cannot make atomic).
//
// Counters are sharded per worker (Options.Workers): worker w writes only shard w with atomic loads and
// stores, so a worker id must be used by one goroutine at a time; reads sum the shards, and a control-plane
// write records an offset instead of touching the shards.
//
// # Validation
//
// Writes are validated as P4Runtime 1.4 specifies (§9.1 table entries, §9.2 action profiles, §9.3
// counters, §9.9 registers, §9.10 digests, §8.4 bytestrings). Bytestrings may carry leading zero bytes
// (the spec requires servers to accept them; Options.RequireCanonical rejects them); a value wider than
// its field, or an empty bytestring, is OUT_OF_RANGE; every other malformed entity is INVALID_ARGUMENT,
// and the resource-specific codes are ALREADY_EXISTS, NOT_FOUND, RESOURCE_EXHAUSTED (table, profile or
// group full), FAILED_PRECONDITION (member or group still referenced), PERMISSION_DENIED (action scope,
// const tables and const default actions) and UNIMPLEMENTED (meters, PRE, value sets, externs). Reads
// return canonical bytestrings.
package tables
