package ports

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/p4src"
)

// Spec names an interface to attach.
type Spec struct {
	// Name is the interface name; the port id is IDForName(Name).
	Name string
	// NetNS is the path of the network namespace the interface lives in ("" = the softswitch's).
	NetNS string
	// Kind is KindAFPacket (default) or KindTAP.
	Kind Kind
	// TAP is an already open TAP descriptor to use instead of opening the device by name (KindTAP).
	TAP *os.File
}

func (s Spec) String() string {
	n := s.Name
	if s.NetNS != "" {
		n += "@" + s.NetNS
	}
	if s.Kind == KindTAP {
		n += " (tap)"
	}
	return n
}

// State of a port.
type State string

const (
	StateUp      State = "up"      // open, receiving
	StatePending State = "pending" // the interface is not there (yet); retried
)

// PortInfo describes an attached port.
type PortInfo struct {
	Spec                                                       Spec
	ID                                                         uint32
	State                                                      State
	LastError                                                  string
	RxPackets, RxBytes, TxPackets, TxBytes, TxErrors, RxErrors uint64
	// RxDropped counts frames the kernel dropped because the port's receive ring (or socket buffer)
	// was full (PACKET_STATISTICS), as of the last Ports call.
	RxDropped uint64
}

// Config configures a Dataplane.
type Config struct {
	Pipeline *pipeline.Pipeline
	// Workers is the number of pipeline workers shared by the receive loops (default: the store's
	// worker count; at most that).
	Workers int
	// Batch is the number of frames received per round (default 32).
	Batch int
	// RingFrames is the number of slots of each AF_PACKET socket's TPACKET_V2 receive ring (default
	// 64, 2 KiB each; negative: no ring, frames are received with recvmmsg).
	RingFrames int
	// Spin is how long a poller keeps polling without blocking after traffic (negative or, by
	// default, zero: never, except with PollerCPUs, where the default is 200µs). It trades CPU for
	// latency: a frame arriving within the window is forwarded without a wakeup. On CPUs shared with
	// the pods it costs more than it saves (the spinning poller competes with the pod it waits for;
	// docs/benchmarks.md).
	Spin time.Duration
	// Pollers is the number of receive threads (default: one per CPU the process may run on). With
	// more than one, poller i is pinned to the i-th of those CPUs and every AF_PACKET port has one
	// socket per poller in a PACKET_FANOUT group steered by CPU: a frame is forwarded by the poller of
	// the CPU that received it (the sending pod's), like the kernel forwards in that CPU's softirq —
	// no wakeup crosses CPUs. One poller is not pinned and polls every port.
	Pollers int
	// PollerCPUs pins poller i to PollerCPUs[i] instead (and sets the number of pollers): e.g. one
	// poller on a CPU kept for it, with Spin, for a dedicated-core data plane.
	PollerCPUs []int
	// PollerPriority, if > 0, runs the poller threads SCHED_FIFO at that priority (1–99), so that a
	// woken poller preempts ordinary tasks on its CPU as softirq processing would. It needs
	// CAP_SYS_NICE; without it the pollers run as ordinary threads (logged). Do not combine with Spin
	// on CPUs shared with other work: a spinning real-time thread starves them (up to the kernel's
	// real-time throttling).
	PollerPriority int
	// PollerSlice is the pollers' scheduling slice when they are not SCHED_FIFO (default 100µs,
	// negative: the kernel's default). A slice shorter than other tasks' lets a woken poller preempt
	// the pod that sent the frame instead of waiting out its slice while the receive ring fills
	// (Linux 6.12 and later; older kernels ignore it).
	PollerSlice time.Duration
	// RetryInterval is how often ports whose interface is missing are retried (default 1s).
	RetryInterval time.Duration
	// PacketIn receives frames the pipeline sends to CPUPort (a copy). Nil drops them.
	PacketIn func(frame []byte)
	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Dataplane runs the pipeline over attached ports: a few pollers (epoll on locked threads, busy-polling
// for a short while after traffic) receive batches from their ports with recvmmsg, a pool of pipeline
// workers is shared by the pollers (one is held for a whole batch), and transmit is batched per
// destination port (sendmmsg).
type Dataplane struct {
	cfg     Config
	log     *zap.Logger
	pl      *pipeline.Pipeline
	workers chan *pipeline.Worker
	ids     *idMap

	mu     sync.Mutex
	ports  map[string]*port // by name
	byID   atomic.Pointer[map[uint32]*port]
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup

	pollers []*poller
	fanout  []int // the pollers' CPUs when AF_PACKET ports are opened as fanout groups

	noPort, packetInDrops, gsoDrops, collisions atomic.Uint64
}

type port struct {
	spec Spec
	id   uint32

	mu      sync.Mutex
	link    *link
	state   State
	lastErr string
	gen     int

	rxPkts, rxBytes, rxErrs, txPkts, txBytes, txErrs, rxDrops atomic.Uint64
}

// New builds a dataplane for pl. Call Close to stop it.
func New(cfg Config) (*Dataplane, error) {
	if cfg.Pipeline == nil {
		return nil, errors.New("ports: Config.Pipeline is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	max := cfg.Pipeline.Store().Workers()
	if cfg.Workers <= 0 || cfg.Workers > max {
		cfg.Workers = max
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.PollerSlice == 0 {
		cfg.PollerSlice = 100 * time.Microsecond
	}
	if cfg.RingFrames == 0 {
		cfg.RingFrames = 64
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Spin == 0 {
		cfg.Spin = -1
		if len(cfg.PollerCPUs) > 0 {
			cfg.Spin = 200 * time.Microsecond
		}
	}
	cpus, pinned, err := pollerCPUs(cfg)
	if err != nil {
		return nil, err
	}
	d := &Dataplane{cfg: cfg, log: cfg.Logger, pl: cfg.Pipeline, workers: make(chan *pipeline.Worker, cfg.Workers),
		ids: newIDMap(), ports: map[string]*port{}, stop: make(chan struct{})}
	for i := 0; i < cfg.Workers; i++ {
		w, err := cfg.Pipeline.NewWorker(i)
		if err != nil {
			return nil, err
		}
		d.workers <- w
	}
	empty := map[uint32]*port{}
	d.byID.Store(&empty)
	if pinned && len(cpus) > 1 {
		d.fanout = cpus
	}
	for i, cpu := range cpus {
		if !pinned {
			cpu = -1
		}
		pl, err := newPoller(d, i, cpu)
		if err != nil {
			return nil, fmt.Errorf("ports: poller: %w", err)
		}
		d.pollers = append(d.pollers, pl)
		d.wg.Add(1)
		go pl.run()
	}
	d.log.Info("receive threads", zap.Int("pollers", len(cpus)), zap.Bool("pinned", pinned), zap.Ints("fanout_cpus", d.fanout),
		zap.Int("ring_frames", cfg.RingFrames), zap.Duration("spin", cfg.Spin), zap.Int("fifo_priority", cfg.PollerPriority),
		zap.Duration("slice", cfg.PollerSlice))
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(&collector{d: d}); err != nil {
			return nil, fmt.Errorf("ports: registering metrics: %w", err)
		}
	}
	d.wg.Add(1)
	go d.retryLoop()
	return d, nil
}

// Attach attaches an interface as port IDForName(spec.Name). If the interface does not exist yet the
// port stays pending and is opened when it appears (the returned error is nil). A name whose id
// collides with an attached port's is refused with a *CollisionError.
func (d *Dataplane) Attach(ctx context.Context, spec Spec) (uint32, error) {
	if spec.Kind == "" {
		spec.Kind = KindAFPacket
	}
	if spec.Name == "" {
		return 0, errors.New("ports: attach: empty interface name")
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, errors.New("ports: dataplane closed")
	}
	if p, ok := d.ports[spec.Name]; ok {
		d.mu.Unlock()
		if p.spec.NetNS != spec.NetNS || p.spec.Kind != spec.Kind {
			return 0, fmt.Errorf("ports: %s is already attached as %s", spec.Name, p.spec)
		}
		return p.id, nil
	}
	id, err := d.ids.claim(spec.Name)
	if err != nil {
		d.mu.Unlock()
		d.collisions.Add(1)
		d.log.Error("port id collision: interface not attached", zap.Error(err))
		return 0, err
	}
	p := &port{spec: spec, id: id, state: StatePending}
	d.ports[spec.Name] = p
	d.publish()
	d.mu.Unlock()

	if err := d.open(p); err != nil && !IsNotPresent(err) {
		d.log.Warn("port not opened yet; will retry", zap.Stringer("port", spec), zap.Error(err))
	}
	return id, nil
}

// Detach closes and forgets a port.
func (d *Dataplane) Detach(name string) error {
	d.mu.Lock()
	p, ok := d.ports[name]
	if !ok {
		d.mu.Unlock()
		return fmt.Errorf("ports: %s is not attached", name)
	}
	delete(d.ports, name)
	d.ids.release(name)
	d.publish()
	d.mu.Unlock()
	p.mu.Lock()
	p.gen++
	if l := p.link; l != nil {
		d.unlink(p, l)
		p.link = nil
	}
	p.state = StatePending
	p.mu.Unlock()
	return nil
}

// publish rebuilds the id -> port map (under d.mu).
func (d *Dataplane) publish() {
	m := make(map[uint32]*port, len(d.ports))
	for _, p := range d.ports {
		m[p.id] = p
	}
	d.byID.Store(&m)
}

// Ports lists the attached ports, by name.
func (d *Dataplane) Ports() []PortInfo {
	d.mu.Lock()
	ps := make([]*port, 0, len(d.ports))
	for _, p := range d.ports {
		ps = append(ps, p)
	}
	d.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].spec.Name < ps[j].spec.Name })
	out := make([]PortInfo, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		pi := PortInfo{Spec: p.spec, ID: p.id, State: p.state, LastError: p.lastErr}
		p.mu.Unlock()
		pi.Spec.TAP = nil
		pi.RxPackets, pi.RxBytes, pi.RxErrors = p.rxPkts.Load(), p.rxBytes.Load(), p.rxErrs.Load()
		pi.TxPackets, pi.TxBytes, pi.TxErrors = p.txPkts.Load(), p.txBytes.Load(), p.txErrs.Load()
		if l := p.currentLink(); l != nil {
			p.rxDrops.Add(l.drops())
		}
		pi.RxDropped = p.rxDrops.Load()
		out = append(out, pi)
	}
	return out
}

func (p *port) currentLink() *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link
}

// PollerInfo describes a receive thread.
type PollerInfo struct {
	// CPU is the CPU the poller is pinned to (-1: not pinned).
	CPU int
	// Packets counts the frames it received.
	Packets uint64
}

// Pollers lists the receive threads.
func (d *Dataplane) Pollers() []PollerInfo {
	out := make([]PollerInfo, len(d.pollers))
	for i, pl := range d.pollers {
		out[i] = PollerInfo{CPU: pl.cpu, Packets: pl.packets.Load()}
	}
	return out
}

// open tries to open p's interface and start its receive loop.
func (d *Dataplane) open(p *port) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil {
		return nil
	}
	var l *link
	err := inNetNS(p.spec.NetNS, func() error {
		var err error
		switch {
		case p.spec.Kind == KindTAP && p.spec.TAP != nil:
			l, err = tapFromFile(p.spec.Name, p.spec.TAP)
		case p.spec.Kind == KindTAP:
			l, err = openTAP(p.spec.Name)
		default:
			l, err = openAFPacket(p.spec.Name, d.fanout, d.cfg.RingFrames)
		}
		return err
	})
	if err != nil {
		p.lastErr = err.Error()
		return err
	}
	p.link, p.state, p.lastErr = l, StateUp, ""
	p.gen++
	d.log.Info("port attached", zap.Stringer("port", p.spec), zap.Uint32("id", p.id), zap.Bool("vnet", l.vnet))
	gen := p.gen
	pls := d.pollersOf(p, l)
	l.refs.Store(int32(len(pls)))
	for _, pl := range pls {
		pl.do(func() { pl.add(p, l, gen) })
	}
	return nil
}

