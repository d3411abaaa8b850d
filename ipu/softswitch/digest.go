package softswitch

import (
	"sync"
	"time"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// digestEngine buffers data-plane digests into DigestLists as P4Runtime §9.10 describes: distinct
// messages only, a list is sent when max_list_size messages are buffered or max_timeout_ns after the
// first, and sent messages stay in a cache (suppressing duplicates) until acked or ack_timeout_ns old.
type digestEngine struct {
	s      *Server
	mu     sync.Mutex
	bufs   map[uint32]*digestBuf
	cache  map[uint32]map[string]uint64 // digest → message key → list id
	lists  map[uint32]map[uint64]*sentList
	nextID uint64
	closed bool
}

type digestBuf struct {
	keys  []string
	data  []*p4.P4Data
	seen  map[string]bool
	timer *time.Timer
}

type sentList struct {
	keys []string
	at   time.Time
}

func newDigestEngine(s *Server) *digestEngine {
	return &digestEngine{s: s, bufs: map[uint32]*digestBuf{}, cache: map[uint32]map[string]uint64{}, lists: map[uint32]map[uint64]*sentList{}}
}

// EmitDigest is the data plane's digest call (PNA/PSA Digest.pack): data must follow the digest's
// type_spec. Messages are dropped (and counted) when the digest is not enabled by a DigestEntry, when
// an identical message is buffered or cached, or when no primary controller is connected.
func (s *Server) EmitDigest(digestID uint32, data *p4.P4Data) {
	s.digests.emit(digestID, data)
}

func (d *digestEngine) emit(id uint32, data *p4.P4Data) {
	st := d.s.store.Load()
	if st.Schema == nil || st.Schema.Digest(id) == nil {
		d.s.metrics.digestDropped.WithLabelValues("unknown_digest").Inc()
		return
	}
	cfg := st.DigestConfig(id)
	if cfg == nil {
		d.s.metrics.digestDropped.WithLabelValues("disabled").Inc()
		return
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(data)
	if err != nil {
		d.s.metrics.digestDropped.WithLabelValues("bad_data").Inc()
		return
	}
	key := string(raw)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.expire(id, cfg)
	if _, ok := d.cache[id][key]; ok {
		d.s.metrics.digestDropped.WithLabelValues("duplicate").Inc()
		return
	}
	b := d.bufs[id]
	if b == nil {
		b = &digestBuf{seen: map[string]bool{}}
		d.bufs[id] = b
	}
	if b.seen[key] {
		d.s.metrics.digestDropped.WithLabelValues("duplicate").Inc()
		return
	}
	b.seen[key] = true
	b.keys = append(b.keys, key)
	b.data = append(b.data, proto.Clone(data).(*p4.P4Data))
	if cfg.MaxTimeoutNs == 0 || (cfg.MaxListSize > 0 && len(b.keys) >= int(cfg.MaxListSize)) {
		d.flushLocked(id, cfg)
		return
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(time.Duration(cfg.MaxTimeoutNs), func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.closed || d.bufs[id] != b {
				return
			}
			c := d.s.store.Load().DigestConfig(id)
			if c == nil {
				delete(d.bufs, id)
				return
			}
			d.flushLocked(id, c)
		})
	}
}

func (d *digestEngine) flushLocked(id uint32, cfg *p4.DigestEntry_Config) {
	b := d.bufs[id]
	delete(d.bufs, id)
	if b == nil || len(b.keys) == 0 {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	prims := d.s.primaries()
	if len(prims) == 0 {
		d.s.metrics.digestDropped.WithLabelValues("no_primary").Add(float64(len(b.keys)))
		return
	}
	d.nextID++
	list := &p4.DigestList{DigestId: id, ListId: d.nextID, Data: b.data, Timestamp: time.Now().UnixNano()}
	msg := &p4.StreamMessageResponse{Update: &p4.StreamMessageResponse_Digest{Digest: list}}
	sent := false
	for _, p := range prims {
		if p.trySend(msg) {
			sent = true
		} else {
			d.s.metrics.digestDropped.WithLabelValues("queue_full").Add(float64(len(b.keys)))
		}
	}
	if !sent {
		return
	}
	d.s.metrics.digestLists.Inc()
	if cfg.AckTimeoutNs == 0 {
		return
	}
	if d.cache[id] == nil {
		d.cache[id] = map[string]uint64{}
		d.lists[id] = map[uint64]*sentList{}
	}
	for _, k := range b.keys {
		d.cache[id][k] = list.ListId
	}
	d.lists[id][list.ListId] = &sentList{keys: b.keys, at: time.Now()}
}

// expire drops cached lists older than ack_timeout_ns.
func (d *digestEngine) expire(id uint32, cfg *p4.DigestEntry_Config) {
	lists := d.lists[id]
	if len(lists) == 0 {
		return
	}
	now := time.Now()
	for lid, l := range lists {
		if now.Sub(l.at) >= time.Duration(cfg.AckTimeoutNs) {
			d.dropList(id, lid, l)
		}
	}
}

func (d *digestEngine) dropList(id uint32, lid uint64, l *sentList) {
	for _, k := range l.keys {
		if d.cache[id][k] == lid {
			delete(d.cache[id], k)
		}
	}
	delete(d.lists[id], lid)
}

func (d *digestEngine) ack(st *stream, a *p4.DigestListAck) {
	if !d.s.isPrimary(st) {
		d.s.streamError(st, codes.PermissionDenied, "digest ack from a controller that is not primary", &p4.StreamError_DigestListAck{DigestListAck: &p4.DigestListAckError{DigestListAck: a}})
		return
	}
	sch := d.s.store.Load().Schema
	if sch == nil || sch.Digest(a.DigestId) == nil {
		d.s.streamError(st, codes.InvalidArgument, "digest ack for an unknown digest id", &p4.StreamError_DigestListAck{DigestListAck: &p4.DigestListAckError{DigestListAck: a}})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.lists[a.DigestId][a.ListId]; l != nil {
		d.dropList(a.DigestId, a.ListId, l)
	}
}

func (d *digestEngine) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for _, b := range d.bufs {
		if b.timer != nil {
			b.timer.Stop()
		}
	}
}
