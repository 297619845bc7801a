package hub_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// confHistoryRetention: a history read pages through a key's changes newest first, each with
// its commit's time, past the hub's history (here 3 events, 2 of them the key's) as far as the store retains changes:
// to the key's first change on a store that keeps them (etcd, until compaction); on one that
// keeps none beyond the hub's history (Local) the page below the history fails with a
// *HistoryGoneError naming the oldest seq retained.
func confHistoryRetention(t *testing.T, mk func(hub.Config) *hub.Hub) {
	clock := fakeclock.New(t0)
	h := mk(hub.Config{HistorySize: 3, Clock: clock})
	type change struct {
		line string
		at   time.Time
		del  bool
	}
	var want []change // oldest first
	for i := range 6 {
		clock.Advance(time.Second)
		r := set(t, h, "/hr/k", fmt.Sprint(i))
		want = append(want, change{fmt.Sprintf("/hr/k rev %d seq %d deleted false value %d", r.Revision, r.Seq, i), clock.Now(), false})
		set(t, h, "/hr/other", fmt.Sprint(i))
	}
	clock.Advance(time.Second)
	rx := must(h.Delete("/hr/k", hub.Cond{}, hub.WriteOptions{}))
	want = append(want, change{fmt.Sprintf("/hr/k rev 6 seq %d deleted true value ", rx.Seq), clock.Now(), true})
	clock.Advance(time.Second)
	r := set(t, h, "/hr/k", `"again"`)
	want = append(want, change{fmt.Sprintf("/hr/k rev 0 seq %d deleted false value \"again\"", r.Seq), clock.Now(), false})
	set(t, h, "/hr/other", `"last"`)

	var got []hub.Event
	var before uint64
	var gone *hub.HistoryGoneError
	for pages := 0; ; pages++ {
		page, err := h.History("/hr/k", before, 2)
		if errors.As(err, &gone) {
			break
		}
		if err != nil {
			t.Fatalf("History(before %d): %v", before, err)
		}
		if len(page.Entries) > 2 || len(page.Entries) == 0 && page.Before != 0 && before != 0 {
			t.Fatalf("page %d: %d entries, cursor %d", pages, len(page.Entries), page.Before)
		}
		got = append(got, page.Entries...)
		if page.Before == 0 {
			break
		}
		if before != 0 && page.Before >= before {
			t.Fatalf("cursor %d does not go down from %d", page.Before, before)
		}
		before = page.Before
	}
	if len(got) < 2 {
		t.Fatalf("%d entries, want at least the 2 in the hub's history", len(got))
	}
	if gone != nil && (!errors.Is(gone, hub.ErrHistoryGone) || gone.Oldest == 0 || gone.Oldest > got[len(got)-1].Seq) {
		t.Fatalf("below retention: %+v, want the oldest retained seq, at most %d", gone, got[len(got)-1].Seq)
	}
	if gone == nil && len(got) != len(want) {
		t.Fatalf("the whole history without a 410: %v", confEvents(got))
	}
	for i, e := range got {
		w := want[len(want)-1-i]
		if line := confEvents([]hub.Event{e})[0]; line != w.line {
			t.Fatalf("entry %d: %s, want %s", i, line, w.line)
		}
		// A delete in etcd has no time (etcd keeps none for it).
		if at := time.Unix(0, e.Time); !at.Equal(w.at) && !(w.del && e.Time == 0) {
			t.Fatalf("entry %d (%s): time %v, want %v", i, w.line, at.UTC(), w.at)
		}
	}
}
