package p4rt_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

func serve(t *testing.T, sock string) *softswitch.Server {
	t.Helper()
	srv, err := softswitch.New(softswitch.Config{DeviceID: 1})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(lis); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return srv
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, sock string, election uint64) *p4rt.Client {
	t.Helper()
	c, err := p4rt.Dial(context.Background(), p4rt.Config{Address: sock, DeviceID: 1, ElectionID: p4rt.Uint128{Low: election},
		Logger: zaptest.NewLogger(t), MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func pipeline(t *testing.T, profile p4rt.TargetProfile, dev []byte) p4rt.Pipeline {
	t.Helper()
	info, err := p4rt.LoadP4Info("testdata/test.p4info.txtpb")
	if err != nil {
		t.Fatal(err)
	}
	return p4rt.Pipeline{Profile: profile, P4Info: info, DeviceConfig: dev}
}

func TestCapabilitiesAndPrimary(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	serve(t, sock)
	c := dial(t, sock, 1)
	ctx := ctxFor(t)
	v, err := c.Capabilities(ctx)
	if err != nil || v != softswitch.APIVersion {
		t.Fatalf("Capabilities = %q, %v", v, err)
	}
	st, err := c.WaitPrimary(ctx)
	if err != nil || !st.Primary || !st.Connected || st.Epoch != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestEnsurePipelinePushesOnlyWhenDifferent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	serve(t, sock)
	c := dial(t, sock, 1)
	ctx := ctxFor(t)
	if _, err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	pl := pipeline(t, p4rt.ProfileEmbedded, nil)
	steps := []struct {
		name string
		pl   p4rt.Pipeline
		want p4rt.PipelineResult
	}{
		{"empty target", pl, p4rt.PipelineCommitted},
		{"same pipeline", pl, p4rt.PipelineUnchanged},
		{"same P4Info under another cookie", p4rt.Pipeline{Profile: pl.Profile, P4Info: pl.P4Info, Cookie: 42}, p4rt.PipelineUnchanged},
		{"changed P4Info", func() p4rt.Pipeline {
			changed := proto.Clone(pl.P4Info).(*p4configv1.P4Info)
			changed.Tables[0].Size = 8192
			return p4rt.Pipeline{Profile: pl.Profile, P4Info: changed}
		}(), p4rt.PipelineReconciled},
		{"p4-dpdk device config", pipeline(t, p4rt.ProfileP4DPDK, []byte("pb.bin contents")), p4rt.PipelineCommitted},
		{"p4-dpdk again", pipeline(t, p4rt.ProfileP4DPDK, []byte("pb.bin contents")), p4rt.PipelineUnchanged},
	}
	for _, s := range steps {
		got, err := c.EnsurePipeline(ctx, s.pl)
		if err != nil || got != s.want {
			t.Fatalf("%s: EnsurePipeline = %q, %v; want %q", s.name, got, err, s.want)
		}
	}
	cfg, err := c.GetPipeline(ctx, p4v1.GetForwardingPipelineConfigRequest_ALL)
	if err != nil || string(cfg.GetP4DeviceConfig()) != "pb.bin contents" {
		t.Fatalf("device config on the target: %q, %v", cfg.GetP4DeviceConfig(), err)
	}
}

func TestReconcileKeepsEntriesWhenThePipelineChanges(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	serve(t, sock)
	c := dial(t, sock, 1)
	ctx := ctxFor(t)
	if _, err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	pl := pipeline(t, p4rt.ProfileEmbedded, nil)
	if _, err := c.EnsurePipeline(ctx, pl); err != nil {
		t.Fatal(err)
	}
	in, _ := p4rt.NewInfo(pl.P4Info)
	e := entry.Table("ingress.classify", 0, entry.Act("ingress.drop"), entry.Exact("istd.input_port", entry.Uint(3)))
	ent, err := in.Encode(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, []*p4v1.Update{{Type: p4v1.Update_INSERT, Entity: ent}}); err != nil {
		t.Fatal(err)
	}
	changed := proto.Clone(pl.P4Info).(*p4configv1.P4Info)
	changed.Tables[1].Size = 4096
	if got, err := c.EnsurePipeline(ctx, p4rt.Pipeline{Profile: p4rt.ProfileEmbedded, P4Info: changed}); err != nil || got != p4rt.PipelineReconciled {
		t.Fatalf("EnsurePipeline = %q, %v", got, err)
	}
	n := 0
	c.Read(ctx, []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}, func(*p4v1.Entity) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d entries after RECONCILE_AND_COMMIT, want 1", n)
	}
}

func TestWriteErrorsArePerUpdate(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	serve(t, sock)
	c := dial(t, sock, 1)
	ctx := ctxFor(t)
	if _, err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	pl := pipeline(t, p4rt.ProfileEmbedded, nil)
	if _, err := c.EnsurePipeline(ctx, pl); err != nil {
		t.Fatal(err)
	}
	in, _ := p4rt.NewInfo(pl.P4Info)
	mk := func(port uint64) *p4v1.Entity {
		ent, err := in.Encode(entry.Table("ingress.classify", 0, entry.Act("ingress.drop"), entry.Exact("istd.input_port", entry.Uint(port))), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ent
	}
	if err := c.Write(ctx, []*p4v1.Update{{Type: p4v1.Update_INSERT, Entity: mk(1)}}); err != nil {
		t.Fatal(err)
	}
	err := c.Write(ctx, []*p4v1.Update{
		{Type: p4v1.Update_INSERT, Entity: mk(2)},
		{Type: p4v1.Update_INSERT, Entity: mk(1)},
		{Type: p4v1.Update_DELETE, Entity: mk(9)},
	})
	var we *p4rt.WriteError
	if !errors.As(err, &we) || len(we.Updates) != 3 {
		t.Fatalf("Write = %v, want a WriteError with 3 statuses", err)
	}
	want := []codes.Code{codes.OK, codes.AlreadyExists, codes.NotFound}
	for i, u := range we.Updates {
		if u.Code != want[i] {
			t.Errorf("update %d: %s (%s), want %s", i, u.Code, u.Message, want[i])
		}
	}
}

func TestBackupNeverWritesAndTakesOverOnlyWithAHigherID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	serve(t, sock)
	ctx := ctxFor(t)
	high := dial(t, sock, 5)
	if _, err := high.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	low := dial(t, sock, 3)
	deadline := time.Now().Add(30 * time.Second)
	for !low.Status().Connected {
		if time.Now().After(deadline) {
			t.Fatal("backup never connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := low.Status(); st.Primary || st.HighestElectionID.Low != 5 {
		t.Fatalf("backup status %+v", st)
	}
	if err := low.Write(ctx, nil); !errors.Is(err, p4rt.ErrNotPrimary) {
		t.Fatalf("backup Write = %v, want ErrNotPrimary", err)
	}
	// The primary leaves: per the spec a lower id does not take over.
	high.Close()
	time.Sleep(50 * time.Millisecond)
	if low.IsPrimary() {
		t.Fatal("a lower election id took over")
	}
	higher := dial(t, sock, 6)
	if _, err := higher.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClientReconnectsAfterTheTargetRestarts(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	srv := serve(t, sock)
	c := dial(t, sock, 1)
	ctx := ctxFor(t)
	st, err := c.WaitPrimary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changed := c.Changed()
	srv.Stop()
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no status change when the target went away")
	}
	serve(t, sock)
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := c.Status()
		if now.Primary && now.Epoch > st.Epoch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not primary again after the restart: %+v", now)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoadPipelineChecksTheProfile(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "k8s.pb.bin")
	os.WriteFile(dev, []byte("x"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty.pb.bin")
	os.WriteFile(empty, nil, 0o600)
	info := "testdata/test.p4info.txtpb"
	tests := []struct {
		profile p4rt.TargetProfile
		files   p4rt.PipelineFiles
		ok      bool
	}{
		{p4rt.ProfileEmbedded, p4rt.PipelineFiles{P4Info: info}, true},
		{p4rt.ProfileEmbedded, p4rt.PipelineFiles{P4Info: info, DeviceConfig: dev}, false},
		{p4rt.ProfileP4DPDK, p4rt.PipelineFiles{P4Info: info, DeviceConfig: dev}, true},
		{p4rt.ProfileP4DPDK, p4rt.PipelineFiles{P4Info: info}, false},
		{p4rt.ProfileP4DPDK, p4rt.PipelineFiles{P4Info: info, DeviceConfig: empty}, false},
		{p4rt.ProfileIPUES2K, p4rt.PipelineFiles{P4Info: info}, false},
		{p4rt.ProfileIPUES2K, p4rt.PipelineFiles{P4Info: info, DeviceConfig: dev}, true},
		{"tofino", p4rt.PipelineFiles{P4Info: info}, false},
		{p4rt.ProfileEmbedded, p4rt.PipelineFiles{P4Info: "testdata/missing.txtpb"}, false},
	}
	for _, tt := range tests {
		_, err := p4rt.LoadPipeline(tt.profile, tt.files, nil)
		if (err == nil) != tt.ok {
			t.Errorf("LoadPipeline(%s, %+v) = %v, want ok=%v", tt.profile, tt.files, err, tt.ok)
		}
	}
}

func TestRolesArbitrateSeparately(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	serve(t, sock)
	ctx := ctxFor(t)
	mk := func(role string, election uint64) *p4rt.Client {
		c, err := p4rt.Dial(context.Background(), p4rt.Config{Address: sock, DeviceID: 1, Role: role,
			ElectionID: p4rt.Uint128{Low: election}, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := mk("", 1), mk("calico-p4", 1)
	for _, c := range []*p4rt.Client{a, b} {
		if _, err := c.WaitPrimary(ctx); err != nil {
			t.Fatalf("role %q: %v", c.Config().Role, err)
		}
	}
	if _, err := a.EnsurePipeline(ctx, pipeline(t, p4rt.ProfileEmbedded, nil)); err != nil {
		t.Fatal(err)
	}
	in, _ := p4rt.NewInfo(pipeline(t, p4rt.ProfileEmbedded, nil).P4Info)
	ent, _ := in.Encode(entry.Table("ingress.classify", 0, entry.Act("ingress.drop"), entry.Exact("istd.input_port", entry.Uint(1))), nil)
	if err := b.Write(ctx, []*p4v1.Update{{Type: p4v1.Update_INSERT, Entity: ent}}); err != nil {
		t.Fatalf("primary of role calico-p4 cannot write: %v", err)
	}
}
