// Package softswitch is the embedded software target's P4Runtime server: a strict implementation of the
// p4.v1.P4Runtime service (P4Runtime 1.4, github.com/p4lang/p4runtime v1.4.1) over the table store in
// package tables. It serves any P4Info; it does not know k8s.p4 (the packet pipeline, ipu/softswitch/pipeline,
// reads the store and calls the hooks below).
//
// It owns: the gRPC service, client arbitration, StreamChannel traffic (packet-in/out on the CPU port,
// digest lists, idle-timeout notifications), write/read error reporting, metrics and the /debug dump.
// It must not process packets or hold forwarding state outside the store.
//
// # Using it
//
//	srv, err := softswitch.New(softswitch.Config{DeviceID: 1, Logger: log, Registry: reg})
//	lis, _ := net.Listen("unix", sock)     // or "tcp" "127.0.0.1:0"
//	go srv.Serve(lis)                      // returns nil after Stop
//	defer srv.Stop()
//
// Serve may be called for several listeners; Register adds the service to a gRPC server built elsewhere
// (Serve also installs a codec that decodes WriteRequests of table entries with slab allocation, falling
// back to proto.Unmarshal; a server built elsewhere works with the standard codec, only slower).
// Config.GRPCOptions carries credentials (TLS/mTLS) and interceptors. The standalone binary is
// cmd/calico-p4-softswitch (--p4rt-listen 127.0.0.1:9559 --device-id 1).
//
// # RPC behaviour
//
//   - Capabilities: "1.4.1".
//   - SetForwardingPipelineConfig: VERIFY, VERIFY_AND_SAVE (Read/Write switch to the saved config while the
//     data plane keeps the old one), VERIFY_AND_COMMIT (state cleared), COMMIT (the saved config and the
//     writes made since), RECONCILE_AND_COMMIT (keeps the state of every object present in both configs;
//     INVALID_ARGUMENT if kept state does not validate). p4_device_config is opaque: stored and returned.
//     Requires the caller to be primary. GetForwardingPipelineConfig honours every response_type; the
//     config is unset before the first SetForwardingPipelineConfig.
//   - Arbitration (StreamChannel): per (device, role), the primary is the controller whose election id is
//     the highest ever seen for the role (§5.3). A new primary (higher or equal id) takes over at once; when
//     the primary's stream closes or it downgrades, the role has no primary until an id >= that highest
//     one is sent again, so a backup with a lower id does not take over by itself (send a higher id to
//     take over). Notifications: OK to the primary, ALREADY_EXISTS to backups, NOT_FOUND when there is no
//     primary. Rejections end the stream: unknown device NOT_FOUND, election id in use INVALID_ARGUMENT,
//     device/role change FAILED_PRECONDITION, too many streams RESOURCE_EXHAUSTED, role.config set
//     INVALID_ARGUMENT (every role has full pipeline access). An unset election id is always a backup.
//   - Write: NOT_FOUND (device or unknown role), PERMISSION_DENIED (not primary for device+role+election
//     id), FAILED_PRECONDITION (no pipeline), INVALID_ARGUMENT (unknown atomicity) for the whole RPC;
//     otherwise every update is attempted and, if any failed, the status is UNKNOWN with one p4.v1.Error
//     per update in google.rpc.Status.details (OK for the ones that succeeded). CONTINUE_ON_ERROR,
//     ROLLBACK_ON_ERROR and DATAPLANE_ATOMIC are all implemented; with the last two a failed batch changes
//     nothing and its successful updates are reported ABORTED. See package tables for the per-update codes.
//   - Read: wildcards per the spec for table entries (all tables, one table, a key, filters on action,
//     priority, metadata, controller_metadata; counter_data and time_since_last_hit when requested),
//     members, groups, counters, direct counters, registers and digest configs. All entities of a request
//     come from one snapshot (a concurrent Write is either fully visible or not at all). Responses stream in
//     chunks (Config.ReadChunkEntities / ReadChunkBytes). Per-request errors: UNKNOWN with one p4.v1.Error
//     per request entity.
//
// # Hooks for the packet pipeline
//
//   - Store(): the *tables.Store with the fast-path lookup API (see package tables); Learn wraps
//     Store.Learn and counts failures in calico_p4_softswitch_learn_failures_total.
//   - SendPacketIn(Packet): CPU port → primary controllers as PacketIn (metadata per the packet_in header).
//   - SetPacketOutHandler(h): packet-outs from the primary, validated against the packet_out header; errors
//     go back to the sender as StreamError.
//   - EmitDigest(id, data): digest messages, buffered into DigestLists per the DigestEntry config
//     (max_list_size, max_timeout_ns, ack cache with ack_timeout_ns); dropped unless enabled.
//   - Idle timeouts and learner expiry: a background sweep every Config.SweepInterval sends
//     IdleTimeoutNotifications (NOTIFY_CONTROL tables, entries idle for idle_timeout_ns since the last
//     tables.State.Touch) and deletes expired learned entries.
//
// Not implemented (UNIMPLEMENTED per update or read request): meters and direct meters (and
// TableEntry.meter_config), packet replication engine entries, value sets, extern entries.
//
// # Debug dump
//
// DebugHandler serves GET /debug: every table (entries with match fields and action params by name, default
// entry, direct counters), action profile members and groups, non-zero counters, registers and digest
// configs of the running config, as text or, with ?format=json, JSON. The standalone binary mounts it on
// --metrics-listen next to /metrics.
//
// # Metrics
//
// calico_p4_softswitch_*: write_requests_total{code}, write_updates_total{type,entity,code},
// write_duration_seconds, read_requests_total{code}, read_entities_total, pipeline_config_total{action,code},
// arbitration_updates_total{result}, primary_connected{role}, streams, packet_in_total{result},
// packet_out_total{result}, digest_lists_total, digests_dropped_total{reason}, idle_timeout_entries_total,
// learned_entries_expired_total, learn_failures_total{code}, stream_errors_total{code},
// table_entries{table}, action_profile_members{profile}.
package softswitch
