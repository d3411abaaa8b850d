package pipeline

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
)

// Buffer geometry of a worker: packets are copied to Headroom bytes into the worker's buffer so that
// encapsulation can prepend headers in place.
const (
	Headroom  = 256
	MaxPacket = 65536 + 512 // a GSO super-packet and its headers
	tailroom  = 64
	// BufferSize is the size of a packet buffer given to RunIn.
	BufferSize = Headroom + MaxPacket + tailroom
)

// DefaultExpiry is the timeout of each PNA expire-time profile of k8s.p4's learner tables (index =
// ExpireTimeProfileId_t): EXPIRE_CLOSING 10 s, EXPIRE_ICMP 30 s, (2: unused) 60 s, EXPIRE_OTHER 120 s,
// EXPIRE_AFFINITY 300 s, EXPIRE_TCP_ESTABLISHED 43200 s — DPDK's defaults, as documented in k8s.p4.
var DefaultExpiry = []time.Duration{10 * time.Second, 30 * time.Second, 60 * time.Second, 120 * time.Second,
	300 * time.Second, 43200 * time.Second}

// Options configure a Pipeline.
type Options struct {
	// Store is the table store the P4Runtime server writes (required). Its Options.Workers bounds the
	// worker ids.
	Store *tables.Store
	// Expiry overrides DefaultExpiry (index = expire-time profile id).
	Expiry []time.Duration
	// Logger receives configuration problems (a pipeline config that is not k8s.p4's, learn failures).
	Logger *zap.Logger
	// Registry receives the calico_p4_pipeline_* metrics (default: not registered).
	Registry prometheus.Registerer
}

// Pipeline is k8s.p4 over a table store. It is safe for concurrent use; packets are processed by
// Workers, one per goroutine.
type Pipeline struct {
	store *tables.Store
	log   *zap.Logger
	want  *p4configv1.P4Info

	bound   atomic.Pointer[binding]
	bindMu  sync.Mutex
	workers sync.Map // id -> *Worker (for metrics)

	learnLogMu   sync.Mutex
	learnLogLast time.Time
}

