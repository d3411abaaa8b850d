package programmer

// Integration tests: the programmer and its p4rt client against the real
// embedded target (ipu/softswitch) over real gRPC.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// realTarget is a softswitch serving P4Runtime on a listener.
type realTarget struct {
	t    testing.TB
	addr string
	reg  *prometheus.Registry
	srv  *softswitch.Server
	done chan error
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startTarget serves a fresh softswitch on a unix socket at sock (a new
// temporary one if empty), or on TCP 127.0.0.1:0 with opts (TLS).
func startTarget(t testing.TB, sock string, opts ...grpc.ServerOption) *realTarget {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := softswitch.New(softswitch.Config{DeviceID: 1, Registry: reg, GRPCOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	var lis net.Listener
	var addr string
	if len(opts) > 0 {
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			addr = lis.Addr().String()
		}
	} else {
		if sock == "" {
			sock = filepath.Join(t.TempDir(), "p4rt.sock")
		}
		os.Remove(sock)
		lis, err = net.Listen("unix", sock)
		addr = "unix://" + sock
	}
	if err != nil {
		t.Fatal(err)
	}
	rt := &realTarget{t: t, addr: addr, reg: reg, srv: srv, done: make(chan error, 1)}
	go func() { rt.done <- srv.Serve(lis) }()
	t.Cleanup(rt.stop)
	return rt
}

func (rt *realTarget) stop() {
	rt.srv.Stop()
	select {
	case err := <-rt.done:
		if err != nil {
			rt.t.Errorf("softswitch Serve: %v", err)
		}
		rt.done <- nil
	case <-time.After(20 * time.Second):
		rt.t.Errorf("softswitch did not stop")
	}
}

// counter sums a counter family of the target's metrics.
func (rt *realTarget) counter(name string) float64 {
	mfs, err := rt.reg.Gather()
	if err != nil {
		rt.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// updatesSeen is the number of updates the target has received.
func (rt *realTarget) updatesSeen() float64 {
	return rt.counter("calico_p4_softswitch_write_updates_total")
}

func openProgrammer(t testing.TB, addr string, election uint64, tlsCfg *p4rt.TLSConfig, batch int) (*Programmer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := Open(testCtx(t), Options{Address: addr, ElectionID: p4rt.Uint128{Low: election}, TLS: tlsCfg,
		P4InfoPath: testP4Info, BatchSize: batch, Logger: zaptest.NewLogger(t), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, reg
}

// readTarget reads every table and profile through p's session and names
// members and groups with p's ids.
func readTarget(t testing.TB, p *Programmer) *entry.Set {
	t.Helper()
	s, err := tryReadTarget(t, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryReadTarget(t testing.TB, p *Programmer) (*entry.Set, error) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	rb, err := p.readBack(testCtx(t))
	if err != nil {
		return nil, err
	}
	s := mustSet(t)
	put := func(ent *p4v1.Entity) {
		e, err := p.info.Decode(ent, p.ids)
		if err != nil {
			t.Fatalf("target holds something the programmer cannot name: %v", err)
		}
		if _, err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, ms := range rb.members {
		for _, m := range ms {
			put(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m}})
		}
	}
	for _, gs := range rb.groups {
		for _, g := range gs {
			put(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}})
		}
	}
	for _, te := range rb.tables {
		put(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}})
	}
	for _, te := range rb.defaults {
		e, err := p.info.Decode(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}, p.ids)
		if err != nil {
			t.Fatal(err)
		}
		if init, ok := p.info.InitialDefault(e.Table); !ok || !init.Equal(e) {
			s.Put(e)
		}
	}
	return s, nil
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRealTargetSyncIsIdempotentAndMinimal(t *testing.T) {
	rt := startTarget(t, "")
	p, _ := openProgrammer(t, rt.addr, 1, nil, 0)
	ctx := testCtx(t)
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	s := baseSet(t)
	if _, err := p.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	requireEqual(t, readTarget(t, p), withoutInitialDefaults(p.info, s))

	before := rt.updatesSeen()
	for _, again := range []*entry.Set{s, baseSet(t)} {
		if res, err := p.Sync(ctx, again); err != nil || res.Writes != 0 {
			t.Fatalf("second Sync: %+v, %v", res, err)
		}
	}
	if got := rt.updatesSeen() - before; got != 0 {
		t.Fatalf("the target received %v updates for an unchanged desired state", got)
	}

	// One changed action, one new route, one deleted route: three updates.
	s.Put(route(0, 0x0a000000, 8, 7))
	s.Put(route(0, 0x0b000000, 8, 1))
	s.Delete(route(0, 0x0a010000, 16, 0).Key())
	res, err := p.Sync(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.updatesSeen() - before; got != 3 || res.Inserted != 1 || res.Modified != 1 || res.Deleted != 1 {
		t.Fatalf("target received %v updates (%+v), want exactly 3", got, res)
	}
	requireEqual(t, readTarget(t, p), withoutInitialDefaults(p.info, s))
}

func TestRealTargetRandomSequencesConverge(t *testing.T) {
	rt := startTarget(t, "")
	ctx := testCtx(t)
	r := mrand.New(mrand.NewPCG(7, 7))
	p, _ := openProgrammer(t, rt.addr, 1, nil, 1+r.IntN(4))
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	election := uint64(1)
	for step := 0; step < 60; step++ {
		want := randomSet(t, r)
		if r.IntN(8) == 0 {
			// A manager restart: a new session with a higher election id.
			p.Close()
			election++
			p, _ = openProgrammer(t, rt.addr, election, nil, 1+r.IntN(4))
			if err := p.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Sync(ctx, want); err != nil {
			t.Fatalf("step %d: %v\n%s", step, err, want)
		}
		requireEqual(t, readTarget(t, p), withoutInitialDefaults(p.info, want))
	}
}

func TestRealTargetManagerRestartReconcilesWithZeroWrites(t *testing.T) {
	rt := startTarget(t, "")
	ctx := testCtx(t)
	first, _ := openProgrammer(t, rt.addr, 1, nil, 0)
	if err := first.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Sync(ctx, baseSet(t)); err != nil {
		t.Fatal(err)
	}
	first.Close()
	pushes := rt.counter("calico_p4_softswitch_pipeline_config_total")
	before := rt.updatesSeen()

	second, _ := openProgrammer(t, rt.addr, 1, nil, 0)
	if err := second.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := second.Sync(ctx, baseSet(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.updatesSeen() - before; got != 0 || res.Writes != 0 {
		t.Fatalf("restarted manager sent %v updates (%+v), want none", got, res)
	}
	if got := rt.counter("calico_p4_softswitch_pipeline_config_total") - pushes; got != 0 {
		t.Fatalf("restarted manager pushed the pipeline %v times, want 0 (same cookie)", got)
	}
	requireEqual(t, second.Installed(), withoutInitialDefaults(second.info, baseSet(t)))
}

func TestRealTargetRestartRepushesPipelineAndRestoresState(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	rt := startTarget(t, sock)
	p, reg := openProgrammer(t, rt.addr, 1, nil, 0)
	ctx, cancel := context.WithCancel(testCtx(t))
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	s := baseSet(t)
	waitFor(t, "first sync", func() bool {
		_, err := p.Sync(ctx, s)
		return err == nil
	})

	rt.stop()
	rt2 := startTarget(t, sock) // an empty target, no pipeline
	waitFor(t, "state restored on the restarted target", func() bool {
		if !p.Ready() || !p.InSync() {
			return false
		}
		got, err := tryReadTarget(t, p)
		return err == nil && got.Equal(withoutInitialDefaults(p.info, s))
	})
	if got := rt2.counter("calico_p4_softswitch_pipeline_config_total"); got != 1 {
		t.Fatalf("pipeline pushed %v times to the restarted target, want 1", got)
	}
	if got := counterValue(t, reg, "calico_p4_p4rt_stream_connects_total"); got < 2 {
		t.Fatalf("stream connects = %v, want a reconnect", got)
	}
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func TestRealTargetOnlyThePrimaryWrites(t *testing.T) {
	rt := startTarget(t, "")
	ctx := testCtx(t)
	high, _ := openProgrammer(t, rt.addr, 20, nil, 0)
	if err := high.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	low, lowReg := openProgrammer(t, rt.addr, 10, nil, 0)
	waitFor(t, "the backup to connect", func() bool {
		return counterValue(t, lowReg, "calico_p4_p4rt_arbitration_responses_total") > 0
	})
	before := rt.updatesSeen()
	if _, err := low.Sync(ctx, baseSet(t)); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("backup Sync = %v, want ErrNotPrimary", err)
	}
	if low.Ready() || counterValue(t, lowReg, "calico_p4_programmer_ready") != 0 || counterValue(t, lowReg, "calico_p4_p4rt_primary") != 0 {
		t.Fatal("backup reports ready or primary")
	}
	if got := rt.updatesSeen() - before; got != 0 {
		t.Fatalf("target received %v updates from a backup", got)
	}
	if _, err := high.Sync(ctx, baseSet(t)); err != nil {
		t.Fatal(err)
	}

	// A third manager with a higher id takes over; the old primary stops
	// writing and reports it.
	higher, _ := openProgrammer(t, rt.addr, 30, nil, 0)
	if err := higher.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old primary to notice", func() bool { return !high.Ready() })
	s := baseSet(t)
	s.Put(route(0, 0x0c000000, 8, 1))
	before = rt.updatesSeen()
	if _, err := high.Sync(ctx, s); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("deposed primary Sync = %v, want ErrNotPrimary", err)
	}
	if got := rt.updatesSeen() - before; got != 0 {
		t.Fatalf("deposed primary sent %v updates", got)
	}
	// The new primary adopts everything with no writes but the new route.
	res, err := higher.Sync(ctx, s)
	if err != nil || res.Writes != 1 || res.Inserted != 1 {
		t.Fatalf("new primary: %+v, %v", res, err)
	}
}

func TestRealTargetTableFullInstallsTheRest(t *testing.T) {
	rt := startTarget(t, "")
	ctx := testCtx(t)
	p, reg := openProgrammer(t, rt.addr, 1, nil, 0)
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	s := baseSet(t)
	for k := uint64(0); k < 7; k++ { // ingress.small holds 4
		s.Put(entry.Table("ingress.small", 0, entry.Act("ingress.set_port", entry.P("port", u(k))), entry.Exact("meta.key", u(k))))
	}
	res, err := p.Sync(ctx, s)
	var se *SyncError
	if !errors.As(err, &se) || len(se.TableFull) != 1 || se.TableFull[0] != "ingress.small" {
		t.Fatalf("Sync = %v, want ingress.small reported full", err)
	}
	if res.Pending != 3 {
		t.Fatalf("pending %d, want 3", res.Pending)
	}
	got := readTarget(t, p)
	want := withoutInitialDefaults(p.info, s)
	if d := entry.Diff(got, want); len(d.Insert) != 3 || len(d.Modify) != 0 || len(d.Delete) != 0 {
		t.Fatalf("target is missing %d entries (want the 3 that did not fit), %d different, %d extra", len(d.Insert), len(d.Modify), len(d.Delete))
	}
	if v := counterValue(t, reg, "calico_p4_programmer_table_full_total"); v != 3 {
		t.Fatalf("table_full_total = %v", v)
	}
	if v := counterValue(t, reg, "calico_p4_programmer_pending_entries"); v != 3 {
		t.Fatalf("pending_entries = %v", v)
	}
}

// TLS: a CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, written as PEM files.
type pki struct {
	dir                 string
	ca, srvCert, srvKey string
	cliCert, cliKey     string
	caPool              *x509.CertPool
	srvPair             tls.Certificate
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "calico-p4 test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := &pki{dir: dir, caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	sd, sk := leaf(2, "target", x509.ExtKeyUsageServerAuth)
	p.srvCert, p.srvKey = write("server.pem", "CERTIFICATE", sd), write("server-key.pem", "EC PRIVATE KEY", keyDER(sk))
	cd, ck := leaf(3, "manager", x509.ExtKeyUsageClientAuth)
	p.cliCert, p.cliKey = write("client.pem", "CERTIFICATE", cd), write("client-key.pem", "EC PRIVATE KEY", keyDER(ck))
	if p.srvPair, err = tls.LoadX509KeyPair(p.srvCert, p.srvKey); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRealTargetOverTLSAndMutualTLS(t *testing.T) {
	pk := newPKI(t)
	tests := []struct {
		name      string
		server    *tls.Config
		client    *p4rt.TLSConfig
		wantReady bool
	}{
		{"TLS", &tls.Config{Certificates: []tls.Certificate{pk.srvPair}},
			&p4rt.TLSConfig{CAFile: pk.ca}, true},
		{"mTLS", &tls.Config{Certificates: []tls.Certificate{pk.srvPair}, ClientCAs: pk.caPool, ClientAuth: tls.RequireAndVerifyClientCert},
			&p4rt.TLSConfig{CAFile: pk.ca, CertFile: pk.cliCert, KeyFile: pk.cliKey}, true},
		{"mTLS server refuses a client without a certificate", &tls.Config{Certificates: []tls.Certificate{pk.srvPair}, ClientCAs: pk.caPool, ClientAuth: tls.RequireAndVerifyClientCert},
			&p4rt.TLSConfig{CAFile: pk.ca}, false},
		{"client refuses a server its CA did not sign", &tls.Config{Certificates: []tls.Certificate{pk.srvPair}},
			&p4rt.TLSConfig{CAFile: newPKI(t).ca}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := startTarget(t, "", grpc.Creds(credentials.NewTLS(tt.server)))
			p, _ := openProgrammer(t, rt.addr, 1, tt.client, 0)
			if !tt.wantReady {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := p.WaitReady(ctx); err == nil {
					t.Fatal("connected although the TLS handshake should fail")
				}
				return
			}
			ctx := testCtx(t)
			if err := p.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Sync(ctx, baseSet(t)); err != nil {
				t.Fatal(err)
			}
			requireEqual(t, readTarget(t, p), withoutInitialDefaults(p.info, baseSet(t)))
		})
	}
}
