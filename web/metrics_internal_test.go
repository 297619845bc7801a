package web

import (
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/statehub/statehub/hub"
)

// TestRequestMetrics checks the exposition of counted and timed requests: a duration on a
// bucket's bound falls in that bucket (Prometheus' "le"), streams and sockets are counted and not
// timed, a method the API does not use counts as "other", and a route's histogram sums its label
// sets. Every label a request can be timed under has its histogram from the start.
func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { h.Close() })
	m := newMetrics(h, slog.New(slog.DiscardHandler))
	keys, health, ws := m.route("/*"), m.route("/.health"), m.route("/.ws")
	keys.key.observe("POST", 200, 500*time.Microsecond, true)   // on the first bound
	keys.key.observe("POST", 200, 501*time.Microsecond, true)   // just above it
	keys.key.observe("GET", 404, 3*time.Millisecond, true)      // another label set, same route
	keys.key.observe("GET", 200, 11*time.Second, true)          // above every bound
	keys.key.observe("BREW", 200, time.Millisecond, true)       // a method the API does not use
	keys.stream.observe("GET", 200, time.Minute, false)         // a stream: counted only
	health.path.observe("GET", 200, 100*time.Microsecond, true) // an echo route
	ws.path.observe("GET", 101, time.Minute, false)             // a socket: counted only
	want := `
# HELP statehub_http_request_duration_seconds Time to answer a request (streams and sockets excluded), by route.
# TYPE statehub_http_request_duration_seconds histogram
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.0005"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.001"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.0025"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.005"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.01"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.025"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.05"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.1"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.25"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="0.5"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="1"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="2.5"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="5"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="10"} 1
statehub_http_request_duration_seconds_bucket{route="/.health",le="+Inf"} 1
statehub_http_request_duration_seconds_sum{route="/.health"} 0.0001
statehub_http_request_duration_seconds_count{route="/.health"} 1
statehub_http_request_duration_seconds_bucket{route="key",le="0.0005"} 1
statehub_http_request_duration_seconds_bucket{route="key",le="0.001"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.0025"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.005"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="0.01"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="0.025"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="0.05"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="0.1"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="0.25"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="0.5"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="1"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="2.5"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="5"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="10"} 4
statehub_http_request_duration_seconds_bucket{route="key",le="+Inf"} 5
statehub_http_request_duration_seconds_sum{route="key"} 11.005001
statehub_http_request_duration_seconds_count{route="key"} 5
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.0005"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.001"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.0025"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.005"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.01"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.025"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.05"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.1"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.25"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="0.5"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="1"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="2.5"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="5"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="10"} 0
statehub_http_request_duration_seconds_bucket{route="subtree",le="+Inf"} 0
statehub_http_request_duration_seconds_sum{route="subtree"} 0
statehub_http_request_duration_seconds_count{route="subtree"} 0
# HELP statehub_http_requests_total HTTP requests answered, by route, method and status code.
# TYPE statehub_http_requests_total counter
statehub_http_requests_total{code="200",method="GET",route="/.health"} 1
statehub_http_requests_total{code="101",method="GET",route="/.ws"} 1
statehub_http_requests_total{code="200",method="GET",route="key"} 1
statehub_http_requests_total{code="404",method="GET",route="key"} 1
statehub_http_requests_total{code="200",method="GET",route="stream"} 1
statehub_http_requests_total{code="200",method="POST",route="key"} 2
statehub_http_requests_total{code="200",method="other",route="key"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"statehub_http_requests_total", "statehub_http_request_duration_seconds"); err != nil {
		t.Fatal(err)
	}
}

// TestRequestCounters checks that requests counted at once by many goroutines, under label sets
// each first seen by several of them, are all counted, each under its own method and code.
func TestRequestCounters(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { h.Close() })
	m := newMetrics(h, slog.New(slog.DiscardHandler))
	l := m.route("/*").key
	methods := []string{"GET", "POST", "BREW"}
	codes := []int{200, 304, 404, 409}
	const goroutines, each = 8, 100
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := range each {
				for _, method := range methods {
					l.requests.inc(method, codes[i%len(codes)])
				}
			}
		})
	}
	wg.Wait()
	for _, method := range []string{"GET", "POST", "other"} {
		for _, code := range codes {
			got := testutil.ToFloat64(m.requests.WithLabelValues("key", method, strconv.Itoa(code)))
			if want := float64(goroutines * each / len(codes)); got != want {
				t.Errorf("%s %d: counted %v, want %v", method, code, got, want)
			}
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != len(methods)*len(codes) {
		t.Errorf("%d label sets, want %d", n, len(methods)*len(codes))
	}
}
