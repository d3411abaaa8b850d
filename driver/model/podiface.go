package model

import (
	"bytes"
	"errors"
	"fmt"
	"net"
)

// PodInterface is a pod's interface as the manager's CNI server (driver/cni) created it: the host-side
// interface name (what Felix later sends as WorkloadEndpoint.InterfaceName) and the MAC of the pod's end.
// It is the desired state's third input: with Calico's Kubernetes datastore Felix's workload endpoints
// carry no MAC, and the translator takes the pod's MAC from here (an endpoint's own MAC, when Felix sends
// one, wins). Felix never sets it, and a new Felix session's snapshot does not replace it.
//
// Values are immutable once stored.
type PodInterface struct {
	// HostInterface is the host-side interface name (e.g. cali0123456789a), the table's key.
	HostInterface string
	// MAC is the pod-side interface's MAC (6 bytes).
	MAC net.HardwareAddr
}

// maxIfaceName is Linux's IFNAMSIZ minus the terminating NUL.
const maxIfaceName = 15

// Validate checks a PodInterface: a Linux interface name and a unicast Ethernet MAC.
func (p *PodInterface) Validate() error {
	if p.HostInterface == "" || len(p.HostInterface) > maxIfaceName {
		return fmt.Errorf("host interface name %q is empty or longer than %d bytes", p.HostInterface, maxIfaceName)
	}
	for _, c := range []byte(p.HostInterface) {
		if c <= ' ' || c == '/' || c == ':' || c >= 0x7f {
			return fmt.Errorf("host interface name %q has an invalid character %q", p.HostInterface, c)
		}
	}
	if len(p.MAC) != 6 {
		return fmt.Errorf("interface %s: MAC %v is not 6 bytes", p.HostInterface, p.MAC)
	}
	if p.MAC[0]&1 != 0 || bytes.Equal(p.MAC, make(net.HardwareAddr, 6)) {
		return fmt.Errorf("interface %s: MAC %v is not a unicast address", p.HostInterface, p.MAC)
	}
	return nil
}

func equalPodInterfaces(a, b *PodInterface) bool {
	return a.HostInterface == b.HostInterface && bytes.Equal(a.MAC, b.MAC)
}

// SetPodInterface stores (or replaces) a pod interface of the CNI server. An invalid one is rejected: the
// previous version is removed (fail closed) and an *InvalidError returned.
func (s *State) SetPodInterface(p *PodInterface) error {
	if p == nil {
		return &InvalidError{Kind: KindPodInterface, Err: errors.New("nil pod interface")}
	}
	if err := p.Validate(); err != nil {
		return reject(s.PodInterfaces, p.HostInterface, p.HostInterface, err)
	}
	s.PodInterfaces.put(p.HostInterface, p)
	return nil
}

// RemovePodInterface removes a pod interface of the CNI server; it reports whether it existed.
func (s *State) RemovePodInterface(hostInterface string) bool {
	return s.PodInterfaces.remove(hostInterface)
}

// WorkloadMAC returns the MAC to deliver to a workload endpoint: its own (Felix's) if it has one, else the
// one the CNI server recorded for its interface; nil if neither is known.
func (s *State) WorkloadMAC(ep *WorkloadEndpoint) net.HardwareAddr {
	if len(ep.MAC) == 6 {
		return ep.MAC
	}
	if p, ok := s.PodInterfaces.Get(ep.InterfaceName); ok {
		return p.MAC
	}
	return nil
}
