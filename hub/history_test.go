package hub

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestHistoryHoldsNoPointers: the ring's element type must stay pointer-free, or the garbage
// collector scans the whole window again on every cycle.
func TestHistoryHoldsNoPointers(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[eventMeta]()
	for i := range typ.NumField() {
		switch f := typ.Field(i); f.Type.Kind() {
		case reflect.Bool, reflect.Int64, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			t.Errorf("eventMeta.%s is a %s: the ring must hold no pointers", f.Name, f.Type)
		}
	}
	// The reason and the presence's length sit in what was padding; the commit's time (for
	// history reads) is the 8 bytes past 40.
	if size := typ.Size(); size != 48 {
		t.Errorf("eventMeta takes %d bytes, want 48", size)
	}
}

// TestHistoryModel appends random commits to rings of several bounds and checks the ring against
// the plain list of every event after each one: the ring holds the newest events, within both
// bounds; the floor is the newest event it lost; canResume and since answer from it as the list
// would.
func TestHistoryModel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		events, bytes, maxValue int
	}{
		{events: 16, bytes: 1 << 30, maxValue: 40},    // only the count binds
		{events: 1000, bytes: 512, maxValue: 120},     // only the bytes bind, with wraps and padding
		{events: 40, bytes: 500, maxValue: 600},       // both, and values too big for the ring
		{events: 300, bytes: 1 << 20, maxValue: 5000}, // the byte ring grows past its first size
	} {
		t.Run(fmt.Sprintf("%d events %d bytes", tc.events, tc.bytes), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(tc.events), uint64(tc.bytes)))
			h := newHistory(tc.events, tc.bytes)
			var all []Event
			for seq := uint64(1); seq <= 600; seq++ {
				commit := randomCommit(rng, seq, tc.maxValue)
				h.append(commit)
				all = append(all, commit...)
				checkHistory(t, &h, all, tc.events, tc.bytes)
				if t.Failed() {
					t.Fatalf("after seq %d", seq)
				}
				for range 3 {
					checkResume(t, &h, all, randomPosition(rng, all))
				}
			}
		})
	}
}

// randomCommit makes the events of one commit: one to three keys in key order, sets with values
// of up to maxValue bytes, deletes, and now and then a file's type.
func randomCommit(rng *rand.Rand, seq uint64, maxValue int) []Event {
	keys := map[string]bool{}
	for range 1 + rng.IntN(3) {
		keys[fmt.Sprintf("/k/%d", rng.IntN(20))] = true
	}
	var out []Event
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		e := Event{Key: k, Seq: seq, Revision: rng.Int64N(100)}
		switch rng.IntN(8) {
		case 0:
			e.Deleted = true
		case 1:
			e.Type = "image/png"
			fallthrough
		default:
			e.Value = bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, 1+rng.IntN(maxValue))
		}
		out = append(out, e)
	}
	return out
}

func eventSize(e Event) int { return len(e.Key) + len(e.Type) + len(e.Value) }

func checkHistory(t *testing.T, h *history, all []Event, maxEvents, maxBytes int) {
	t.Helper()
	if h.n > maxEvents || h.used > maxBytes || len(h.data) > maxBytes {
		t.Fatalf("over the bounds: %d events of %d, %d bytes used and %d held of %d", h.n, maxEvents, h.used, len(h.data), maxBytes)
	}
	// The ring holds the newest events, in order, as they were appended.
	held := all[len(all)-h.n:]
	used := 0
	for i, want := range held {
		got := h.event(h.at(i))
		if want.Deleted {
			want.Value = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d of %d: got %+v, want %+v", i, h.n, got, want)
		}
		used += eventSize(want)
	}
	if used != h.used {
		t.Fatalf("used %d, the held events have %d bytes", h.used, used)
	}
	if newest := all[len(all)-1]; eventSize(newest) <= maxBytes && h.n == 0 {
		t.Fatalf("the newest event (%d bytes) fits but is not held", eventSize(newest))
	}
	// Nothing is given up while the byte bound leaves room: only the count binds.
	if maxBytes >= 1<<30 && h.n != min(len(all), maxEvents) {
		t.Fatalf("%d events held of %d, room for %d", h.n, len(all), maxEvents)
	}
	// The floor is the newest event no longer held.
	if lost := len(all) - h.n; lost > 0 {
		f := all[lost-1]
		if h.floorSeq != f.Seq || string(h.floorKey) != f.Key {
			t.Fatalf("floor %d %q, want %d %q", h.floorSeq, h.floorKey, f.Seq, f.Key)
		}
	} else if h.floorSeq != 0 || len(h.floorKey) != 0 {
		t.Fatalf("floor %d %q with nothing lost", h.floorSeq, h.floorKey)
	}
}

// randomPosition picks a resume position: after one of the events, after a whole commit, or at
// the start.
func randomPosition(rng *rand.Rand, all []Event) Position {
	switch e := all[rng.IntN(len(all))]; rng.IntN(3) {
	case 0:
		return Position{}
	case 1:
		return Position{Seq: e.Seq}
	default:
		return Position{Seq: e.Seq, Key: e.Key}
	}
}

// checkResume compares canResume and since with the list: a resume is possible exactly when no
// event after p is lost, and gives every event after p under the path, in order.
func checkResume(t *testing.T, h *history, all []Event, p Position) {
	t.Helper()
	lost := len(all) - h.n
	want := lost == 0 || p.Covers(all[lost-1].Seq, all[lost-1].Key)
	if got := h.canResume(p); got != want {
		t.Fatalf("canResume(%+v) = %v with %d of %d events lost", p, got, lost, len(all))
	}
	if !want {
		return
	}
	upTo := all[len(all)-1].Seq
	for _, path := range []string{"/", "/k/1", "/k/"} {
		var expect []Event
		for _, e := range all {
			if !p.Covers(e.Seq, e.Key) && Covers(path, e.Key) {
				if e.Deleted {
					e.Value = nil
				}
				expect = append(expect, e)
			}
		}
		if got := h.since(p, path, upTo); !reflect.DeepEqual(got, expect) {
			t.Fatalf("since(%+v, %q): got %d events, want %d", p, path, len(got), len(expect))
		}
	}
}
