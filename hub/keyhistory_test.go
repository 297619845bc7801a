package hub_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/statehub/statehub/hub"
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
