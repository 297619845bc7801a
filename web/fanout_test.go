package web

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
)

// rawStream reads an SSE stream's events as the bytes the server sent, one "\n\n"-ended block
// each, comments and the retry line left out.
type rawStream struct {
	res *http.Response
	br  *bufio.Reader
}

func openRaw(t *testing.T, url, lastEventID string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	return &rawStream{res: res, br: bufio.NewReader(res.Body)}
}

func (s *rawStream) next(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		b.WriteString(line)
		if line == "\n" {
			ev := b.String()
			b.Reset()
			if ev == "\n" || strings.HasPrefix(ev, ":") || strings.HasPrefix(ev, "retry:") {
				continue
			}
			return ev
		}
	}
}

// untilReady skips to the ready event.
func (s *rawStream) untilReady(t *testing.T) {
	t.Helper()
	for !strings.HasPrefix(s.next(t), "event: ready\n") {
	}
}

// TestSharedEncodingBytes: the live changes every subscriber shares (one encoding per transport)
// are the very bytes a subscriber gets when the same changes are encoded for it alone: a replay
// from the history. Over SSE and over the WebSocket, for sets, deletes and escaped values.
func TestSharedEncodingBytes(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	ts.h.Set("/enc/x", []byte(`0`), hub.Cond{}, hub.WriteOptions{})
	start := ts.h.Seq()

	const n = 3
	var streams []*rawStream
	var socks []*wsClient
	for range n {
		s := openRaw(t, base+"/enc/", "")
		s.untilReady(t)
		streams = append(streams, s)
		c := ts.dial(t)
		c.id = 6 // every socket's sub has id 7
		c.must(m{"op": "sub", "path": "/enc/"})
		c.expectEvents(7, "ready")
		socks = append(socks, c)
	}
	writes := []func(){
		func() { ts.h.Set("/enc/a", []byte(`{"v":"quote \" and \\ and é"}`), hub.Cond{}, hub.WriteOptions{}) },
		func() { ts.h.Set("/enc/b", []byte(`[1,2.50,3e2]`), hub.Cond{}, hub.WriteOptions{}) },
		func() { ts.h.Delete("/enc/a", hub.Cond{}, hub.WriteOptions{}) },
		func() { ts.h.DeletePrefix("/enc/", hub.WriteOptions{}) },
	}
	for _, w := range writes {
		w()
	}
	const events = 5 // the prefix delete removes /enc/b and /enc/x
	var sse, ws [][]string
	for i := range n {
		var a, b []string
		for range events {
			a = append(a, streams[i].next(t))
			b = append(b, socks[i].event().raw)
		}
		sse, ws = append(sse, a), append(ws, b)
	}

	// The same changes, each encoded for one subscriber alone: replayed from the history.
	from := hub.EventID("/enc/x", 0, start, false)
	replay := openRaw(t, base+"/enc/", from)
	c := ts.dial(t)
	c.id = 6
	c.must(m{"op": "sub", "path": "/enc/", "since": from})
	for k := range events {
		wantSSE, wantWS := replay.next(t), c.event().raw
		for i := range n {
			if sse[i][k] != wantSSE {
				t.Fatalf("SSE stream %d, event %d: %q, encoded alone %q", i, k, sse[i][k], wantSSE)
			}
			if ws[i][k] != wantWS {
				t.Fatalf("socket %d, event %d: %q, encoded alone %q", i, k, ws[i][k], wantWS)
			}
		}
	}
	if !strings.Contains(sse[0][0], `quote \" and`) || !strings.Contains(ws[0][4], `"type":"delete"`) {
		t.Fatalf("unexpected events: %q %q", sse[0], ws[0])
	}
}

