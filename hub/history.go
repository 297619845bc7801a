package hub

import (
	"sort"
	"unsafe"
)

// history is a ring of the most recent events, in (seq, key) order, for resuming streams. It is
// bounded twice: at most len(meta) events, and their keys, types and values in at most maxBytes.
//
// It holds no pointers: each event's fixed fields are an eventMeta in one ring, its bytes a record
// in another (data), so the garbage collector never scans the window, and appending to it (under
// the hub's lock, on every write) involves no write barrier. The byte ring grows by doubling as
// events need it, up to maxBytes, so a quiet server does not hold it all.
//
// The floor (floorSeq, floorKey) is the position of the newest event that has left the ring: a
// resume position must cover it, or events between the two are gone. An event bigger than maxBytes
// is never in the ring: it empties the ring and becomes the floor at once.
type history struct {
	meta     []eventMeta
	start    int // index in meta of the oldest event
	n        int
	data     []byte // records at offset off % len(data), never split across its end
	head     uint64 // offset after the newest record
	used     int    // the retained records' bytes, padding not counted
	maxBytes int
	floorSeq uint64
	floorKey []byte // the floor's key; its room is reused (see setFloor)
}

// eventMeta is an event's fixed fields and where its record lies: the key, the type, the
// presence (appendPresence), then the value. The reason and the presence's length fit in what
// would be padding after deleted.
type eventMeta struct {
	seq      uint64
	revision int64
	time     int64  // Event.Time
	off      uint64 // offset of the record in the byte stream; its place in data is off % len(data)
	keyLen   uint32
	typeLen  uint32
	valLen   uint32
	deleted  bool
	reason   uint8  // reasonCode of the event's Reason
	presLen  uint16 // Presence.size(): at most 1+255+MaxPresenceSub
}

// minHistoryBytes is the byte ring's first size.
const minHistoryBytes = 64 << 10

func newHistory(events, maxBytes int) history {
	return history{meta: make([]eventMeta, events), maxBytes: max(maxBytes, 1)}
}

func (h *history) at(i int) *eventMeta { return &h.meta[(h.start+i)%len(h.meta)] }

func (m *eventMeta) size() uint64 {
	return uint64(m.keyLen) + uint64(m.typeLen) + uint64(m.presLen) + uint64(m.valLen)
}

// record returns the bytes of m's record. They are overwritten when m leaves the ring.
func (h *history) record(m *eventMeta) []byte {
	p := m.off % uint64(len(h.data))
	return h.data[p : p+m.size()]
}

// key returns m's key as a string over the ring's bytes, for comparing only: it must not outlive
// the caller's hold of the hub's lock, as the bytes are reused once m leaves the ring.
func (h *history) key(m *eventMeta) string {
	if m.keyLen == 0 {
		return ""
	}
	return unsafe.String(&h.record(m)[0], m.keyLen)
}

// event copies m out of the ring.
func (h *history) event(m *eventMeta) Event {
	r := h.record(m)
	e := Event{Key: string(r[:m.keyLen]), Revision: m.revision, Seq: m.seq, Deleted: m.deleted, Reason: reasons[m.reason], Time: m.time}
	r = r[m.keyLen:]
	if m.typeLen > 0 {
		e.Type = string(r[:m.typeLen])
	}
	r = r[m.typeLen:]
	e.Presence = parsePresence(r[:m.presLen])
	if !m.deleted {
		e.Value = append([]byte(nil), r[m.presLen:]...)
	}
	return e
}

func (h *history) append(events []Event) {
	for i := range events {
		h.add(&events[i])
	}
}

