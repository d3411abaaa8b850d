// Package harness runs calico-p4 end to end the way a Calico node runs it, with real processes and real
// packets: a topology of network-namespace pods in attach mode (e2e/topology), the real calico-p4-manager
// inside the node namespace (embedded softswitch, or --target p4rt with a standalone calico-p4-softswitch),
// the Felix emulator (e2e/felixsim) exec'ing the real calico-p4-driver and replaying a compiled scenario
// (e2e/scenario) step by step, and after each step the connectivity matrix (e2e/probe, e2e/matrix)
// compared with the scenario's truth table.
//
// The host is modelled by a host port: a veth whose dataplane end is the manager's --host-interface and
// whose other end, in the node namespace, carries the node's addresses — the node namespace's kernel is the
// host's network stack, and a probe server there is the special peer "host/<node>". Optionally an external
// peer ("ext/<name>") sits on the node's uplink port (--uplink-interface, its MAC the gateway MAC), so
// host endpoints, failsafe ports and forwarded traffic can be tested.
//
// Steps are synchronous: after sending a step's messages the harness waits until the manager's
// calico_p4_felix_applied_sequence_number reaches the step's last sequence number (every change applied
// successfully), so a probe never races the programming. The scenario's Services and EndpointSlices go to
// each manager's --services-file (the harness is its Kubernetes API) and are waited for the same way
// (calico_p4_services_applied_revision); ProbeService counts which backends answer a service.
//
// It owns processes and their lifecycle (start in a namespace, logs, stop), waiting for applies, probing
// and reporting. It must not decide expectations (the scenario does) or create namespaces itself
// (topology does).
package harness
