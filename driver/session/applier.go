package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Applier is the apply stage: it makes the dataplane match desired. It is called once at each session's
// InSync with the complete desired state (changes.Resync set), then once per coalesced batch. changes
// lists what changed since the last successful Apply; after an error the same changes (merged with newer
// ones) come again on the next call. desired is a snapshot the Applier may keep reading until it returns
// (and after: it is never modified). Calls are never concurrent.
//
// A nil error means everything in desired is programmed: endpoints are then reported "up" to Felix. To
// report that only some endpoints failed, return (or wrap) an *EndpointErrors.
type Applier interface {
	Apply(ctx context.Context, desired *model.State, changes model.Changes) error
}

// EndpointErrors reports per-endpoint failures of an otherwise completed apply: the listed endpoints are
// reported "error", the others "up". The apply still counts as failed (retried, not ready).
type EndpointErrors struct {
	Workloads map[model.WorkloadEndpointKey]error
	Hosts     map[string]error
}

func (e *EndpointErrors) Error() string {
	return fmt.Sprintf("%d workload and %d host endpoints failed", len(e.Workloads), len(e.Hosts))
}

// ErrNoDataplane is returned by NoDataplane.
var ErrNoDataplane = errors.New("no dataplane configured: nothing is programmed")

// NoDataplane is the Applier of a manager without a target: every apply fails with ErrNoDataplane, so
// endpoints are reported "error" and the manager is never ready.
type NoDataplane struct{}

// Apply implements Applier.
func (NoDataplane) Apply(context.Context, *model.State, model.Changes) error { return ErrNoDataplane }

// RecordedApply is one call seen by a Recorder.
type RecordedApply struct {
	Desired *model.State
	Changes model.Changes
	At      time.Time
	Err     error
	// Pending is true while the call has not returned.
	Pending bool
}

// Recorder is an Applier for tests: it records every call and returns what Result says (nil by default:
// it then claims success for a dataplane that does not exist, so only tests and the manager's explicit
// test mode may use it).
type Recorder struct {
	// Result, if set, decides each call's error (n counts calls from 1).
	Result func(n int, desired *model.State, changes model.Changes) error

	mu    sync.Mutex
	calls []RecordedApply
	wake  chan struct{}
}

// Apply implements Applier. The call is recorded when it starts (so tests can see an apply in progress);
// its error is filled in when Result returns.
func (r *Recorder) Apply(_ context.Context, desired *model.State, changes model.Changes) error {
	r.mu.Lock()
	n := len(r.calls) + 1
	r.calls = append(r.calls, RecordedApply{Desired: desired, Changes: changes, At: time.Now(), Pending: true})
	r.signal()
	r.mu.Unlock()
	var err error
	if r.Result != nil {
		err = r.Result(n, desired, changes)
	}
	r.mu.Lock()
	r.calls[n-1].Err = err
	r.calls[n-1].Pending = false
	r.signal()
	r.mu.Unlock()
	return err
}

func (r *Recorder) signal() {
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// Applies returns the calls so far.
func (r *Recorder) Applies() []RecordedApply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RecordedApply(nil), r.calls...)
}

// WaitFor waits until cond holds for the calls so far (checked at every call) or ctx ends.
func (r *Recorder) WaitFor(ctx context.Context, cond func([]RecordedApply) bool) ([]RecordedApply, error) {
	for {
		r.mu.Lock()
		calls := append([]RecordedApply(nil), r.calls...)
		if cond(calls) {
			r.mu.Unlock()
			return calls, nil
		}
		if r.wake == nil {
			r.wake = make(chan struct{})
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return calls, fmt.Errorf("waiting for applies (have %d): %w", len(calls), ctx.Err())
		}
	}
}

// ApplySummary is a JSON-friendly digest of a recorded apply (the manager's test-mode /debug/applies).
type ApplySummary struct {
	Changes string         `json:"changes"`
	Resync  bool           `json:"resync"`
	Objects map[string]int `json:"objects"`
	Error   string         `json:"error,omitempty"`
}

// Summaries digests the calls so far.
func (r *Recorder) Summaries() []ApplySummary {
	var out []ApplySummary
	for _, c := range r.Applies() {
		s := ApplySummary{Changes: c.Changes.String(), Resync: c.Changes.Resync, Objects: map[string]int{}}
		counts := c.Desired.Counts()
		kinds := make([]model.Kind, 0, len(counts))
		for k := range maps.Keys(counts) {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
		for _, k := range kinds {
			if counts[k] > 0 {
				s.Objects[k.String()] = counts[k]
			}
		}
		if c.Err != nil {
			s.Error = c.Err.Error()
		}
		out = append(out, s)
	}
	return out
}