// pollersOf lists the pollers that receive from l: every poller for a fanout group (descriptor i is
// poller i's), else the one poller its port id picks.
func (d *Dataplane) pollersOf(p *port, l *link) []*poller {
	if len(l.fds) > 1 {
		return d.pollers
	}
	return []*poller{d.pollers[int(p.id)%len(d.pollers)]}
}

// unlink stops every poller of l from receiving from it; the last one closes it.
func (d *Dataplane) unlink(p *port, l *link) {
	for _, pl := range d.pollersOf(p, l) {
		pl.do(func() { pl.remove(l) })
	}
}

// pollerCPUs returns the CPUs of the pollers (one entry per poller) and whether they are pinned.
func pollerCPUs(cfg Config) ([]int, bool, error) {
	if len(cfg.PollerCPUs) > 0 {
		seen := map[int]bool{}
		for _, c := range cfg.PollerCPUs {
			if c < 0 || seen[c] {
				return nil, false, fmt.Errorf("ports: poller CPUs %v: each must be a distinct CPU number", cfg.PollerCPUs)
			}
			seen[c] = true
		}
		return cfg.PollerCPUs, true, nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, false, fmt.Errorf("ports: CPU affinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	n := cfg.Pollers
	if n <= 0 || n > len(cpus) {
		n = len(cpus)
	}
	if n <= 1 {
		return []int{-1}, false, nil
	}
	return cpus[:n], true, nil
}

func (d *Dataplane) retryLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		var pending []*port
		for _, p := range d.ports {
			p.mu.Lock()
			if p.link == nil {
				pending = append(pending, p)
			}
			p.mu.Unlock()
		}
		d.mu.Unlock()
		for _, p := range pending {
			_ = d.open(p)
		}
	}
}

