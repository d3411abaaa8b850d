package entry

import "encoding/binary"

// records is where a Set keeps its packed values: append-only chunks of bytes (pointer-free, so the GC
// marks a chunk without reading it), each record prefixed by the number of the slot that owns it, plus the
// slots themselves (a pointer-free array of locations). A record replaced or deleted is dead; a chunk that
// falls below half live is evacuated — its live records are copied into the current chunk and their slots
// pointed at the copies — so dead bytes never exceed the live ones by much, and the cost of moving is paid
// for by the dead bytes that made it due. Nothing outside the Set ever points into a chunk: unpacking
// copies.
type records struct {
	slots      []ref
	freeSlots  []uint32
	chunks     []chunk
	freeChunks []uint32
	cur        uint32 // the chunk records are appended to (0: none yet; chunk 0 is never used)
}

type chunk struct {
	buf  []byte
	live int // bytes of live records
}

const (
	// chunkSize is the capacity of a shared chunk. A record larger than a quarter of it (a group with
	// hundreds of members) gets a chunk of its own.
	chunkSize = 32 << 10
	// recordHeader is the owning slot's number and the record's length.
	recordHeader = 8
)

// ref is a slot: where its record is (n == 0: none) and its owner label (an ownerTable id; 0: none).
type ref struct {
	chunk, off, n uint32
	owner         uint32
}

// newSlot returns an unused slot number.
func (r *records) newSlot() uint32 {
	if n := len(r.freeSlots); n > 0 {
		s := r.freeSlots[n-1]
		r.freeSlots = r.freeSlots[:n-1]
		return s
	}
	r.slots = append(r.slots, ref{})
	return uint32(len(r.slots) - 1)
}

// freeSlot drops slot s and its record.
func (r *records) freeSlot(s uint32) {
	old := r.slots[s]
	r.slots[s] = ref{}
	r.freeSlots = append(r.freeSlots, s)
	if old.n != 0 {
		r.release(old)
	}
}

// set makes value slot s's record.
func (r *records) set(s uint32, value []byte) {
	if old := r.slots[s]; old.n != 0 && int(old.n) == recordHeader+len(value) {
		// Same size (a changed param of a fixed-width action, the usual modify): overwrite in place.
		// Values are only lent out until the next change, so nothing can see the old bytes change.
		copy(r.chunks[old.chunk].buf[old.off+recordHeader:old.off+old.n], value)
		return
	}
	at := r.add(s, value)
	// Adding may have evacuated the chunk holding s's previous record: read where it is now.
	old := r.slots[s]
	r.slots[s].chunk, r.slots[s].off, r.slots[s].n = at.chunk, at.off, at.n
	if old.n != 0 {
		r.release(old)
	}
}

// value returns slot s's packed value (valid until the next change of the set).
func (r *records) value(s uint32) []byte {
	a := r.slots[s]
	return r.chunks[a.chunk].buf[a.off+recordHeader : a.off+a.n]
}

// add writes a record for slot s and returns where it is.
func (r *records) add(s uint32, value []byte) ref {
	n := recordHeader + len(value)
	if n > chunkSize/4 {
		return r.write(r.newChunk(n), s, value)
	}
	if r.cur == 0 || cap(r.chunks[r.cur].buf)-len(r.chunks[r.cur].buf) < n {
		prev := r.cur
		r.cur = r.newChunk(chunkSize)
		if prev != 0 {
			r.maybeEvacuate(prev)
		}
	}
	return r.write(r.cur, s, value)
}

func (r *records) write(c, s uint32, value []byte) ref {
	ch := &r.chunks[c]
	off := len(ch.buf)
	n := recordHeader + len(value)
	ch.buf = binary.LittleEndian.AppendUint32(ch.buf, s)
	ch.buf = binary.LittleEndian.AppendUint32(ch.buf, uint32(n))
	ch.buf = append(ch.buf, value...)
	ch.live += n
	return ref{chunk: c, off: uint32(off), n: uint32(n)}
}

func (r *records) newChunk(size int) uint32 {
	if len(r.chunks) == 0 {
		r.chunks = append(r.chunks, chunk{}) // chunk 0 stays unused: a zero ref has no record
	}
	ch := chunk{buf: make([]byte, 0, size)}
	if n := len(r.freeChunks); n > 0 {
		c := r.freeChunks[n-1]
		r.freeChunks = r.freeChunks[:n-1]
		r.chunks[c] = ch
		return c
	}
	r.chunks = append(r.chunks, ch)
	return uint32(len(r.chunks) - 1)
}

// release marks the record at a dead.
func (r *records) release(a ref) {
	r.chunks[a.chunk].live -= int(a.n)
	if a.chunk != r.cur {
		r.maybeEvacuate(a.chunk)
	}
}

// maybeEvacuate frees chunk c when nothing in it is live, after moving its live records to the current
// chunk when less than half of it is live.
func (r *records) maybeEvacuate(c uint32) {
	ch := r.chunks[c]
	if ch.live != 0 && ch.live*2 >= len(ch.buf) {
		return
	}
	for off := 0; ch.live != 0 && off < len(ch.buf); {
		s := binary.LittleEndian.Uint32(ch.buf[off:])
		n := int(binary.LittleEndian.Uint32(ch.buf[off+4:]))
		// The record is live when its slot still points at it (slot numbers are reused, records are not).
		if int(s) < len(r.slots) && r.slots[s].chunk == c && int(r.slots[s].off) == off && r.slots[s].n != 0 {
			at := r.add(s, ch.buf[off+recordHeader:off+n])
			r.slots[s].chunk, r.slots[s].off, r.slots[s].n = at.chunk, at.off, at.n
		}
		off += n
	}
	r.chunks[c] = chunk{}
	r.freeChunks = append(r.freeChunks, c)
}

// ownerTable interns the owner labels of a Set's entries: a slot holds a small id, not a string, and a
// label is kept while some entry has it.
type ownerTable struct {
	ids   map[string]uint32
	names []string // by id; names[0] is ""
	refs  []int32
	free  []uint32
}

// acquire returns owner's id, counting one more user ("" is id 0, never counted).
func (t *ownerTable) acquire(owner string) uint32 {
	if owner == "" {
		return 0
	}
	if id, ok := t.ids[owner]; ok {
		t.refs[id]++
		return id
	}
	if t.ids == nil {
		t.ids = map[string]uint32{}
		t.names, t.refs = []string{""}, []int32{0}
	}
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
		t.names[id], t.refs[id] = owner, 1
	} else {
		id = uint32(len(t.names))
		t.names, t.refs = append(t.names, owner), append(t.refs, 1)
	}
	t.ids[owner] = id
	return id
}

// release drops one user of id.
func (t *ownerTable) release(id uint32) {
	if id == 0 {
		return
	}
	if t.refs[id]--; t.refs[id] == 0 {
		delete(t.ids, t.names[id])
		t.names[id] = ""
		t.free = append(t.free, id)
	}
}

func (t *ownerTable) name(id uint32) string {
	if id == 0 {
		return ""
	}
	return t.names[id]
}
