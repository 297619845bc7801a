package hub_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestHistoryFloor: with a tiny history on Local, the first page answers what remains with a
// cursor (the history is not whole), and a cursor below the floor is ErrHistoryGone.
func TestHistoryFloor(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{HistorySize: 3})
	var rs []hub.Result
	for i := range 5 {
		rs = append(rs, set(t, h, "/f/k", fmt.Sprint(i)))
	}
	page, err := h.History("/f/k", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 3 || page.Entries[0].Seq != rs[4].Seq || page.Entries[2].Seq != rs[2].Seq || string(page.Entries[0].Value) != "4" {
		t.Fatalf("first page %v, want the 3 retained changes newest first", confEvents(page.Entries))
	}
	if page.Before != rs[2].Seq {
		t.Fatalf("cursor %d, want %d: the history is not whole", page.Before, rs[2].Seq)
	}
	if _, err := h.History("/f/k", page.Before, 10); !errors.Is(err, hub.ErrHistoryGone) {
		t.Fatalf("the page below the floor: %v, want ErrHistoryGone", err)
	}
	var gone *hub.HistoryGoneError
	if _, err := h.History("/f/k", rs[1].Seq, 10); !errors.As(err, &gone) || gone.Oldest != rs[2].Seq || gone.Key != "/f/k" {
		t.Fatalf("a cursor below the floor: %v, want a HistoryGoneError naming seq %d", err, rs[2].Seq)
	}
	// Below seq 1 there is nothing, retained or not.
	if page, err := h.History("/f/k", 1, 10); err != nil || len(page.Entries) != 0 || page.Before != 0 {
		t.Fatalf("below seq 1: %v cursor %d, %v", confEvents(page.Entries), page.Before, err)
	}
	// Pages within what is retained.
	page, err = h.History("/f/k", 0, 2)
	if err != nil || len(page.Entries) != 2 || page.Before != rs[3].Seq {
		t.Fatalf("page of 2: %v cursor %d, %v", confEvents(page.Entries), page.Before, err)
	}
	page, err = h.History("/f/k", page.Before, 2)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Seq != rs[2].Seq || page.Before != rs[2].Seq {
		t.Fatalf("second page: %v cursor %d, %v", confEvents(page.Entries), page.Before, err)
	}
}

// TestHistoryAcrossRestart: the disk store's log keeps each commit's time, so after a restart the
// history (refilled from the log after the newest snapshot) answers the same entries and times;
// the changes a snapshot covers are gone, with a *HistoryGoneError naming the oldest retained.
func TestHistoryAcrossRestart(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(t0)
	sc := hub.StoreConfig{Dir: t.TempDir()}
	cfg := hub.Config{Clock: clock, Logger: slog.New(slog.DiscardHandler)}
	h := must(hub.Open(cfg, sc))
	var rs []hub.Result
	for i := range 4 {
		clock.Advance(time.Second)
		rs = append(rs, set(t, h, "/r/k", fmt.Sprint(i)))
		if i == 1 {
			if err := h.Checkpoint(); err != nil { // a snapshot at rs[1]: the log after it holds rs[2], rs[3]
				t.Fatal(err)
			}
		}
	}
	before := must(h.History("/r/k", 0, 10))
	h.Close()

	h = must(hub.Open(cfg, sc))
	defer h.Close()
	page := must(h.History("/r/k", 0, 10))
	if len(page.Entries) != 2 || page.Before != rs[2].Seq {
		t.Fatalf("after a restart: %v cursor %d, want the 2 changes after the snapshot", confEvents(page.Entries), page.Before)
	}
	for i, e := range page.Entries {
		if want := before.Entries[i]; e.Seq != want.Seq || e.Time != want.Time || !time.Unix(0, e.Time).Equal(t0.Add(time.Duration(4-i)*time.Second)) {
			t.Fatalf("entry %d after the restart: seq %d time %v, want seq %d time %v", i, e.Seq, time.Unix(0, e.Time), want.Seq, time.Unix(0, want.Time))
		}
	}
	var gone *hub.HistoryGoneError
	if _, err := h.History("/r/k", page.Before, 10); !errors.As(err, &gone) || gone.Oldest != rs[2].Seq {
		t.Fatalf("below the snapshot: %v, want a HistoryGoneError naming seq %d", err, rs[2].Seq)
	}
}
