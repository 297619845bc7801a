package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSSEReader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  []sseEvent
		retry time.Duration
		err   error
	}{
		{"statehub's stream", "retry: 2000\n\nevent: ready\nid: 41\ndata: {\"seq\":41}\n\nid: /a:3:42\ndata: {\"x\":1}\n\n: keep-alive\n\nevent: delete\nid: /b:5:43\ndata: null\n\n",
			[]sseEvent{{event: "ready", id: "41", data: []byte(`{"seq":41}`)}, {id: "/a:3:42", data: []byte(`{"x":1}`)}, {event: "delete", id: "/b:5:43", data: []byte("null")}},
			2 * time.Second, io.EOF},
		{"CRLF line ends", "id: 1\r\ndata: a\r\n\r\n", []sseEvent{{id: "1", data: []byte("a")}}, 0, io.EOF},
		{"data lines join", "data: a\ndata:b\ndata\n\n", []sseEvent{{data: []byte("a\nb\n")}}, 0, io.EOF},
		{"no space after the colon, unknown fields", "event:reset\nfoo: bar\ndata:{\"seq\":5}\n\n", []sseEvent{{event: "reset", data: []byte(`{"seq":5}`)}}, 0, io.EOF},
		{"an event without data is not dispatched", "event: x\nid: 7\n\ndata: y\n\n", []sseEvent{{data: []byte("y")}}, 0, io.EOF},
		{"a cut mid-event", "id: 1\ndata: a\n\nid: 2\ndata: b", []sseEvent{{id: "1", data: []byte("a")}}, 0, io.ErrUnexpectedEOF},
		{"a long line", "data: " + strings.Repeat("x", 200<<10) + "\n\n", []sseEvent{{data: []byte(strings.Repeat("x", 200<<10))}}, 0, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := 0
			r := newSSEReader(strings.NewReader(tc.in), func() { lines++ })
			var got []sseEvent
			var err error
			for {
				var ev sseEvent
				if ev, err = r.next(); err != nil {
					break
				}
				got = append(got, ev)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("ended with %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events %q, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i].event != tc.want[i].event || got[i].id != tc.want[i].id || string(got[i].data) != string(tc.want[i].data) {
					t.Errorf("event %d: %q, want %q", i, got[i], tc.want[i])
				}
			}
			if r.retry != tc.retry {
				t.Errorf("retry %v, want %v", r.retry, tc.retry)
			}
			if lines == 0 {
				t.Errorf("onLine was never called")
			}
		})
	}
}

func TestChangeEvent(t *testing.T) {
	for _, tc := range []struct {
		id   string
		ok   bool
		snap bool
	}{
		{"/a/b:3:42", true, false}, {"/a:0:1:s", true, true}, {"/a:x:1", false, false}, {"/a:1", false, false}, {"/a:1:2:t", false, false},
	} {
		ev, err := changeEvent(sseEvent{id: tc.id, data: []byte("1")})
		if (err == nil) != tc.ok || (tc.ok && (ev.Snapshot != tc.snap || ev.Position != tc.id)) {
			t.Errorf("%q: %+v, %v", tc.id, ev, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 40; n++ {
		d := backoff(n)
		ceiling := min(maxBackoff, minBackoff<<min(n-1, 10))
		if d < ceiling/2 || d > ceiling {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
		}
	}
}
