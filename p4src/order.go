package p4src

// WriteOrder is the order in which a controller writes the tables of k8s.p4 so that a packet never meets an
// entry before the entries it relies on: each element is a rank (its tables are written together), and a
// controller inserts and modifies rank by rank from the first to the last, and deletes in the reverse order
// (what admits packets is detached first, what it relied on is deleted last). The programmer takes it as
// programmer.Config.TableOrder (ipu/programmer: "Write order"); an action profile takes the rank of the table
// it implements (its members, then its groups, then that table's entries).
//
// A rank relies only on earlier ranks:
//
//   - the policy program, leaves first: IP-set members (looked up by steps), rule counters (applied after a
//     counted rule), rules (applied by steps), steps (entered from lists), lists (entered from
//     endpoint_policy), endpoint_policy (entered when port_endpoint, tunnel_term or a next hop names an
//     endpoint whose flags ask for a check);
//   - masquerade (nat_outgoing, snat_address by next hop) before the next hops that use it, next hops
//     (which also name the destination endpoint of the "to" check) before the routes that point at them;
//   - what redirects traffic to addresses that must already be routed: 1:1 NAT, services (their selector
//     members and groups first);
//   - admission last: anti-spoofing and the gateway responders of an endpoint before tunnel termination and
//     port_endpoint, which classify its packets (a new pod's first packet meets its complete policy; a
//     removed pod is detached before its policy goes).
//
// Learner tables (LearnerTables) are filled by the data plane and are not listed; every other table is, once
// (a test checks it, so a table added to k8s.p4 must be placed here).
var WriteOrder = [][]TableName{
	{TableIPSetNetV4, TableIPSetNetV6, TableIPSetPortV4, TableIPSetPortV6},
	{TablePolicyRuleStats},
	{TablePolicyRule},
	{TablePolicyStep},
	{TablePolicyList},
	{TableEndpointPolicy},
	{TableNATOutgoingV4, TableNATOutgoingV6, TableSNATAddressV4, TableSNATAddressV6},
	{TableNexthop},
	{TableRouteV4, TableRouteV6},
	{TableNAT1to1V4, TableNAT1to1V6, TableServiceV4, TableServiceV6},
	{TableSourceGuardV4, TableSourceGuardV6, TableARPResponder, TableNDResponder},
	{TableTunnelTermV4, TableTunnelTermV6},
	{TablePortEndpoint},
}

// WriteOrderNames is WriteOrder as plain strings (what programmer.Config.TableOrder takes).
func WriteOrderNames() [][]string {
	out := make([][]string, len(WriteOrder))
	for i, rank := range WriteOrder {
		for _, t := range rank {
			out[i] = append(out[i], string(t))
		}
	}
	return out
}