// New builds the pipeline and marks k8s.p4's learner tables (ct_*, affinity_*) as PNA add_on_miss tables
// of the store, with the expire-time profiles of opts.Expiry.
func New(opts Options) (*Pipeline, error) {
	if opts.Store == nil {
		return nil, errors.New("pipeline: Options.Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	exp := opts.Expiry
	if exp == nil {
		exp = DefaultExpiry
	}
	want, err := p4src.P4Info()
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p := &Pipeline{store: opts.Store, log: opts.Logger, want: want}
	for _, r := range learnerTables {
		opts.Store.SetLearner(string(tableNames[r]), &tables.LearnerConfig{Profiles: append([]time.Duration(nil), exp...)})
	}
	if opts.Registry != nil {
		if err := opts.Registry.Register(&collector{p: p}); err != nil {
			return nil, fmt.Errorf("pipeline: registering metrics: %w", err)
		}
	}
	return p, nil
}

// Store returns the table store the pipeline reads.
func (p *Pipeline) Store() *tables.Store { return p.store }

// binding returns the binding for st's schema, building it on a config change.
func (p *Pipeline) binding(st *tables.State) *binding {
	if b := p.bound.Load(); b != nil && b.schema == st.Schema {
		return b
	}
	p.bindMu.Lock()
	defer p.bindMu.Unlock()
	if b := p.bound.Load(); b != nil && b.schema == st.Schema {
		return b
	}
	b := bind(st.Schema, p.want)
	if b.err != nil && st.Schema != nil {
		p.log.Error("pipeline config cannot be run; dropping every packet", zap.Error(b.err))
	}
	p.bound.Store(b)
	return b
}

// Err reports why the pipeline cannot forward with the current config (nil when it can).
func (p *Pipeline) Err() error { return p.binding(p.store.Load()).err }

func (p *Pipeline) learnFailed(r tableRef, err error) {
	p.learnLogMu.Lock()
	defer p.learnLogMu.Unlock()
	if time.Since(p.learnLogLast) < time.Second {
		return
	}
	p.learnLogLast = time.Now()
	p.log.Warn("learning failed (flow not tracked)", zap.String("table", string(tableNames[r])), zap.Error(err))
}

// Result is the fate of one packet.
type Result struct {
	// Fate is p4src.FateForward (routed), FateReply (answered by the gateway responder, back out the
	// ingress port), FateBridge (link-local, to the peer port) or FateDrop.
	Fate uint8
	// Port is the output port (all fates but FateDrop).
	Port uint32
	// Data is the packet to send; it aliases the worker's buffer and is valid until the next Run.
	Data []byte
	// DropReason is the k8s.p4 drop reason (p4src.Drop*) of a dropped packet; DropNone when the
	// pipeline could not run at all (no or foreign pipeline config, oversized packet). A rejected
	// packet (FateReply with an ICMP port unreachable for a service without endpoints) carries its
	// reason too (DropNoServiceBackend): the packet was dropped and the error sent in its place.
	DropReason uint8
	// Passes is the number of passes the packet took (1 + recirculations).
	Passes int
	// L3Shift is how many bytes the packet's start moved relative to its end (negative when headers
	// were removed): an offset measured from the start of the received packet into its unchanged
	// tail (e.g. a checksum start) is offset+L3Shift in Data.
	L3Shift int
}

// Forwarded reports whether the packet leaves on Port.
func (r *Result) Forwarded() bool { return r.Fate != p4src.FateDrop }

// Worker processes packets one at a time. A worker must be used by one goroutine at a time; its id
// selects its shard of the store's counters.
type Worker struct {
	p  *Pipeline
	id int

	buf        []byte
	start, end int32
	inPort     uint32
	pktLen     uint64

	hdr         headers
	encap       encapHeaders
	meta        metadata
	parserError bool
	outPort     uint32

	// Locals of MainControlImpl.
	learnV4         ctNatV4
	learnV6         ctNatV6
	learnAffinityV4 affinityV4
	learnAffinityV6 affinityV6
	ck              csum

	st  *tables.State
	b   *binding
	now int64

	key     [64]byte
	params  [64]byte
	scratch []byte

	dry   bool   // no side effects (trace)
	rec   *Trace // records table applications when set
	pass  int
	stats workerStats
}

// NewWorker returns worker id (0 <= id < the store's Options.Workers).
func (p *Pipeline) NewWorker(id int) (*Worker, error) {
	if id < 0 || id >= p.store.Workers() {
		return nil, fmt.Errorf("pipeline: worker id %d out of range [0, %d)", id, p.store.Workers())
	}
	w := p.newWorker(id)
	p.workers.Store(id, w)
	return w, nil
}

func (p *Pipeline) newWorker(id int) *Worker {
	return &Worker{p: p, id: id, buf: make([]byte, Headroom+MaxPacket+tailroom), scratch: make([]byte, 0, maxHeaderLen)}
}

// Buffer returns the area to copy a received packet into (MaxPacket bytes) before calling Run.
func (w *Worker) Buffer() []byte { return w.buf[Headroom : Headroom+MaxPacket] }

// Process copies pkt into the worker's buffer and runs it (tests, trace, packet-out).
func (w *Worker) Process(pkt []byte, inPort uint32) Result {
	if len(pkt) > MaxPacket {
		w.stats.oversize.inc()
		return Result{Fate: p4src.FateDrop}
	}
	n := copy(w.Buffer(), pkt)
	return w.Run(n, inPort)
}

// RunIn is Run on a caller-owned buffer (len >= Headroom+n, usually BufferSize): the packet is
// buf[Headroom:Headroom+n]; it is rewritten in place and Result.Data aliases buf (encapsulation uses the
// headroom). Receive loops use it to process a batch without copying packets.
func (w *Worker) RunIn(buf []byte, n int, inPort uint32) Result {
	if Headroom+n > len(buf) {
		w.stats.oversize.inc()
		return Result{Fate: p4src.FateDrop}
	}
	own := w.buf
	w.buf = buf
	res := w.Run(n, inPort)
	w.buf = own
	return res
}

// Run processes the n-byte packet in Buffer() received on inPort: parser, main control (with as
// many recirculations as the program takes), deparser.
func (w *Worker) Run(n int, inPort uint32) Result {
	st := w.p.store.Load()
	b := w.p.binding(st)
	w.stats.packets.inc()
	w.stats.bytes.add(uint64(n))
	if b.err != nil {
		w.stats.unbound.inc()
		return Result{Fate: p4src.FateDrop}
	}
	w.st, w.b, w.now = st, b, 0
	w.start, w.end = Headroom, Headroom+int32(n)
	w.inPort = inPort
	w.pktLen = uint64(n)
	w.outPort = 0

	w.MainParserImpl()
	w.pass = 0
	for w.MainControlImpl(w.pass == 0) {
		// recirculate(): the deparsed packet goes back to the parser with its metadata.
		w.MainDeparserImpl()
		if w.hdr.restructured {
			w.MainParserImpl()
		}
		w.pass++
		w.pktLen = uint64(w.end - w.start)
	}
	m := &w.meta
	res := Result{Fate: m.fate, Passes: w.pass + 1}
	w.stats.passes.add(uint64(w.pass + 1))
	if m.fate == p4src.FateDrop {
		res.DropReason = m.dropReason
		w.stats.dropped.inc()
		w.st = nil
		return res
	}
	w.MainDeparserImpl()
	res.DropReason = m.dropReason
	res.Port = w.outPort
	res.Data = w.buf[w.start:w.end]
	res.L3Shift = int(Headroom - w.start)
	w.stats.forwarded.inc()
	w.st = nil
	return res
}