// TestWriteDeadlineArm: the deadline moves only when less than the timeout is left, to twice the
// timeout ahead; lift clears it once.
func TestWriteDeadlineArm(t *testing.T) {
	var sets []time.Time
	d := writeDeadline{set: func(at time.Time) error { sets = append(sets, at); return nil }, timeout: time.Hour}
	d.arm()
	d.arm() // most of two hours left: not moved
	if len(sets) != 1 || time.Until(sets[0]) < time.Hour {
		t.Fatalf("deadlines set: %v", sets)
	}
	d.at = time.Now().Add(time.Minute) // less than the timeout left
	d.arm()
	if len(sets) != 2 || time.Until(sets[1]) < time.Hour {
		t.Fatalf("deadlines set: %v", sets)
	}
	d.lift()
	d.lift()
	if len(sets) != 3 || !sets[2].IsZero() {
		t.Fatalf("deadlines set: %v", sets)
	}
}

// TestSnapshotPages: a ?snapshot of a subtree of several pages, over SSE and over the WebSocket,
// brings every key exactly once, in key order, then ready, then the live changes.
func TestSnapshotPages(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	const n = 2*hub.PageEntries + 11
	key := func(i int) string { return fmt.Sprintf("/pg/%04d", i) }
	for i := range n {
		ts.h.Set(key(i), []byte(strconv.Itoa(i)), hub.Cond{}, hub.WriteOptions{})
	}
	sse := openRaw(t, base+"/pg/?snapshot", "")
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/pg/", "snapshot": true})
	for i := range n {
		want := fmt.Sprintf("id: %s\ndata: %d\n\n", hub.EventID(key(i), 0, uint64(i+1), true), i)
		if got := sse.next(t); got != want {
			t.Fatalf("SSE entry %d: %q, want %q", i, got, want)
		}
		if e := c.event(); e.Key != key(i) || string(e.Value) != strconv.Itoa(i) || !e.Snapshot {
			t.Fatalf("WebSocket entry %d: %s", i, e.raw)
		}
	}
	if got := sse.next(t); !strings.HasPrefix(got, "event: ready\n") {
		t.Fatalf("after the entries: %q", got)
	}
	c.expectEvents(c.id, "ready")
	ts.h.Set(key(0), []byte(`"live"`), hub.Cond{}, hub.WriteOptions{})
	if got := sse.next(t); !strings.Contains(got, `data: "live"`) {
		t.Fatalf("live change: %q", got)
	}
	c.expectEvents(c.id, `set /pg/0000 "live"@1`)
}

// TestWSNothingAfterUnsub: while changes stream in, no event of a subscription follows the answer
// to its unsub, however many were queued; another subscription on the socket goes on.
func TestWSNothingAfterUnsub(t *testing.T) {
	t.Parallel()
	ts := newWSServer(t, hub.Config{}, Config{}, false)
	c := ts.dial(t)
	c.must(m{"op": "sub", "path": "/u/"})
	busy := c.id
	c.must(m{"op": "sub", "path": "/marker"})
	marker := c.id
	c.expectEvents(busy, "ready")
	c.expectEvents(marker, "ready")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a writer that keeps /u/ busy
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts.h.Set("/u/k", []byte(strconv.Itoa(i)), hub.Cond{}, hub.WriteOptions{})
		}
	}()
	defer func() { close(stop); <-done }()
	for range 50 { // events are flowing
		if e := c.event(); string(e.Sub) != strconv.Itoa(busy) {
			t.Fatalf("event %s", e.raw)
		}
	}
	c.id++
	c.sendRaw(`{"op":"unsub","id":` + strconv.Itoa(c.id) + `,"sub":` + strconv.Itoa(busy) + `}`)
	for {
		msg := c.read()
		if msg.Type == "" {
			if string(msg.ID) != strconv.Itoa(c.id) || !msg.OK {
				t.Fatalf("unsub answer: %s", msg.raw)
			}
			break
		}
		if string(msg.Sub) != strconv.Itoa(busy) {
			t.Fatalf("event %s", msg.raw)
		}
	}
	ts.h.Set("/marker", []byte(`1`), hub.Cond{}, hub.WriteOptions{})
	for {
		msg := c.read()
		if string(msg.Sub) == strconv.Itoa(busy) {
			t.Fatalf("after the unsub answer: %s", msg.raw)
		}
		if string(msg.Sub) == strconv.Itoa(marker) && msg.Type == "set" {
			return
		}
	}
}
