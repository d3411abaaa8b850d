package model

import (
	"fmt"
	"strconv"

	"github.com/projectcalico/calico/felix/proto"
	"google.golang.org/protobuf/encoding/protowire"
)

// Payloads lists every ToDataplane payload of the served proto (felix/proto/felixbackend.proto at the
// supported Calico commit) by its protobuf field name, in field-number order. Each is decoded by Apply.
var Payloads = []string{
	"in_sync",                      // 1
	"ipset_update",                 // 2
	"ipset_delta_update",           // 3
	"ipset_remove",                 // 4
	"active_profile_update",        // 5
	"active_profile_remove",        // 6
	"active_policy_update",         // 7
	"active_policy_remove",         // 8
	"host_endpoint_update",         // 9
	"host_endpoint_remove",         // 10
	"workload_endpoint_update",     // 11
	"workload_endpoint_remove",     // 12
	"config_update",                // 13
	"host_metadata_update",         // 14
	"ipam_pool_update",             // 16
	"ipam_pool_remove",             // 17
	"host_metadata_remove",         // 18
	"service_account_update",       // 19
	"service_account_remove",       // 20
	"namespace_update",             // 21
	"namespace_remove",             // 22
	"route_update",                 // 23
	"route_remove",                 // 24
	"vtep_update",                  // 25
	"vtep_remove",                  // 26
	"wireguard_endpoint_update",    // 27
	"wireguard_endpoint_remove",    // 28
	"global_bgp_config_update",     // 29
	"encapsulation",                // 30
	"service_update",               // 31
	"service_remove",               // 32
	"wireguard_endpoint_v6_update", // 33
	"wireguard_endpoint_v6_remove", // 34
	"host_metadata_v6_update",      // 35
	"host_metadata_v6_remove",      // 36
	"host_metadata_v4v6_update",    // 37
	"host_metadata_v4v6_remove",    // 38
}

// PayloadName returns the protobuf field name of msg's payload (one of Payloads), or "none".
func PayloadName(msg *proto.ToDataplane) string {
	switch msg.Payload.(type) {
	case *proto.ToDataplane_InSync:
		return "in_sync"
	case *proto.ToDataplane_IpsetUpdate:
		return "ipset_update"
	case *proto.ToDataplane_IpsetDeltaUpdate:
		return "ipset_delta_update"
	case *proto.ToDataplane_IpsetRemove:
		return "ipset_remove"
	case *proto.ToDataplane_ActiveProfileUpdate:
		return "active_profile_update"
	case *proto.ToDataplane_ActiveProfileRemove:
		return "active_profile_remove"
	case *proto.ToDataplane_ActivePolicyUpdate:
		return "active_policy_update"
	case *proto.ToDataplane_ActivePolicyRemove:
		return "active_policy_remove"
	case *proto.ToDataplane_HostEndpointUpdate:
		return "host_endpoint_update"
	case *proto.ToDataplane_HostEndpointRemove:
		return "host_endpoint_remove"
	case *proto.ToDataplane_WorkloadEndpointUpdate:
		return "workload_endpoint_update"
	case *proto.ToDataplane_WorkloadEndpointRemove:
		return "workload_endpoint_remove"
	case *proto.ToDataplane_ConfigUpdate:
		return "config_update"
	case *proto.ToDataplane_HostMetadataUpdate:
		return "host_metadata_update"
	case *proto.ToDataplane_HostMetadataRemove:
		return "host_metadata_remove"
	case *proto.ToDataplane_HostMetadataV4V6Update:
		return "host_metadata_v4v6_update"
	case *proto.ToDataplane_HostMetadataV4V6Remove:
		return "host_metadata_v4v6_remove"
	case *proto.ToDataplane_HostMetadataV6Update:
		return "host_metadata_v6_update"
	case *proto.ToDataplane_HostMetadataV6Remove:
		return "host_metadata_v6_remove"
	case *proto.ToDataplane_IpamPoolUpdate:
		return "ipam_pool_update"
	case *proto.ToDataplane_IpamPoolRemove:
		return "ipam_pool_remove"
	case *proto.ToDataplane_ServiceAccountUpdate:
		return "service_account_update"
	case *proto.ToDataplane_ServiceAccountRemove:
		return "service_account_remove"
	case *proto.ToDataplane_NamespaceUpdate:
		return "namespace_update"
	case *proto.ToDataplane_NamespaceRemove:
		return "namespace_remove"
	case *proto.ToDataplane_RouteUpdate:
		return "route_update"
	case *proto.ToDataplane_RouteRemove:
		return "route_remove"
	case *proto.ToDataplane_VtepUpdate:
		return "vtep_update"
	case *proto.ToDataplane_VtepRemove:
		return "vtep_remove"
	case *proto.ToDataplane_WireguardEndpointUpdate:
		return "wireguard_endpoint_update"
	case *proto.ToDataplane_WireguardEndpointRemove:
		return "wireguard_endpoint_remove"
	case *proto.ToDataplane_WireguardEndpointV6Update:
		return "wireguard_endpoint_v6_update"
	case *proto.ToDataplane_WireguardEndpointV6Remove:
		return "wireguard_endpoint_v6_remove"
	case *proto.ToDataplane_GlobalBgpConfigUpdate:
		return "global_bgp_config_update"
	case *proto.ToDataplane_Encapsulation:
		return "encapsulation"
	case *proto.ToDataplane_ServiceUpdate:
		return "service_update"
	case *proto.ToDataplane_ServiceRemove:
		return "service_remove"
	}
	return "none"
}

// IsInSync reports whether msg is Felix's InSync marker.
func IsInSync(msg *proto.ToDataplane) bool {
	_, ok := msg.Payload.(*proto.ToDataplane_InSync)
	return ok
}

// Unmarshal decodes one serialised ToDataplane. A message whose payload this build does not know is
// returned together with an *UnknownPayloadError naming the payload's field number; the caller counts it
// and carries on.
func Unmarshal(b []byte) (*proto.ToDataplane, error) {
	msg := &proto.ToDataplane{}
	if err := msg.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("undecodable ToDataplane (%d bytes): %w", len(b), err)
	}
	if msg.Payload == nil {
		return msg, &UnknownPayloadError{Type: unknownField(b)}
	}
	return msg, nil
}

// unknownField names the first top-level field other than sequence_number (15).
func unknownField(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num != 15 {
			return "field_" + strconv.Itoa(int(num))
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			break
		}
		b = b[m:]
	}
	return "none"
}
