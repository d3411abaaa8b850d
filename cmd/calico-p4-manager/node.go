package main

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/ipu/dataplane"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/translator"
)

// config turns the flags into the apply stage's configuration, filling MACs the flags leave out from the
// interfaces themselves.
func (f *dataplaneFlags) config(target string, log *zap.Logger, reg prometheus.Registerer) (dataplane.Config, error) {
	cfg := dataplane.Config{Target: target, P4RTListen: f.p4rtListen, P4RTAddress: f.p4rtAddress,
		Profile: p4rt.TargetProfile(f.profile), DeviceID: f.deviceID, ElectionID: f.electionID,
		DeviceConfigPath: f.deviceConfig, BatchSize: f.batchSize, Pollers: f.pollers, Logger: log, Registry: reg}
	if f.p4rtTLS.CAFile != "" || f.p4rtTLS.CertFile != "" {
		tls := f.p4rtTLS
		cfg.TLS = &tls
	}
	node := translator.Node{HostInterface: f.hostInterface, UplinkInterface: f.uplinkInterface}
	var err error
	if node.HostMAC, err = macFlag("--host-mac", f.hostMAC, f.hostInterface, vethPeerMAC); err != nil {
		return cfg, err
	}
	if node.UplinkMAC, err = macFlag("--uplink-mac", f.uplinkMAC, f.uplinkInterface, linkMAC); err != nil {
		return cfg, err
	}
	if f.gatewayMAC != "" {
		if node.GatewayMAC, err = net.ParseMAC(f.gatewayMAC); err != nil {
			return cfg, fmt.Errorf("--gateway-mac: %w", err)
		}
	}
	cfg.Node = node
	return cfg, nil
}

// macFlag parses an explicit MAC, or derives it from the interface when one is configured.
func macFlag(flag, value, iface string, derive func(string) (net.HardwareAddr, error)) (net.HardwareAddr, error) {
	if value != "" {
		mac, err := net.ParseMAC(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		return mac, nil
	}
	if iface == "" {
		return nil, nil
	}
	mac, err := derive(iface)
	if err != nil {
		return nil, fmt.Errorf("%s not given and not derivable from %s: %w", flag, iface, err)
	}
	return mac, nil
}

func linkMAC(name string) (net.HardwareAddr, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	return l.Attrs().HardwareAddr, nil
}

// vethPeerMAC is the MAC of the other end of a veth: the host stack's interface when the host port is
// one end of a veth pair whose other end carries the node's addresses.
func vethPeerMAC(name string) (net.HardwareAddr, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return nil, fmt.Errorf("%s is a %s, not a veth", name, l.Type())
	}
	idx, err := netlink.VethPeerIndex(l.(*netlink.Veth))
	if err != nil {
		return nil, err
	}
	peer, err := netlink.LinkByIndex(idx)
	if err != nil {
		return nil, fmt.Errorf("peer of %s: %w", name, err)
	}
	return peer.Attrs().HardwareAddr, nil
}