// Close stops every receive loop and closes the ports.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	close(d.stop)
	ps := d.ports
	d.ports = map[string]*port{}
	d.publish()
	d.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		p.gen++
		p.link = nil // closed by the poller as it stops
		p.mu.Unlock()
	}
	for _, pl := range d.pollers {
		pl.do(func() {})
	}
	d.wg.Wait()
	for _, pl := range d.pollers {
		for _, a := range pl.ports {
			_ = a.l.close()
		}
	}
	return nil
}

// processOne runs one received frame (buf[Headroom:][:n], virtio-net header in front when the link
// has one) and queues the result.
func (d *Dataplane) processOne(w *pipeline.Worker, p *port, l *link, buf []byte, n int, tx *txState) {
	if n <= 0 {
		p.rxErrs.Add(1)
		return
	}
	p.rxPkts.Add(1)
	p.rxBytes.Add(uint64(n))
	var vh vnetHdr
	if l.vnet {
		vh = decodeVnet(buf[pipeline.Headroom-vnetLen:])
	}
	field := vh.partialField(n)
	var ports0 uint32
	var hasPorts bool
	if field >= 0 {
		ports0, hasPorts = partialPorts(buf[pipeline.Headroom:pipeline.Headroom+n], int(vh.csumStart), field)
		invert16(buf[pipeline.Headroom:], field)
	}
	res := w.RunIn(buf, n, p.id)
	if !res.Forwarded() {
		return
	}
	if res.Fate == p4src.FateReply {
		// Built by the pipeline (ARP/ND answer, or the ICMP error rejecting a packet to a service without
		// endpoints) with complete checksums: the received frame's offload metadata does not apply to it.
		// (A rejected UDP datagram's quoted checksum is its partial value as the sender left it.)
		d.output(res.Port, res.Data, vnetHdr{}, 0, tx)
		return
	}
	if field >= 0 {
		f := field + res.L3Shift
		invert16(res.Data, f)
		if hasPorts {
			if ports1, ok := partialPorts(res.Data, int(vh.csumStart)+res.L3Shift, f); ok {
				unportPartial(res.Data, f, ports0, ports1)
			}
		}
	}
	d.output(res.Port, res.Data, vh, res.L3Shift, tx)
}

