package topology

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
)

const (
	// NamePrefix starts the name of every network namespace the harness creates.
	NamePrefix = "cp4e2e-"
	// MaxIfaceName is the kernel's limit on interface names (IFNAMSIZ-1).
	MaxIfaceName = 15
	// DefaultIfacePrefix is Calico's default workload interface prefix (FELIX_INTERFACEPREFIX).
	DefaultIfacePrefix = "cali"
	// PodIface is the pod-side interface name, as Calico's CNI names it.
	PodIface = "eth0"
)

// HostMAC is the MAC Calico gives every workload's host-side interface; the pods' gateway answers with it.
var HostMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}

// GatewayV4 and GatewayV6 are the pods' default gateways (Calico's link-local gateway and the EUI-64
// link-local address of HostMAC).
var (
	GatewayV4 = net.IPv4(169, 254, 1, 1).To4()
	GatewayV6 = net.ParseIP("fe80::ecee:eeff:feee:eeee")
)

// CalicoInterfaceName returns the host-side interface name Calico's CNI plugin gives a Kubernetes pod:
// prefix + the first hex characters of sha1("<namespace>.<pod>"), 15 characters in all.
func CalicoInterfaceName(prefix, namespace, pod string) string {
	if prefix == "" {
		prefix = DefaultIfacePrefix
	}
	sum := sha1.Sum([]byte(namespace + "." + pod))
	h := hex.EncodeToString(sum[:])
	n := MaxIfaceName - len(prefix)
	if n < 1 {
		n = 1
	}
	return prefix + h[:n]
}

// NewRunID returns a random 8-hex-digit run id.
func NewRunID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	return hex.EncodeToString(b[:])
}

var runIDRe = regexp.MustCompile(`^[0-9a-f]{8}$`)

func validRunID(id string) bool { return runIDRe.MatchString(id) }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// nsName builds a namespace name for this run: prefix + run id + "-" + a sanitised label.
func nsName(runID, label string) string {
	label = strings.Trim(unsafeChars.ReplaceAllString(label, "-"), "-")
	if len(label) > 40 {
		label = label[:40]
	}
	return NamePrefix + runID + "-" + label
}

// runIDOf extracts the run id from a namespace name created by nsName, or "" if the name is not ours.
func runIDOf(name string) string {
	if !strings.HasPrefix(name, NamePrefix) {
		return ""
	}
	rest := strings.TrimPrefix(name, NamePrefix)
	i := strings.IndexByte(rest, '-')
	if i < 0 {
		return ""
	}
	if id := rest[:i]; validRunID(id) {
		return id
	}
	return ""
}

// PodMAC derives (the default of PodSpec.MAC) a stable, locally administered unicast MAC for a pod interface from its name.
func PodMAC(name string) net.HardwareAddr {
	sum := sha1.Sum([]byte("calico-p4-pod:" + name))
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

func checkIfaceName(name string) error {
	if name == "" || len(name) > MaxIfaceName || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("invalid interface name %q (1..%d chars, no '/', ':' or spaces)", name, MaxIfaceName)
	}
	return nil
}

// portMAC derives the MAC of a dataplane-owned interface in attach mode (a locally administered address
// that no frame is sent to, so the node kernel ignores unicast frames on the port).
func portMAC(name string) net.HardwareAddr {
	sum := sha1.Sum([]byte("calico-p4-port:" + name))
	return net.HardwareAddr{0x06, sum[0], sum[1], sum[2], sum[3], sum[4]}
}
