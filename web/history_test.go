package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// TestHistoryHTTPAndWS: GET /key?history and the WebSocket's history op answer the same pages,
// newest first, paged by the cursor; below the retained history both answer 410 history_gone.
func TestHistoryHTTPAndWS(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{HistorySize: 4}, Config{}, false)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	c := ts.dial(t)
	for i := range 3 {
		c.must(map[string]any{"op": "set", "key": "/h/k", "value": i})
	}
	c.must(map[string]any{"op": "delete", "key": "/h/k"})

	// The whole history is retained: two pages, the second without a cursor.
	status, body := get("/h/k?history&limit=3")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var page HistoryAnswer
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 3 || !page.Entries[0].Deleted || page.Entries[0].Revision != 3 ||
		string(page.Entries[1].Value) != "2" || page.Entries[2].Revision != 1 || page.Cursor == "" {
		t.Fatalf("first page %s", body)
	}
	ws := c.must(map[string]any{"op": "history", "key": "/h/k", "limit": 3})
	var wsPage HistoryAnswer
	json.Unmarshal([]byte(ws.raw), &wsPage)
	if fmt.Sprint(wsPage) != fmt.Sprint(page) {
		t.Fatalf("websocket %s, HTTP %s", ws.raw, body)
	}
	status, body = get("/h/k?history&limit=3&cursor=" + page.Cursor)
	if status != http.StatusOK || !strings.Contains(body, `"value":0`) || strings.Contains(body, "cursor") {
		t.Fatalf("second page %d: %s", status, body)
	}
	ws = c.must(map[string]any{"op": "history", "key": "/h/k", "limit": 3, "cursor": page.Cursor})
	if !strings.Contains(ws.raw, `"value":0`) || strings.Contains(ws.raw, "cursor") {
		t.Fatalf("websocket second page %s", ws.raw)
	}

	// Two more writes evict the oldest: the first page has a cursor, the page below it is gone.
	c.must(map[string]any{"op": "set", "key": "/h/k", "value": "x"})
	c.must(map[string]any{"op": "set", "key": "/h/k", "value": "y"})
	status, body = get("/h/k?history")
	json.Unmarshal([]byte(body), &page)
	if status != http.StatusOK || len(page.Entries) != 4 || page.Cursor == "" {
		t.Fatalf("first page after eviction %d: %s", status, body)
	}
	status, body = get("/h/k?history&cursor=" + page.Cursor)
	if status != http.StatusGone || !strings.Contains(body, `"code":"history_gone"`) {
		t.Fatalf("below the retained history %d: %s", status, body)
	}
	ws = c.call(map[string]any{"op": "history", "key": "/h/k", "cursor": page.Cursor})
	if ws.OK || ws.Status != http.StatusGone || ws.Code != "history_gone" {
		t.Fatalf("websocket below the retained history: %s", ws.raw)
	}

	// Bad requests.
	for _, q := range []string{"/h/k?history&limit=0", "/h/k?history&cursor=abc", "/h/k?history&since=1"} {
		if status, body := get(q); status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", q, status, body)
		}
	}
}

// TestHistoryTimes: each entry carries its commit's time (the hub's clock, RFC 3339 in UTC); a
// page below the retained history is 410 history_gone naming the key and the oldest seq retained.
func TestHistoryTimes(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := fakeclock.New(start)
	ts := newWSServer(t, hub.Config{HistorySize: 3, Clock: clock}, Config{}, false)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	c := ts.dial(t)
	for i := range 5 {
		clock.Advance(1500 * time.Millisecond)
		c.must(map[string]any{"op": "set", "key": "/h/t", "value": i})
	}
	res, err := http.Get(base + "/h/t?history&limit=2")
	if err != nil {
		t.Fatal(err)
	}
	var page HistoryAnswer
	json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if len(page.Entries) != 2 || page.Entries[0].Time != "2026-05-01T12:00:07.5Z" || page.Entries[1].Time != "2026-05-01T12:00:06Z" {
		t.Fatalf("times %+v, want 12:00:07.5 and 12:00:06 UTC", page.Entries)
	}
	ws := c.must(map[string]any{"op": "history", "key": "/h/t", "limit": 2})
	if !strings.Contains(ws.raw, `"time":"2026-05-01T12:00:07.5Z"`) {
		t.Fatalf("websocket answer without the time: %s", ws.raw)
	}

	// The history holds the last 3 changes (seq 3 to 5): below them, 410 naming seq 3.
	res, err = http.Get(base + "/h/t?history&cursor=3")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var eb ErrorBody
	if json.Unmarshal(b, &eb); res.StatusCode != http.StatusGone || eb.Code != "history_gone" || eb.Oldest != 3 || eb.Key != "/h/t" {
		t.Fatalf("below the retained history: %d %s, want 410 history_gone with oldest 3", res.StatusCode, b)
	}
	gone := c.call(map[string]any{"op": "history", "key": "/h/t", "cursor": "3"})
	if gone.OK || gone.Status != http.StatusGone || !strings.Contains(gone.raw, `"oldest":3`) {
		t.Fatalf("websocket below the retained history: %s", gone.raw)
	}
}