// output queues frame for port out, fixing checksum-offload and GSO metadata for its new layout and
// for what the destination link can take.
func (d *Dataplane) output(out uint32, frame []byte, vh vnetHdr, shift int, tx *txState) {
	if out == CPUPort {
		if d.cfg.PacketIn != nil {
			d.cfg.PacketIn(append([]byte(nil), frame...))
		} else {
			d.packetInDrops.Add(1)
		}
		return
	}
	dst := (*d.byID.Load())[out]
	if dst == nil {
		d.noPort.Add(1)
		return
	}
	dst.mu.Lock()
	l := dst.link
	dst.mu.Unlock()
	if l == nil {
		dst.txErrs.Add(1)
		return
	}
	if vh.flags&vnetNeedsCsum != 0 {
		vh.csumStart = uint16(int(vh.csumStart) + shift)
		if vh.hdrLen > 0 {
			vh.hdrLen = uint16(int(vh.hdrLen) + shift)
		}
	}
	encapsulated := shift > 0
	gso := vh.gso()
	if gso != gsoNone && (encapsulated || !l.vnet || (gso != gsoTCPv4 && gso != gsoTCPv6 && gso != gsoUDPL4)) {
		// Segment in software: the destination cannot take this super-packet as it is.
		if gso != gsoTCPv4 && gso != gsoTCPv6 && gso != gsoUDPL4 {
			d.gsoDrops.Add(1)
			return
		}
		tx.segment(d, dst, l, frame, vh)
		return
	}
	if vh.flags&vnetNeedsCsum != 0 && (!l.vnet || encapsulated) {
		completeChecksum(frame, int(vh.csumStart), int(vh.csumStart)+int(vh.csumOffset))
		vh.flags &^= vnetNeedsCsum
	}
	if l.vnet {
		vh.encode(withPrefix(frame, vnetLen)[:vnetLen])
	}
	tx.queue(dst, l, frame)
}

