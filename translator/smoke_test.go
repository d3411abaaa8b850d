package translator

import (
	"testing"
)

func TestSmokeBasicCapture(t *testing.T) {
	st := loadCapture(t, "basic.jsonl")
	for _, step := range st.Steps() {
		msgs, err := st.Through(step)
		if err != nil {
			t.Fatal(err)
		}
		s := stateOf(t, msgs)
		res := Translate(s, testPorts, testNode())
		checkEncodes(t, res.Entries)
		t.Logf("%s: %d entries; report: %s", step, res.Entries.Len(), res.Report.String())
	}
}
