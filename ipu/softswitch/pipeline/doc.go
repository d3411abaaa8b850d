// Package pipeline is the embedded softswitch's packet pipeline: a Go implementation of
// p4src/k8s.p4 (PNA) over the entries installed through P4Runtime in a tables.Store. It is the
// program's reference model: every behaviour vector in p4src/testdata runs on it in go test.
//
// It owns: the parser (MainParserImpl), the main control (MainControlImpl and one function per table
// group and per action, named after the P4 so the two read side by side: classification,
// conntrackAffinityServices, routingMasqueradePlanning, policyWalk, lastPass, planNextCheck,
// portEndpoint/setEndpoint, ctOrigV4, …), the deparser
// (MainDeparserImpl), recirculation, PNA add_on_miss learning with expire-time profiles, action-selector
// member choice by hash, direct and indexed counters, drop reasons, and the trace
// (calico-p4ctl trace). It must not do I/O (package ports does), hold forwarding state outside the store,
// or allocate per packet on the fast path.
//
// # Using it
//
//	p, err := pipeline.New(pipeline.Options{Store: srv.Store()})   // marks ct_* / affinity_* as learners
//	w, err := p.NewWorker(0)                                       // one per goroutine; id < store workers
//	n := copy(w.Buffer(), frame)                                   // or Process(frame, port), which copies
//	res := w.Run(n, inPort)
//	if res.Forwarded() { send(res.Port, res.Data) }                // Data valid until the next Run
//	tr, err := p.Trace(frame, inPort)                              // dry run: no counters, no learning
//	fmt.Print(tr)
//
// # Semantics
//
//   - One Run is one packet: parse, then MainControlImpl passes until the program decides its fate;
//     recirculate() deparses the packet and parses it again (only when headers moved), keeping the
//     metadata. The pass number (istd.pass) is wide enough never to wrap: PASS_BUDGET ends every walk.
//   - Tables are read lock-free from one snapshot (tables.Store.Load) per packet. A miss runs the
//     table's default action; an action-selector group picks its member by a fixed hash of the selector
//     fields (client address and port), so all workers and restarts agree; a group without a live member
//     runs NoAction.
//   - Learner tables (add_on_miss): a miss action's add_entry inserts the looked-up key with the given
//     action, parameters and expire-time profile (tables.Store.Learn; a full table leaves the flow
//     unlearned, counted); a hit's set_entry_expire_time changes the entry's profile and restarts its
//     timer, restart_expire_timer restarts it. The store's sweep deletes entries idle longer than their
//     profile's timeout (Options.Expiry, default DefaultExpiry).
//   - Counters: direct counters (port_endpoint, nexthop, policy_rule_stats) and drop_counter count into
//     the worker's shard of the store (merged on P4Runtime read). Byte counts use the packet length of
//     the pass that counts.
//   - A pipeline config other than k8s.p4's (ids, key or parameter layouts differ) is refused: packets
//     are dropped (Result.DropReason DROP_NONE) and Err says why.
//   - Result.L3Shift lets the caller move offsets into the packet's unchanged tail (checksum-offload
//     start) across decapsulation and encapsulation.
//
// # Metrics
//
// calico_p4_pipeline_packets_total, _bytes_total, _passes_total, _results_total{result},
// _learn_total{result}: per-worker counters merged on scrape (Pipeline.Stats).
package pipeline
