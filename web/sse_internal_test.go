package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
)

// writeSizes is a ResponseWriter that keeps what is written and the size of each write.
type writeSizes struct {
	header http.Header
	mu     sync.Mutex
	body   strings.Builder
	sizes  []int
}

func (w *writeSizes) Header() http.Header { return w.header }
func (w *writeSizes) WriteHeader(int)     {}
func (w *writeSizes) Flush()              {}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sizes = append(w.sizes, len(p))
	return w.body.Write(p)
}

func (w *writeSizes) has(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Contains(w.body.String(), s)
}

// TestSSESnapshotStreamed: a ?snapshot of large values is written as it is formatted, in writes
// of about sseKeepBuffer and one event, never as one buffer holding the whole subtree.
func TestSSESnapshotStreamed(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: wsQuiet})
	t.Cleanup(func() { h.Close() })
	const n, size = 8, 1 << 20
	value := `"` + strings.Repeat("s", size-2) + `"`
	for i := range n {
		if _, err := h.Set("/snap/"+strconv.Itoa(i), []byte(value), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := New(h, Config{Logger: wsQuiet})
	req := httptest.NewRequest(http.MethodGet, "/snap/?snapshot", nil)
	req.RemoteAddr = "127.0.0.1:1234" // a client on loopback, which a protected server serves
	req.Header.Set("Accept", "text/event-stream")
	w := &writeSizes{header: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handler().ServeHTTP(w, req)
	}()
	wsWaitFor(t, "the ready event", func() bool { return w.has("event: ready") })
	h.Drain() // ends the stream
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := strings.Count(w.body.String(), value); got != n {
		t.Fatalf("%d of the %d values in the stream", got, n)
	}
	for i, sz := range w.sizes {
		if sz > sseKeepBuffer+size+200 {
			t.Fatalf("write %d of %d bytes: the snapshot was gathered whole", i, sz)
		}
	}
}

// TestSSEStreamIdleHoldsLittle: once a stream has written a burst, it holds neither the burst's
// event slices (keepEvents) nor a format buffer (sseBuffers) while idle.
func TestSSEStreamIdleHoldsLittle(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: wsQuiet, QueueSize: 4096})
	t.Cleanup(func() { h.Close() })
	sub, err := h.Subscribe("/b/", hub.SubscribeOptions{Notify: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	var body bytes.Buffer
	st := &sseStream{s: New(h, Config{Logger: wsQuiet}), sub: sub, running: true, done: make(chan struct{}),
		out: sseWriter{w: &body, dl: writeDeadline{set: func(time.Time) error { return nil }, timeout: time.Minute}}}
	const n = 4 * keepEvents
	for i := range n {
		if _, err := h.Set("/b/"+strconv.Itoa(i), []byte(`1`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !st.deliver(false) {
		t.Fatal("the stream ended")
	}
	if got := strings.Count(body.String(), "\ndata: 1\n\n"); got != n {
		t.Fatalf("%d events written, want %d", got, n)
	}
	if cap(st.batch) > keepEvents || st.out.buf != nil {
		t.Fatalf("idle with %d event slots and buffer %v", cap(st.batch), st.out.buf != nil)
	}
}