// txState batches frames per destination port for one receive loop (sending through descriptor idx
// of each link, its poller's).
type txState struct {
	idx     int
	batches map[*port]*txEntry
	order   []*port
	seg     []byte
}

type txEntry struct {
	link  *link
	batch txBatch
	bytes uint64
}

func newTxState(idx int) *txState {
	return &txState{idx: idx, batches: map[*port]*txEntry{}, seg: make([]byte, vnetLen+pipeline.MaxPacket)}
}

func (t *txState) queue(p *port, l *link, frame []byte) {
	e := t.batches[p]
	if e == nil {
		e = &txEntry{}
		t.batches[p] = e
	}
	if e.link != l {
		e.link = l
		e.batch.data = e.batch.data[:0]
		e.bytes = 0
	}
	if len(e.batch.data) == 0 {
		t.order = append(t.order, p)
	}
	e.batch.add(frame)
	e.bytes += uint64(len(frame))
}

func (t *txState) flush(d *Dataplane) {
	for _, p := range t.order {
		e := t.batches[p]
		n := len(e.batch.data)
		if n == 0 {
			continue
		}
		failed, err := e.link.send(t.idx, &e.batch)
		p.txPkts.Add(uint64(n - failed))
		p.txBytes.Add(e.bytes)
		if failed > 0 || err != nil {
			p.txErrs.Add(uint64(max(failed, 1)))
		}
		e.bytes = 0
	}
	t.order = t.order[:0]
}

// segment sends a GSO super-packet as individual segments with complete checksums (sent at once,
// outside the batch, since they share one scratch buffer).
func (t *txState) segment(d *Dataplane, p *port, l *link, frame []byte, vh vnetHdr) {
	udp := vh.gso() == gsoUDPL4
	one := txBatch{}
	err := segment(frame, int(vh.csumStart), int(vh.gsoSize), udp, t.seg[vnetLen:vnetLen], func(s []byte) {
		if l.vnet {
			var z vnetHdr
			z.encode(t.seg[:vnetLen])
		}
		one.add(s)
		failed, err := l.send(t.idx, &one)
		if failed > 0 || err != nil {
			p.txErrs.Add(1)
			return
		}
		p.txPkts.Add(1)
		p.txBytes.Add(uint64(len(s)))
	})
	if err != nil {
		d.gsoDrops.Add(1)
	}
}

