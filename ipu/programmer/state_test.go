package programmer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// The slot index finds, adds and removes keys like a map, also when keys
// share a hash (chained slots) and when the arena empties and restarts.
func TestSlotIndexBehavesLikeAMap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		buckets uint64 // 0: the real hash
	}{
		{"real hash", 0},
		{"every key collides", 1},
		{"few hashes", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Programmer{slots: newIndex(), counts: map[string]int32{}}
			p.slots.collide = tc.buckets
			ref := map[entry.Key]*slot{}
			rng := rand.New(rand.NewPCG(1, 2))
			key := func(i int) entry.Key {
				return entry.Member("ap", fmt.Sprintf("m%0*d", 1+i%5, i), entry.Act("a")).Key()
			}
			for step := 0; step < 20000; step++ {
				k := key(rng.IntN(3000))
				switch rng.IntN(3) {
				case 0, 1:
					s := p.slot(k)
					if want, ok := ref[k]; ok && want != s {
						t.Fatalf("step %d: slot(%s) is a new slot, want the existing one", step, k)
					}
					if s.key != k {
						t.Fatalf("step %d: slot(%s) has key %s", step, k, s.key)
					}
					ref[k] = s
				case 2:
					if s, ok := ref[k]; ok {
						p.remove(s)
						delete(ref, k)
					}
				}
				if step%1000 == 999 && rng.IntN(4) == 0 {
					for k, s := range ref { // empty the arena now and then
						p.remove(s)
						delete(ref, k)
					}
				}
				if got, want := p.lookup(k), ref[k]; got != want {
					t.Fatalf("step %d: lookup(%s) = %p, want %p", step, k, got, want)
				}
			}
			n := 0
			for s := range p.allSlots() {
				n++
				if ref[s.key] != s {
					t.Fatalf("allSlots yields %s, which is not in use", s.key)
				}
			}
			if n != len(ref) || p.slab.used != len(ref) {
				t.Fatalf("allSlots yields %d slots, arena uses %d, want %d", n, p.slab.used, len(ref))
			}
			for k, s := range ref {
				if p.lookup(k) != s {
					t.Fatalf("lookup(%s) lost", k)
				}
			}
		})
	}
}

// An entry whose group is not desired waits (reported with the reason, not
// rejected), and is installed by the first Sync that also desires the group.
func TestEntryWaitingForItsGroupIsReportedThenInstalled(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	svc := service(0x0a600001, "svc/later")
	s := mustSet(t, route(1, 0x0a000000, 24, 1), svc)
	_, err := p.Sync(ctx, s)
	var se *SyncError
	if !errors.As(err, &se) || se.Failures["ingress.services"][codes.FailedPrecondition] != 1 ||
		!strings.Contains(se.Error(), `waits for group "svc/later"`) {
		t.Fatalf("Sync = %v, want the service entry reported as waiting for its group", err)
	}
	if len(p.Rejected()) != 0 || p.InSync() {
		t.Fatalf("a waiting entry is pending, not rejected: rejected %v, in sync %v", p.Rejected(), p.InSync())
	}
	s.Put(backend("svc/later/a", 0x0a010001))
	s.Put(entry.Group("ingress.backends", "svc/later", entry.W("svc/later/a", 1)))
	if _, err := p.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !p.InSync() || len(p.trouble) != 0 {
		t.Fatalf("in sync %v, trouble %v", p.InSync(), p.trouble)
	}
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, s))
}
