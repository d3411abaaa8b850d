package scenario_test

import (
	"bytes"
	"testing"

	gogoproto "github.com/gogo/protobuf/proto"

	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

// The Felix emulator must read a compiled stream with the same steps and messages.
func TestFelixEmulatorReadsCompiledStreams(t *testing.T) {
	s, err := scenario.Load("testdata/calico-tiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := scenario.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := st.WriteJSONL(&buf); err != nil {
		t.Fatal(err)
	}
	fs, err := felixsim.ParseStream(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	var msgs int
	for _, it := range st.Items {
		if it.Msg == nil {
			titles = append(titles, it.Step)
		} else {
			msgs++
		}
	}
	if got := fs.Steps(); len(got) != len(titles) || got[0] != titles[0] || got[len(got)-1] != titles[len(titles)-1] {
		t.Fatalf("emulator steps %q, want %q", got, titles)
	}
	got := fs.Messages()
	if len(got) != msgs {
		t.Fatalf("emulator read %d messages, want %d", len(got), msgs)
	}
	i := 0
	for _, it := range st.Items {
		if it.Msg != nil {
			if !gogoproto.Equal(it.Msg, got[i]) {
				t.Fatalf("message %d differs: %v vs %v", i, it.Msg, got[i])
			}
			i++
		}
	}
	snap, err := fs.Through("")
	if err != nil || len(snap) == 0 || snap[len(snap)-1].GetInSync() == nil {
		t.Errorf("the part before the first marker must end with InSync (%d messages, %v)", len(snap), err)
	}
}
