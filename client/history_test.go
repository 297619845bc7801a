package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestHistory: History pages through a key's changes newest first, with their times; once the
// server's history no longer holds the older ones it ends with ErrHistoryGone naming the oldest
// seq retained.
func TestHistory(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := fakeclock.New(start)
	ts := newServer(t, hub.Config{HistorySize: 4, Clock: clock}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	for i := range 3 {
		clock.Advance(time.Second)
		if _, err := c.Set(ctx, "/h/k", i); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	if _, err := c.Delete(ctx, "/h/k"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for e, err := range c.History(ctx, "/h/k", client.HistoryOptions{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d@%d %s %s %v", e.Revision, e.Seq, e.Value, e.Time.Format("15:04:05"), e.Deleted))
	}
	want := "[3@4  12:00:04 true 2@3 2 12:00:03 false 1@2 1 12:00:02 false 0@1 0 12:00:01 false]"
	if fmt.Sprint(got) != want {
		t.Fatalf("history %v, want %s", got, want)
	}
	// Below a seq, and stopping early.
	for e, err := range c.History(ctx, "/h/k", client.HistoryOptions{Before: 3}) {
		if err != nil || e.Seq != 2 || string(e.Value) != "1" {
			t.Fatalf("the first change below seq 3: %+v, %v", e, err)
		}
		break
	}

	// Two more writes evict the first two changes: the history ends with ErrHistoryGone.
	c.Set(ctx, "/h/k", json.RawMessage(`"x"`))
	c.Set(ctx, "/h/k", json.RawMessage(`"y"`))
	n := 0
	var last error
	for _, err := range c.History(ctx, "/h/k", client.HistoryOptions{Limit: 2}) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	var e *client.Error
	if n != 4 || !errors.Is(last, client.ErrHistoryGone) || !errors.As(last, &e) || e.Status != 410 || e.Oldest != 3 {
		t.Fatalf("after eviction: %d entries, then %#v; want 4 and a 410 ErrHistoryGone with Oldest 3", n, last)
	}
	for _, err := range c.History(ctx, "/h/", client.HistoryOptions{}) {
		if !errors.Is(err, client.ErrNotKey) {
			t.Fatalf("history of a prefix: %v", err)
		}
	}
}
