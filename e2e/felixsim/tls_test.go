package felixsim_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/projectcalico/calico/felix/proto"
)

type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return pki{cert: cert, key: key}
}

// issue writes cert.pem / key.pem for a leaf signed by ca into dir/name-*.pem and returns their paths.
func (ca pki) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	write(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certPath, keyPath
}

func (ca pki) writeCA(t *testing.T, path string) {
	write(t, path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDriverAndManagerOverMutualTLS(t *testing.T) {
	driver, manager := binaries(t)
	dir := t.TempDir()
	ca := newCA(t, "calico-p4 test CA")
	caPath := filepath.Join(dir, "ca.pem")
	ca.writeCA(t, caPath)
	srvCert, srvKey := ca.issue(t, dir, "manager", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, dir, "driver", x509.ExtKeyUsageClientAuth)

	m := startManager(t, manager, "--listen", "127.0.0.1:0", "--tls-cert", srvCert, "--tls-key", srvKey, "--tls-ca", caPath)
	if !strings.HasPrefix(m.listen, "127.0.0.1:") {
		t.Fatalf("manager listens on %q", m.listen)
	}
	env := []string{"CALICO_P4_MANAGER=" + m.listen, "CALICO_P4_TLS_CA=" + caPath, "CALICO_P4_CONNECT_TIMEOUT=2s"}

	d, _ := startDriver(t, driver, append(env, "CALICO_P4_TLS_CERT="+cliCert, "CALICO_P4_TLS_KEY="+cliKey)...)
	replay(t, d, "basic-resync.jsonl")
	waitReplies(t, d, "statuses over mTLS", func(r []*proto.FromDataplane) bool {
		return statuses(r)["default/frontend-1"] == "up"
	})

	// A driver whose certificate another CA signed is refused; it gives up with its one-line reason.
	other := newCA(t, "someone else")
	badCert, badKey := other.issue(t, dir, "intruder", x509.ExtKeyUsageClientAuth)
	bad, log := startDriver(t, driver, append(env, "CALICO_P4_TLS_CERT="+badCert, "CALICO_P4_TLS_KEY="+badKey)...)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if code, err := bad.Wait(ctx); err != nil || code != 1 {
		t.Fatalf("intruder exit %d (%v), want 1\n%s", code, err, log.String())
	}
	if !strings.Contains(log.String(), "cannot reach calico-p4-manager") {
		t.Errorf("no reason in:\n%s", log.String())
	}

	// And a driver without TLS settings refuses to talk TCP at all.
	plain, log2 := startDriver(t, driver, "CALICO_P4_MANAGER="+m.listen)
	if code, err := plain.Wait(ctx); err != nil || code != 1 || !strings.Contains(log2.String(), "needs mTLS") {
		t.Fatalf("plain driver exit %d (%v):\n%s", code, err, log2.String())
	}
}
