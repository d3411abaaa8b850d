package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/calico-p4/calico-p4/driver/services"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

// Services reach each manager through its own watch (driver/services), here its --services-file: the
// harness plays the API server, writing the scenario's Services and EndpointSlices of the current step to
// every node's file, and waits until the manager's calico_p4_services_applied_revision shows that file's
// revision applied. (The file source runs the same informer code as an API server watch, over an
// in-memory list/watch; driver/services tests the informers against client-go's fake clientset.)

const metricServicesApplied = "calico_p4_services_applied_revision"

// ServicesFile is one manager's --services-file.
type ServicesFile struct {
	Path string
	rev  uint64
	last []byte // the objects last written (revision aside)
}

// newServicesFile creates the file empty (revision 1) before its manager starts, so every revision the
// harness writes later is higher than anything the manager has seen.
func newServicesFile(path string) (*ServicesFile, error) {
	f := &ServicesFile{Path: path}
	if _, err := f.Write(&scenario.KubeObjects{}); err != nil {
		return nil, err
	}
	return f, nil
}

// Write replaces the file's objects; it returns the revision to wait for, or 0 when the objects are the
// ones already written (nothing to wait for).
func (f *ServicesFile) Write(objs *scenario.KubeObjects) (uint64, error) {
	var raw []json.RawMessage
	for _, s := range objs.Services {
		b, err := json.Marshal(s)
		if err != nil {
			return 0, err
		}
		raw = append(raw, b)
	}
	for _, s := range objs.Slices {
		b, err := json.Marshal(s)
		if err != nil {
			return 0, err
		}
		raw = append(raw, b)
	}
	content, err := json.Marshal(raw)
	if err != nil {
		return 0, err
	}
	if f.last != nil && bytes.Equal(content, f.last) {
		return 0, nil
	}
	f.rev++
	b, err := json.MarshalIndent(services.File{Revision: f.rev, Objects: raw}, "", " ")
	if err != nil {
		return 0, err
	}
	tmp := f.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, f.Path); err != nil {
		return 0, err
	}
	f.last = content
	return f.rev, nil
}

// WaitServices waits until the manager's dataplane reflects revision rev of its services file.
func (m *Manager) WaitServices(ctx context.Context, rev uint64) error {
	if rev == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	got := -1.0
	for {
		if mt, err := m.Scrape(ctx); err == nil {
			if got = mt.Sum(metricServicesApplied); got >= float64(rev) {
				return nil
			}
		}
		if !m.Alive() {
			return fmt.Errorf("manager exited: %v\n%s", m.err, tail(m.Log(), 6000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the manager to apply services revision %d (applied %v): %w\nmanager log:\n%s",
				rev, got, ctx.Err(), tail(m.Log(), 6000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeServices writes step's Services and EndpointSlices to every node's file; it returns the revision
// each must reach (0: unchanged).
func (c *Cluster) writeServices(s *scenario.Scenario, step int) ([]uint64, error) {
	objs, err := s.KubeObjects(step)
	if err != nil {
		return nil, err
	}
	revs := make([]uint64, len(c.Runs))
	for i, r := range c.Runs {
		if revs[i], err = r.Services.Write(objs); err != nil {
			return nil, fmt.Errorf("node %s: services file: %w", r.Info.Name, err)
		}
	}
	return revs, nil
}

func (c *Cluster) waitServices(ctx context.Context, revs []uint64) error {
	for i, r := range c.Runs {
		if err := r.Manager.WaitServices(ctx, revs[i]); err != nil {
			return fmt.Errorf("node %s: %w", r.Info.Name, err)
		}
	}
	return nil
}

// Peer returns a probe peer of the current step by name (a pod "<ns>/<pod>", "host/<node>", "ext/<name>").
func (c *Cluster) Peer(name string) (PeerInfo, error) {
	peers, _, err := c.Peers(c.Felix.Step())
	if err != nil {
		return PeerInfo{}, err
	}
	for _, p := range peers {
		if p.Name == name {
			return PeerInfo{Name: p.Name, NetNS: p.NetNS, IPv4: p.IPv4, IPv6: p.IPv6}, nil
		}
	}
	return PeerInfo{}, fmt.Errorf("no peer %s", name)
}

// PeerInfo is a probe peer: its namespace and addresses.
type PeerInfo struct {
	Name       string
	NetNS      string
	IPv4, IPv6 netip.Addr
}

// ServiceProbe is the outcome of n connections from one client to one service address.
type ServiceProbe struct {
	// Responders counts the connections each backend (its probe server's identity) answered.
	Responders map[string]int
	// Failed counts connections that got no answer, with the last error.
	Failed  int
	LastErr error
}

func (p ServiceProbe) String() string {
	var rs []string
	for k, v := range p.Responders {
		rs = append(rs, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(rs)
	s := "answered by [" + strings.Join(rs, " ") + "]"
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed (last: %v)", p.Failed, p.LastErr)
	}
	return s
}

// ProbeService opens n connections (each from its own source port: a new flow, a new backend choice)
// from peer from to addr:port and records who answered. timeout bounds each attempt.
func (c *Cluster) ProbeService(ctx context.Context, from string, addr netip.Addr, proto probe.Protocol, port, n int,
	timeout time.Duration) (ServiceProbe, error) {
	src, err := c.Peer(from)
	if err != nil {
		return ServiceProbe{}, err
	}
	srcAddr := src.IPv4
	if addr.Is6() {
		srcAddr = src.IPv6
	}
	out := ServiceProbe{Responders: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req := probe.Request{FromNetNS: src.NetNS, To: addr, Proto: proto, Port: port, Timeout: timeout, Attempts: 1}
			c.Config.Probe.Sources.Fill(&req, srcAddr)
			r := probe.Do(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			if r.OK {
				out.Responders[r.Responder]++
			} else {
				out.Failed++
				out.LastErr = r.Err
			}
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}
