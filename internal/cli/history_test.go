package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestHistory: history prints a key's changes newest first as JSON lines with their times, at
// most -limit; when older ones are gone it says so on stderr, and a -before below them exits 1.
func TestHistory(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	ts := newServer(t, hub.Config{HistorySize: 3, Clock: clock})
	e := env(ts.URL)
	for _, v := range []string{"1", `"two"`, "3"} {
		clock.Advance(time.Second)
		must(t, e, "set", "/h/k", v)
	}
	clock.Advance(time.Second)
	must(t, e, "del", "/h/k")

	out := must(t, e, "history", "-limit", "2", "/h/k")
	want := `{"revision":3,"seq":4,"time":"2026-05-01T12:00:04Z","deleted":true}` + "\n" +
		`{"revision":2,"seq":3,"time":"2026-05-01T12:00:03Z","value":3}` + "\n"
	if out != want {
		t.Fatalf("history -limit 2:\n%s\nwant\n%s", out, want)
	}
	// All that is retained (the last 3 changes), then a note that older ones are gone.
	r := run(t, e, "", "history", "-limit", "0", "/h/k")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, `"value":"two"`) || !strings.Contains(r.stderr, "from seq 2") {
		t.Fatalf("history -limit 0: %+v", r)
	}
	if r := run(t, e, "", "history", "-before", "2", "/h/k"); r.code != 1 || !strings.Contains(r.stderr, "history_gone") {
		t.Fatalf("history -before below the retained history: %+v", r)
	}
	if r := run(t, e, "", "history", "/h/"); r.code != 1 {
		t.Fatalf("history of a prefix: %+v", r)
	}
}
