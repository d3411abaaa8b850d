package translator

import (
	"fmt"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
)

// TestIPSetDeltaIsAMemberLevelDiff: a Felix IPSetDeltaUpdate changes exactly the entries of the members it
// names (the set's journal shows them and nothing else), with or without the model's delta (a restored
// change set falls back to comparing the members, with the same result).
func TestIPSetDeltaIsAMemberLevelDiff(t *testing.T) {
	for _, restored := range []bool{false, true} {
		t.Run(fmt.Sprintf("restored=%v", restored), func(t *testing.T) {
			var members []string
			for i := 0; i < 500; i++ {
				members = append(members, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
			}
			live := model.NewState()
			applyMsgs(t, live, msgConfig(), msgSet("s:big", proto.IPSetUpdate_NET, members...),
				msgSet("n:ports", proto.IPSetUpdate_IP_AND_PORT, "10.65.0.2,tcp:80"))
			tr := New(testPorts, testNode())
			res := tr.Apply(live.Clone(), live.TakeChanges())
			gen := res.Entries.Generation()
			applyMsgs(t, live, &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetDeltaUpdate{IpsetDeltaUpdate: &proto.IPSetDeltaUpdate{
				Id: "s:big", AddedMembers: []string{"192.0.2.0/24", "2001:db8::/32", "10.0.0.0/24"}, RemovedMembers: []string{"10.0.1.0/24"}}}},
				&proto.ToDataplane{Payload: &proto.ToDataplane_IpsetDeltaUpdate{IpsetDeltaUpdate: &proto.IPSetDeltaUpdate{
					Id: "n:ports", AddedMembers: []string{"fd00:65::2,udp:53"}}}})
			c := live.TakeChanges()
			if restored {
				live.RestoreChanges(c)
				c = live.TakeChanges()
			}
			if _, ok := c.IPSetDelta("s:big"); ok == restored {
				t.Fatalf("model delta offered = %v", ok)
			}
			res = tr.Apply(live.Clone(), c)
			keys, ok := res.Entries.ChangedSince(gen)
			if !ok {
				t.Fatal("journal lost")
			}
			seen := map[string]bool{}
			for _, k := range keys {
				seen[string(k)] = true
			}
			// 192.0.2.0/24 and 2001:db8::/32 added, 10.0.1.0/24 removed (10.0.0.0/24 was there already),
			// one IP_AND_PORT member added.
			if len(seen) != 4 {
				t.Errorf("%d keys changed, want 4: %v", len(seen), keys)
			}
			if !res.Entries.Equal(Translate(live.Clone(), testPorts, testNode()).Entries) {
				t.Error("the result differs from a fresh translation")
			}
		})
	}
}
