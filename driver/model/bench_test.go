package model_test

import (
	"fmt"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
)

func bigState(b *testing.B, endpoints, setMembers int) *model.State {
	b.Helper()
	s := model.NewState()
	members := make([]string, setMembers)
	for i := range members {
		members[i] = fmt.Sprintf("10.%d.%d.%d/32", i>>16&255, i>>8&255, i&255)
	}
	if err := s.Apply(ipsetUpdate("s:big", proto.IPSetUpdate_NET, members...)); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < endpoints; i++ {
		if err := s.Apply(wepUpdate(fmt.Sprintf("ns/pod-%d", i), nil)); err != nil {
			b.Fatal(err)
		}
	}
	s.TakeChanges()
	return s
}

// BenchmarkIPSetUpdate10k: decoding a 10 000-member NET set update.
func BenchmarkIPSetUpdate10k(b *testing.B) {
	members := make([]string, 10000)
	for i := range members {
		members[i] = fmt.Sprintf("10.%d.%d.%d/32", i>>16&255, i>>8&255, i&255)
	}
	msg := ipsetUpdate("s:big", proto.IPSetUpdate_NET, members...)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := model.NewState()
		if err := s.Apply(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCloneThenDelta: the apply stage's snapshot of a node with 1 000 endpoints and a 10 000-member
// set, followed by one delta on that (now shared) set — the per-batch cost of copy-on-apply.
func BenchmarkCloneThenDelta(b *testing.B) {
	s := bigState(b, 1000, 10000)
	delta := ipsetDelta("s:big", []string{"192.0.2.1/32"}, []string{"192.0.2.1/32"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = s.Clone()
		if err := s.Apply(delta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeltaUnshared: a delta when no snapshot shares the set (mutated in place).
func BenchmarkDeltaUnshared(b *testing.B) {
	s := bigState(b, 0, 10000)
	add := ipsetDelta("s:big", []string{"192.0.2.1/32"}, nil)
	del := ipsetDelta("s:big", nil, []string{"192.0.2.1/32"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(add); err != nil {
			b.Fatal(err)
		}
		if err := s.Apply(del); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkloadEndpointUpdate: one endpoint update (decode, validate, compare with the stored one).
func BenchmarkWorkloadEndpointUpdate(b *testing.B) {
	s := bigState(b, 1000, 0)
	msgs := []*proto.ToDataplane{wepUpdate("ns/pod-1", nil),
		wepUpdate("ns/pod-1", func(ep *proto.WorkloadEndpoint) { ep.Ipv4Nets = []string{"10.65.9.9/32"} })}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(msgs[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
