package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// BenchmarkIncrHTTP measures POST ?incr over loopback HTTP, from parallel clients on one counter
// each (b.RunParallel), memory-only hub.
func BenchmarkIncrHTTP(b *testing.B) {
	ts := newServer(b, hub.Config{}, web.Config{})
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		url := ts.srv.URL + "/bench/n" + strconv.FormatInt(next.Add(1)%8, 10) + "?incr"
		for pb.Next() {
			res, err := ts.client.Post(url, "", nil)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkGetHTTP measures GET of a small JSON value over loopback HTTP from parallel clients.
func BenchmarkGetHTTP(b *testing.B) {
	ts := newServer(b, hub.Config{}, web.Config{})
	ts.must(b, "POST", "/bench/doc", `{"title":"hello","tags":["a","b"],"n":12345678901234567890}`)
	url := ts.srv.URL + "/bench/doc"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := ts.client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkIncrHandler measures the handler alone (no sockets) for POST ?incr: the middleware
// chain, routing, the hub write and the response headers. Its allocations per op are the ones a
// server pays on top of net/http's own.
func BenchmarkIncrHandler(b *testing.B) {
	h := hub.New(hub.Config{Logger: quiet})
	b.Cleanup(func() { h.Close() })
	srv := web.New(h, web.Config{Logger: quiet, Auth: openAuth(b)}).Handler()
	req := httptest.NewRequest(http.MethodPost, "/bench/counter?incr", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkGetHandler measures the handler alone (no connection, no net/http) for GET of a small
// key: the compression wrapper, routing, the middleware, the hub's read and the answer's headers,
// what a GET costs on top of net/http's own work (BenchmarkServeGet has both). "open" is a server
// with -open, as bench/keys runs it; "protected" the default, without auth, read from loopback.
func BenchmarkGetHandler(b *testing.B) {
	open := openAuth(b)
	protected, err := auth.New(auth.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		auth *auth.Authenticator
	}{{"open", open}, {"protected", protected}} {
		b.Run(bc.name, func(b *testing.B) {
			h := hub.New(hub.Config{Logger: quiet})
			b.Cleanup(func() { h.Close() })
			if _, err := h.Set("/bench/doc", []byte(`{"n":123}`), hub.Cond{}, hub.WriteOptions{}); err != nil {
				b.Fatal(err)
			}
			srv := web.New(h, web.Config{Logger: quiet, Auth: bc.auth}).Handler()
			req := httptest.NewRequest(http.MethodGet, "/bench/doc", nil)
			req.RemoteAddr = "127.0.0.1:1234"
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				clear(w.header) // net/http gives each request a new map
				w.status = 0
				srv.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			// The process's CPU time, which other work on the machine inflates less than the
			// wall time.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// discardWriter is an http.ResponseWriter that keeps the status and drops the body.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