func (h *history) add(e *Event) {
	size := len(e.Key) + len(e.Type) + e.Presence.size() + len(e.Value)
	if size > h.maxBytes || uint64(size) > 1<<32-1 {
		// Never retained: the ring is emptied, and the floor moves past this event.
		for h.n > 0 {
			h.evict()
		}
		h.setFloor(e.Seq, e.Key)
		return
	}
	if h.n == len(h.meta) {
		h.evict()
	}
	h.reserve(size)
	off := h.head
	if c := uint64(len(h.data)); off%c+uint64(size) > c {
		off += c - off%c // the rest of data is padding: a record is never split
	}
	// Free the record's room from the oldest events.
	for h.n > 0 && off+uint64(size)-h.at(0).off > uint64(len(h.data)) {
		h.evict()
	}
	m := h.at(h.n)
	*m = eventMeta{seq: e.Seq, revision: e.Revision, time: e.Time, off: off, keyLen: uint32(len(e.Key)),
		typeLen: uint32(len(e.Type)), valLen: uint32(len(e.Value)), deleted: e.Deleted,
		reason: reasonCode(e.Reason), presLen: uint16(e.Presence.size())}
	p := off % uint64(len(h.data))
	r := h.data[p : p+uint64(size)]
	r = r[copy(r, e.Key):]
	r = r[copy(r, e.Type):]
	r = r[len(appendPresence(r[:0], e.Presence)):]
	copy(r, e.Value)
	h.head = off + uint64(size)
	h.used += size
	h.n++
}

// reserve grows the byte ring, up to maxBytes, so that a record of size bytes fits after the
// retained ones without evicting any: room for it twice, as the end of the ring may be padding.
// Growing lays the records out afresh from offset 0.
func (h *history) reserve(size int) {
	need := h.used + 2*size
	if len(h.data) > 0 && (need <= len(h.data) || len(h.data) >= h.maxBytes) {
		return
	}
	c := max(len(h.data), minHistoryBytes)
	for c < need {
		c *= 2
	}
	data := make([]byte, min(c, h.maxBytes))
	var off uint64
	for i := 0; i < h.n; i++ {
		m := h.at(i)
		copy(data[off:], h.record(m))
		m.off = off
		off += m.size()
	}
	h.data, h.head = data, off
}

// evict drops the oldest event, which becomes the floor.
func (h *history) evict() {
	m := h.at(0)
	h.setFloor(m.seq, h.key(m))
	h.used -= int(m.size())
	*m = eventMeta{}
	h.start = (h.start + 1) % len(h.meta)
	h.n--
}

// setFloor records the newest position gone from the ring. The key is copied into floorKey, whose
// room is reused: an eviction happens on most writes once the ring is full, and must not allocate.
func (h *history) setFloor(seq uint64, key string) {
	h.floorSeq = seq
	h.floorKey = append(h.floorKey[:0], key...)
}

// reset forgets everything up to and including seq: used when the state is loaded from a
// snapshot whose changes are not in the ring.
func (h *history) reset(seq uint64) {
	clear(h.meta)
	h.start, h.n, h.used = 0, 0, 0
	h.setFloor(seq, "")
}

// canResume reports whether every event after p is still in the ring.
func (h *history) canResume(p Position) bool {
	if h.floorSeq == 0 && len(h.floorKey) == 0 {
		return true
	}
	if len(h.floorKey) == 0 {
		return p.Seq > h.floorSeq || p.Seq == h.floorSeq && p.Key == ""
	}
	return p.Covers(h.floorSeq, string(h.floorKey))
}

// since returns the events after p and up to seq upTo whose keys path covers, in order.
func (h *history) since(p Position, path string, upTo uint64) []Event {
	first := sort.Search(h.n, func(i int) bool {
		m := h.at(i)
		return !p.Covers(m.seq, h.key(m))
	})
	var out []Event
	for i := first; i < h.n && h.at(i).seq <= upTo; i++ {
		if m := h.at(i); Covers(path, h.key(m)) {
			out = append(out, h.event(m))
		}
	}
	return out
}

// keyHistory walks the ring backwards for key's events with a seq below before (0: from the
// newest), newest first: at most limit of them, and whether another retained one lies below.
func (h *history) keyHistory(key string, before uint64, limit int) (out []Event, more bool) {
	end := h.n
	if before > 0 {
		end = sort.Search(h.n, func(i int) bool { return h.at(i).seq >= before })
	}
	for i := end - 1; i >= 0; i-- {
		m := h.at(i)
		if h.key(m) != key {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, h.event(m))
	}
	return out, false
}

// complete reports whether nothing has ever left the ring: it holds every change since seq 0.
func (h *history) complete() bool { return h.floorSeq == 0 && len(h.floorKey) == 0 }
