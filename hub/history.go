package hub

import "sort"

// history is a ring of the most recent events, in (seq, key) order, for resuming streams.
// floor is the position of the newest event that has left the ring: a resume position must cover
// it, or events between the two are gone.
type history struct {
	buf   []Event
	start int // index of the oldest event
	n     int
	floor Position
}

func newHistory(size int) history { return history{buf: make([]Event, size)} }

func (h *history) at(i int) *Event { return &h.buf[(h.start+i)%len(h.buf)] }

func (h *history) append(events []Event) {
	for _, e := range events {
		if h.n == len(h.buf) {
			old := h.at(0)
			h.floor = Position{Seq: old.Seq, Key: old.Key}
			*old = Event{}
			h.start = (h.start + 1) % len(h.buf)
			h.n--
		}
		*h.at(h.n) = e
		h.n++
	}
}

// reset forgets everything up to and including seq: used when the state is loaded from a
// snapshot whose changes are not in the ring.
func (h *history) reset(seq uint64) {
	for i := 0; i < h.n; i++ {
		*h.at(i) = Event{}
	}
	h.start, h.n = 0, 0
	h.floor = Position{Seq: seq}
}

// canResume reports whether every event after p is still in the ring.
func (h *history) canResume(p Position) bool {
	f := h.floor
	if f.Seq == 0 && f.Key == "" {
		return true
	}
	if f.Key == "" {
		return p.Seq > f.Seq || p.Seq == f.Seq && p.Key == ""
	}
	return p.Covers(f.Seq, f.Key)
}

// since returns the events after p and up to seq upTo whose keys path covers, in order.
func (h *history) since(p Position, path string, upTo uint64) []Event {
	first := sort.Search(h.n, func(i int) bool {
		e := h.at(i)
		return !p.Covers(e.Seq, e.Key)
	})
	var out []Event
	for i := first; i < h.n && h.at(i).Seq <= upTo; i++ {
		if e := h.at(i); Covers(path, e.Key) {
			out = append(out, *e)
		}
	}
	return out
}
