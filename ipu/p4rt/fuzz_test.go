package p4rt

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode: whatever a target sends back, Decode must not panic, and an
// entry it accepts must be canonical, valid against the P4Info and encode
// back to an entity that decodes to the same entry.
func FuzzDecode(f *testing.F) {
	in := testInfo(f)
	ids := newFakeIDs()
	for _, e := range wireEntries() {
		ent, err := in.Encode(e, ids)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := proto.Marshal(ent)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ent := &p4v1.Entity{}
		if proto.Unmarshal(b, ent) != nil {
			return
		}
		e, err := in.Decode(ent, ids)
		if err != nil {
			return
		}
		if !e.Equal(e.Canonical()) {
			t.Fatalf("decoded entry is not canonical: %s", e)
		}
		if e.Validate() != nil || in.Validate(e) != nil {
			return // a target may send what the P4Info forbids; the programmer deletes it
		}
		again, err := in.Encode(e, ids)
		if err != nil {
			t.Fatalf("re-encode %s: %v", e, err)
		}
		e2, err := in.Decode(again, ids)
		if err != nil || !e2.Equal(e) {
			t.Fatalf("round trip of %s gave %s, %v", e, e2, err)
		}
	})
}
