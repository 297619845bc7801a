package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

// TestBroadcastSSE: POST /path?broadcast answers 202 and reaches the streams of that path and of
// the prefixes above it as an event "broadcast" without an id, between the changes in commit
// order; other streams never see it, and a resumed stream replays the changes only.
func TestBroadcastSSE(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	room := ts.subscribe(t, "/room/", "")
	cursor := ts.subscribe(t, "/room/1/cursor", "")
	other := ts.subscribe(t, "/other/", "")
	for _, s := range []*sseStream{room, cursor, other} {
		s.next(t) // ready
	}
	ts.must(t, "POST", "/room/1/cursor", `1`) // 1
	r := ts.do(t, "POST", "/room/1/cursor?broadcast", `{ "x": 10, "y": [1, 2] }`)
	if r.status != http.StatusAccepted || r.body != `{"ok":true}` {
		t.Fatalf("broadcast: %d %s, want 202 {\"ok\":true}", r.status, r.body)
	}
	ts.must(t, "POST", "/room/1/cursor", `2`) // 2
	want := []string{`- /room/1/cursor:0:1 1`, `broadcast  {"path":"/room/1/cursor","msg":{"x":10,"y":[1,2]}}`, `- /room/1/cursor:1:2 2`}
	room.expect(t, want...)
	cursor.expect(t, want...)
	// A broadcast to a prefix reaches that prefix's streams, not those of a key below it.
	if r := ts.do(t, "POST", "/room/?broadcast", `"hello"`); r.status != http.StatusAccepted {
		t.Fatalf("broadcast to a prefix: %d %s", r.status, r.body)
	}
	ts.must(t, "POST", "/room/1/cursor", `3`) // 3
	room.expect(t, `broadcast  {"path":"/room/","msg":"hello"}`, `- /room/1/cursor:2:3 3`)
	cursor.expect(t, `- /room/1/cursor:2:3 3`)
	ts.must(t, "POST", "/other/k", `1`) // 4
	other.expect(t, `- /other/k:0:4 1`)

	// The broadcasts never moved the ids: a resume replays the changes only.
	again := ts.subscribe(t, "/room/", "/room/1/cursor:0:1")
	again.expect(t, `- /room/1/cursor:1:2 2`, `- /room/1/cursor:2:3 3`, `ready 4 {"seq":4}`)
	// Nor is one in a snapshot.
	snap := ts.subscribe(t, "/room/?snapshot", "")
	snap.expect(t, `- /room/1/cursor:2:3:s 3`, `ready 4 {"seq":4}`)
	if st := ts.hub.Stats(); st.Seq != 4 {
		t.Fatalf("seq %d after 4 writes and 2 broadcasts, want 4", st.Seq)
	}
}