// PacketOut injects a frame from the controller: it enters the pipeline as received on CPUPort.
func (d *Dataplane) PacketOut(frame []byte) error {
	if len(frame) > pipeline.MaxPacket {
		return fmt.Errorf("ports: packet-out of %d bytes exceeds %d", len(frame), pipeline.MaxPacket)
	}
	buf := make([]byte, pipeline.BufferSize)
	n := copy(buf[pipeline.Headroom:], frame)
	tx := newTxState(0)
	w := <-d.workers
	res := w.RunIn(buf, n, CPUPort)
	d.workers <- w
	if !res.Forwarded() {
		return fmt.Errorf("ports: packet-out dropped by the pipeline: %s", pipeline.DropReasonName(res.DropReason))
	}
	d.output(res.Port, res.Data, vnetHdr{}, res.L3Shift, tx)
	tx.flush(d)
	return nil
}

var (
	descPortPackets = prometheus.NewDesc("calico_p4_ports_packets_total", "Frames received / sent per port.", []string{"port", "direction"}, nil)
	descPortBytes   = prometheus.NewDesc("calico_p4_ports_bytes_total", "Bytes received / sent per port.", []string{"port", "direction"}, nil)
	descPortErrors  = prometheus.NewDesc("calico_p4_ports_errors_total", "Receive / send errors per port.", []string{"port", "direction"}, nil)
	descPortUp      = prometheus.NewDesc("calico_p4_ports_up", "1 if the port's interface is open, 0 while pending.", []string{"port"}, nil)
	descCollisions  = prometheus.NewDesc("calico_p4_ports_id_collisions_total", "Interfaces refused because their port id collides with an attached interface's.", nil, nil)
	descDrops       = prometheus.NewDesc("calico_p4_ports_dropped_total", "Frames dropped after the pipeline: no such output port, packet-in without a receiver, GSO that cannot be segmented.", []string{"reason"}, nil)
	descRxDropped   = prometheus.NewDesc("calico_p4_ports_rx_dropped_total", "Frames the kernel dropped before the softswitch saw them: the port's receive ring or socket buffer was full.", []string{"port"}, nil)
	descPoller      = prometheus.NewDesc("calico_p4_ports_poller_packets_total", "Frames received per receive thread (pinned CPU; -1: not pinned).", []string{"poller", "cpu"}, nil)
)

type collector struct{ d *Dataplane }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCollisions, descPortPackets, descPortBytes, descPortErrors, descPortUp, descDrops, descRxDropped, descPoller} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descCollisions, prometheus.CounterValue, float64(c.d.collisions.Load()))
	for _, p := range c.d.Ports() {
		n := p.Spec.Name
		ch <- prometheus.MustNewConstMetric(descPortPackets, prometheus.CounterValue, float64(p.RxPackets), n, "rx")
		ch <- prometheus.MustNewConstMetric(descPortPackets, prometheus.CounterValue, float64(p.TxPackets), n, "tx")
		ch <- prometheus.MustNewConstMetric(descPortBytes, prometheus.CounterValue, float64(p.RxBytes), n, "rx")
		ch <- prometheus.MustNewConstMetric(descPortBytes, prometheus.CounterValue, float64(p.TxBytes), n, "tx")
		ch <- prometheus.MustNewConstMetric(descPortErrors, prometheus.CounterValue, float64(p.RxErrors), n, "rx")
		ch <- prometheus.MustNewConstMetric(descPortErrors, prometheus.CounterValue, float64(p.TxErrors), n, "tx")
		ch <- prometheus.MustNewConstMetric(descRxDropped, prometheus.CounterValue, float64(p.RxDropped), n)
		up := 0.0
		if p.State == StateUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPortUp, prometheus.GaugeValue, up, n)
	}
	for i, pi := range c.d.Pollers() {
		ch <- prometheus.MustNewConstMetric(descPoller, prometheus.CounterValue, float64(pi.Packets), strconv.Itoa(i), strconv.Itoa(pi.CPU))
	}
	ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(c.d.noPort.Load()), "no_port")
	ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(c.d.packetInDrops.Load()), "no_packet_in")
	ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(c.d.gsoDrops.Load()), "gso")
}
