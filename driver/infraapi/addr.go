package infraapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/calico-p4/calico-p4/driver/framing"
)

// ProtocolVersion is the version of this API the code speaks (Hello.protocol_version).
const ProtocolVersion = 1

// DefaultAddress is where the manager listens and the driver connects by default.
const DefaultAddress = "unix:///var/run/calico-p4/felix.sock"

// MaxMessageSize bounds one gRPC message: one maximal Felix frame plus framing overhead. Both ends set it
// (gRPC's default of 4 MiB would refuse large IP set updates).
const MaxMessageSize = framing.MaxFrameSize + 1<<20

// BatchBytes is the size above which the driver starts a new gRPC message for further frames.
const BatchBytes = 1 << 20

// Address is a parsed --listen / CALICO_P4_MANAGER value.
type Address struct {
	// Network is "unix" or "tcp".
	Network string
	// Path (unix) or host:port (tcp).
	Addr string
}

// ParseAddress accepts "unix:///abs/path", "unix:relative/or/abs", "unix-abstract:name" is not supported,
// and "host:port" (TCP, which requires mTLS).
func ParseAddress(s string) (Address, error) {
	switch {
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		if p == "" || !strings.HasPrefix(p, "/") {
			return Address{}, fmt.Errorf("address %q: unix:// needs an absolute path (unix:///run/x.sock)", s)
		}
		return Address{Network: "unix", Addr: p}, nil
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" {
			return Address{}, fmt.Errorf("address %q: empty socket path", s)
		}
		return Address{Network: "unix", Addr: p}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return Address{}, fmt.Errorf("address %q: want unix:///path or host:port", s)
	}
	_ = host
	return Address{Network: "tcp", Addr: s}, nil
}

// String is the gRPC dial target.
func (a Address) String() string {
	if a.Network == "unix" {
		if strings.HasPrefix(a.Addr, "/") {
			return "unix://" + a.Addr
		}
		return "unix:" + a.Addr
	}
	return a.Addr
}

// TLSFiles names the PEM files of one side of mTLS.
type TLSFiles struct {
	Cert, Key, CA string
}

// Empty reports whether no file is set.
func (f TLSFiles) Empty() bool { return f.Cert == "" && f.Key == "" && f.CA == "" }

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return tls.Certificate{}, nil, errors.New("mTLS needs a certificate, a key and a CA bundle")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("loading key pair %s / %s: %w", f.Cert, f.Key, err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f.CA)
	}
	return cert, pool, nil
}

// ServerTLS is the manager's mTLS config: it presents its certificate and requires a client certificate
// signed by the CA.
func ServerTLS(f TLSFiles) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

// ClientTLS is the driver's mTLS config: it verifies the manager against the CA (serverName, default the
// host part of the address) and presents its own certificate.
func ClientTLS(f TLSFiles, serverName string) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: serverName,
		MinVersion: tls.VersionTLS13}, nil
}