// TestBroadcastsOnlySSE: a stream with ?broadcasts gets ready, then the broadcasts to its path and
// to the paths below it, never a change. The Last-Event-ID an EventSource sends when it reconnects
// replays nothing; since or snapshot with it is 400.
func TestBroadcastsOnlySSE(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ts.must(t, "POST", "/room/1/cursor", `1`) // 1
	ts.must(t, "POST", "/room/1/cursor", `2`) // 2
	only := ts.subscribe(t, "/room/?broadcasts", "/room/1/cursor:0:1")
	only.expect(t, `ready 2 {"seq":2}`)
	ts.must(t, "POST", "/room/1/cursor", `3`) // 3
	if r := ts.do(t, "POST", "/room/1/cursor?broadcast", `{"x":1}`); r.status != http.StatusAccepted {
		t.Fatalf("broadcast: %d %s", r.status, r.body)
	}
	ts.must(t, "POST", "/room/2/cursor", `1`) // 4
	if r := ts.do(t, "POST", "/room/?broadcast", `"end"`); r.status != http.StatusAccepted {
		t.Fatalf("broadcast: %d %s", r.status, r.body)
	}
	only.expect(t, `broadcast  {"path":"/room/1/cursor","msg":{"x":1}}`, `broadcast  {"path":"/room/","msg":"end"}`)
	for _, q := range []string{"?broadcasts&since=1", "?broadcasts&snapshot"} {
		r := ts.do(t, "GET", "/room/"+q, "", "Accept", "text/event-stream")
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"code":"bad_request"`) || !strings.Contains(r.body, "never replayed") {
			t.Errorf("GET /room/%s: %d %s, want 400 bad_request", q, r.status, r.body)
		}
	}
}

// TestBroadcastRefused: every bad broadcast gets its 4xx and a JSON error.
func TestBroadcastRefused(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{Limits: hub.Limits{MaxBroadcastBytes: 200}}, web.Config{})
	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"not JSON", "/b?broadcast", `{x}`, 400, "invalid_json"},
		{"empty", "/b?broadcast", ``, 400, "invalid_json"},
		{"not UTF-8", "/b?broadcast", "\"\xff\"", 400, "invalid_json"},
		{"too deep", "/b?broadcast", strings.Repeat("[", 65) + strings.Repeat("]", 65), 400, "too_deep"},
		{"deep enough", "/b?broadcast", strings.Repeat("[", 30) + strings.Repeat("]", 30), 202, ""},
		{"too large", "/b?broadcast", `"` + strings.Repeat("x", 199) + `"`, 413, "too_large"},
		{"at the limit", "/b?broadcast", `"` + strings.Repeat("x", 198) + `"`, 202, ""},
		{"bad key", "/b//c?broadcast", `1`, 400, "invalid_key"},
		{"the root needs admin", "/?broadcast", `1`, 401, "unauthorized"},
		{"unknown parameter", "/b?broadcast&ttl=1s", `1`, 400, "unknown_parameter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "POST", tc.path, tc.body)
			if tc.code == "" {
				if r.status != http.StatusAccepted {
					t.Fatalf("status %d (%s), want 202", r.status, r.body)
				}
				return
			}
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			if eb := errorBody(t, r); eb.Code != tc.code {
				t.Fatalf("code %q (%s), want %q", eb.Code, eb.Error, tc.code)
			}
		})
	}
}

// TestBroadcastRate: a client's broadcasts are bounded by Limits.BroadcastRate, per token or else
// per client IP, with its burst; one over it is 429 rate_limited with Retry-After, and the
// bucket refills with the server's clock. Other requests do not count.
func TestBroadcastRate(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{Clock: clock, Limits: web.Limits{BroadcastRate: 0.5, BroadcastBurst: 2}})
	bcast := func() response { return ts.do(t, "POST", "/r?broadcast", `1`) }
	for i := range 2 {
		if r := bcast(); r.status != http.StatusAccepted {
			t.Fatalf("broadcast %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := bcast()
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" {
		t.Fatalf("over the rate: %d, Retry-After %q (%s); want 429 after 2 s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if eb := errorBody(t, r); eb.Code != "rate_limited" || !strings.Contains(eb.Error, "broadcast") {
		t.Fatalf("over the rate: %+v", eb)
	}
	ts.must(t, "POST", "/r", `1`) // a write is not a broadcast
	clock.Advance(2 * time.Second)
	if r := bcast(); r.status != http.StatusAccepted {
		t.Fatalf("after the refill: %d %s", r.status, r.body)
	}
	if r := bcast(); r.status != http.StatusTooManyRequests {
		t.Fatalf("the refill is one message: %d %s", r.status, r.body)
	}
}

// TestBroadcastThrottled: a throttled stream passes broadcasts at once, ahead of the changes its
// throttle holds back.
func TestBroadcastThrottled(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{Clock: clock})
	s := ts.subscribe(t, "/t/?throttle=1m", "")
	s.next(t)                       // ready
	ts.must(t, "POST", "/t/a", `1`) // goes out at once and arms the throttle
	ts.must(t, "POST", "/t/a", `2`) // held for a minute
	if r := ts.do(t, "POST", "/t/a?broadcast", `"now"`); r.status != http.StatusAccepted {
		t.Fatalf("broadcast: %d %s", r.status, r.body)
	}
	s.expect(t, `- /t/a:0:1 1`, `broadcast  {"path":"/t/a","msg":"now"}`)
	clock.Advance(time.Minute)
	s.expect(t, `- /t/a:1:2 2`)
}
