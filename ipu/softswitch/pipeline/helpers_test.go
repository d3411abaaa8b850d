package pipeline

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/vectors"
)

// newK8sStore returns a store running k8s.p4's P4Info.
func newK8sStore(t testing.TB, workers int) *tables.Store {
	t.Helper()
	st := tables.NewStore(tables.Options{Workers: workers})
	info, err := p4src.P4Info()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		&p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		t.Fatalf("set pipeline: %v", err)
	}
	return st
}

func newTestPipeline(t testing.TB, workers int) (*Pipeline, *tables.Store) {
	t.Helper()
	st := newK8sStore(t, workers)
	p, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func write(t testing.TB, st *tables.Store, ups []*p4v1.Update) {
	t.Helper()
	errs, err := st.Write(ups, p4v1.WriteRequest_CONTINUE_ON_ERROR)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("update %d: %v", i, e)
		}
	}
}

func mustPacket(desc string) []byte {
	b, err := vectors.ParsePacket(desc)
	if err != nil {
		panic(err)
	}
	return b
}
