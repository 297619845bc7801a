package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// broadcaster is the yardstick of the fan-out benchmark (go run ./bench/subscribers -fanout): a
// trivial SSE broadcaster on net/http. GET /events streams every message; POST /publish sends its
// body to every stream, each stream formatting and flushing it on its own. A stream whose buffer
// of 64 messages is full misses the message (the benchmark keeps fewer in flight).
type broadcaster struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

func newBroadcaster() http.Handler {
	b := &broadcaster{subs: make(map[chan []byte]struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", b.events)
	mux.HandleFunc("POST /publish", b.publish)
	return mux
}

func (b *broadcaster) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 64)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	for {
		select {
		case m := <-ch:
			fmt.Fprintf(w, "data: %s\n\n", m)
			f.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func (b *broadcaster) publish(w http.ResponseWriter, r *http.Request) {
	m, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	b.mu.Lock()
	for ch := range b.subs {
		select {
		case ch <- m:
		default:
		}
	}
	b.mu.Unlock()
}
