// Package session is the manager side of a Felix session: the explicit state machine
// (connected → syncing → in sync → closed), the desired state across sessions, coalesced applies through
// the Applier interface, and status reports back to Felix.
//
// Lifecycle of one session (one Felix process, one driver):
//   - connected: the driver's Hello arrived; a previous session, if any, is told to stop.
//   - syncing: messages are decoded into a private snapshot; nothing is applied; the dataplane keeps what
//     the previous session left.
//   - in sync: at Felix's InSync the snapshot replaces the desired state (model.State.Replace: objects the
//     snapshot lacks are removed, only true differences are reported) and the apply stage gets the complete
//     desired state with Changes.Resync set. Afterwards every wake-up drains everything queued, then
//     applies once (coalescing); decoding continues while an apply runs (it reads a Clone).
//   - closed: the driver said goodbye, the stream broke, a frame was undecodable, or a newer session
//     replaced this one. The desired state and the dataplane stay as they are.
//
// It owns the Applier interface (implemented by the translator + programmer), a Recorder for tests and
// NoDataplane for a manager without a target. It must not know about P4.
package session
