package translator

import (
	"net"
	"net/netip"
)

// PortResolver maps an interface name to its P4 port id (docs/architecture.md, "Port ids"). The embedded
// target derives ids from names (ports.IDForName); P4-DPDK / IPU targets use a static map. It must be a pure
// function of its configuration: the translator calls it during translation and caches nothing across
// Apply calls that the resolver could change (a resolver whose answers change needs a Resync).
type PortResolver interface {
	PortID(iface string) (uint32, error)
}

// PortFunc adapts a function to PortResolver.
type PortFunc func(iface string) (uint32, error)

// PortID implements PortResolver.
func (f PortFunc) PortID(iface string) (uint32, error) { return f(iface) }

// Options configure a translation. The zero value is usable: a node without host or uplink ports only
// switches between its workloads.
type Options struct {
	Node Node
}

// Node describes this node's own ports and underlay: what the model does not say. Empty fields are derived
// from the model where possible (see each field).
type Node struct {
	// Name is this node's name; default: Felix's FelixHostname from the ConfigUpdate.
	Name string

	// HostInterface is the port to the host's own network stack (traffic to the node's addresses, kind
	// EP_KIND_HOST); "" = none.
	HostInterface string
	// HostMAC is the MAC of the host stack's interface: the destination MAC of frames sent to the host.
	HostMAC net.HardwareAddr

	// UplinkInterface is the port to the fabric (kind EP_KIND_UPLINK); "" = none.
	UplinkInterface string
	// HostEndpointInterface is the name host endpoints use for the uplink (a HostEndpoint's interfaceName,
	// e.g. "eth0"); default UplinkInterface.
	HostEndpointInterface string
	// UplinkMAC is this node's MAC on the uplink: the source MAC of frames sent out of it.
	UplinkMAC net.HardwareAddr
	// GatewayMAC is the MAC of the default next hop on the uplink (the router, or the peer of a
	// point-to-point link). Without it only Neighbors are reachable through the uplink.
	GatewayMAC net.HardwareAddr
	// Neighbors are the MACs of underlay neighbours in the uplink's subnet (other nodes reached directly).
	// A next hop whose address is not listed uses GatewayMAC.
	Neighbors map[netip.Addr]net.HardwareAddr

	// Addresses are the node's addresses with their subnet (192.168.122.11/24). Default: the
	// HostMetadataV4V6 of Name, else HostMetadata / HostMetadataV6 of Name (as /32, /128).
	Addresses []netip.Prefix
}

// Interface names Felix uses for its tunnel devices. Host endpoints may name them; an all-interfaces ("*")
// host endpoint covers them.
const (
	IfaceVXLANv4 = "vxlan.calico"
	IfaceVXLANv6 = "vxlan-v6.calico"
	IfaceIPIP    = "tunl0"
)
