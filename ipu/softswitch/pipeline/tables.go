package pipeline

import (
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
)

// Table application: key building, lookup (hit, else the default entry), action-profile resolution,
// counters, learner timers and learning. Every side effect goes through here so that a dry run (trace)
// has none.

// keyBuf builds a table key field by field, in the table's key order (fixed width, big-endian).
type keyBuf struct{ b []byte }

func (w *Worker) newKey() keyBuf { return keyBuf{w.key[:0]} }

func (k *keyBuf) u8(v uint8)   { k.b = append(k.b, v) }
func (k *keyBuf) u16(v uint16) { k.b = append(k.b, byte(v>>8), byte(v)) }
func (k *keyBuf) u32(v uint32) { k.b = append(k.b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
func (k *keyBuf) a6(a *ip6)    { k.b = append(k.b, a[:]...) }

// params reads action parameters in declaration order.
type params struct {
	b []byte
	o int
}

func paramsOf(a *tables.Action) params {
	if a == nil {
		return params{}
	}
	return params{b: a.Params}
}

func (p *params) u8() uint8 { v := p.b[p.o]; p.o++; return v }
func (p *params) u16() uint16 {
	v := uint16(p.b[p.o])<<8 | uint16(p.b[p.o+1])
	p.o += 2
	return v
}
func (p *params) u24() uint32 {
	v := uint32(p.b[p.o])<<16 | uint32(p.b[p.o+1])<<8 | uint32(p.b[p.o+2])
	p.o += 3
	return v
}
func (p *params) u32() uint32 {
	v := uint32(p.b[p.o])<<24 | uint32(p.b[p.o+1])<<16 | uint32(p.b[p.o+2])<<8 | uint32(p.b[p.o+3])
	p.o += 4
	return v
}
func (p *params) u48() uint64 {
	v := uint64(p.u16()) << 32
	return v | uint64(p.u32())
}
func (p *params) a6() (a ip6) {
	copy(a[:], p.b[p.o:p.o+16])
	p.o += 16
	return a
}

// paramWriter lays out the parameters of a learned action (add_entry's action_params).
type paramWriter struct{ b []byte }

func (w *Worker) newParams() paramWriter { return paramWriter{w.params[:0]} }

func (p *paramWriter) u8(v uint8)   { p.b = append(p.b, v) }
func (p *paramWriter) u16(v uint16) { p.b = append(p.b, byte(v>>8), byte(v)) }
func (p *paramWriter) u32(v uint32) {
	p.b = append(p.b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func (p *paramWriter) a6(a *ip6) { p.b = append(p.b, a[:]...) }

// applied is the outcome of one table application.
type applied struct {
	t   *tables.Table
	e   *tables.Entry // the entry hit, or the default entry
	a   *tables.Action
	hit bool
}

// id returns the action to run: the action's id, NoAction for an action selector group without a
// live member.
func (ap *applied) id() p4src.ActionID {
	if ap.a == nil {
		return p4src.ActionNoactionID
	}
	return p4src.ActionID(ap.a.ID)
}

func (ap *applied) params() params { return paramsOf(ap.a) }

// apply looks key up in table r (hash chooses the member of an action selector group).
func (w *Worker) apply(r tableRef, key []byte, hash uint32) applied {
	t := w.st.Table(w.b.idx[r])
	e := w.st.Lookup(t, key)
	ap := applied{t: t, e: e, hit: e != nil}
	if e == nil {
		ap.e = t.Default()
	}
	ap.a = w.st.Resolve(ap.e, hash)
	if w.rec != nil {
		w.rec.table(w, r, key, &ap)
	}
	return ap
}

// countDirect is <direct counter>.count() in an action of ap's table.
func (w *Worker) countDirect(ap *applied) {
	if w.dry {
		return
	}
	w.st.AddDirect(w.id, ap.t, ap.e.Handle, w.pktLen)
}

// setEntryExpireTime is PNA set_entry_expire_time() in a hit action: the entry takes the profile and
// its timer restarts.
func (w *Worker) setEntryExpireTime(ap *applied, profile uint8) {
	if w.dry || !ap.hit {
		return
	}
	w.st.SetExpiryProfile(ap.t, ap.e.Handle, profile)
	w.st.Touch(ap.t, ap.e.Handle, w.clock())
}

// restartExpireTimer is PNA restart_expire_timer() in a hit action.
func (w *Worker) restartExpireTimer(ap *applied) {
	if w.dry || !ap.hit {
		return
	}
	w.st.Touch(ap.t, ap.e.Handle, w.clock())
}

// addEntry is PNA add_entry() in the miss action of an add_on_miss table: the key looked up is learned
// with the given action and parameters. Failures (table full) leave the flow unlearned, as on a
// hardware target, and are counted.
func (w *Worker) addEntry(r tableRef, ap *applied, key []byte, action p4src.ActionID, prm []byte, profile uint8) {
	if w.rec != nil {
		w.rec.learn(w, r, key, action, prm, profile)
	}
	if w.dry {
		return
	}
	if _, err := w.p.store.Learn(ap.t, key, uint32(action), prm, profile); err != nil {
		w.stats.learnFailures.inc()
		w.p.learnFailed(r, err)
		return
	}
	w.stats.learned.inc()
}

// countDrop is drop_counter.count(reason).
func (w *Worker) countDrop(reason uint8) {
	if w.dry {
		return
	}
	w.st.AddCounter(w.id, w.b.dropCounter, int(reason), w.pktLen)
}

func (w *Worker) clock() int64 {
	if w.now == 0 {
		w.now = w.p.store.Now()
	}
	return w.now
}

// selectorHash is the action selectors' hash (PNA_HashAlgorithm_t.TARGET_DEFAULT) over the selector
// fields: client address and client port. It is fixed (not seeded) so that every worker and every
// restart picks the same backend for a client.
func selectorHash4(addr uint32, port uint16) uint32 {
	return mix32(uint64(addr)<<16 | uint64(port))
}

func selectorHash6(a *ip6, port uint16) uint32 {
	var h uint64
	for i := 0; i < 16; i += 8 {
		h = h*0x9e3779b97f4a7c15 ^ (uint64(a[i])<<56 | uint64(a[i+1])<<48 | uint64(a[i+2])<<40 | uint64(a[i+3])<<32 |
			uint64(a[i+4])<<24 | uint64(a[i+5])<<16 | uint64(a[i+6])<<8 | uint64(a[i+7]))
	}
	return mix32(h ^ uint64(port))
}

func mix32(x uint64) uint32 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return uint32(x)
}
