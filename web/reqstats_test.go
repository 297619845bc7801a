package web

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRequestStats checks the exposition of counted and timed requests: a duration on a bucket's
// bound falls in that bucket (Prometheus' "le"), streams are counted and not timed, and a route's
// histogram sums its label sets.
func TestRequestStats(t *testing.T) {
	t.Parallel()
	var s requestStats
	s.observe("key", "POST", 200, 500*time.Microsecond, true)     // on the first bound
	s.observe("key", "POST", 200, 501*time.Microsecond, true)     // just above it
	s.observe("key", "GET", 404, 3*time.Millisecond, true)        // another label set, same route
	s.observe("key", "GET", 200, 11*time.Second, true)            // above every bound
	s.observe("stream", "GET", 200, time.Minute, false)           // a stream: counted only
	s.observe("/.health", "GET", 200, 100*time.Microsecond, true) // an echo route
	s.observe("/.tx", "BREW", 418, time.Second, false)            // another method, a status without a column
	s.observe("/.tx", "BREW", 418, time.Second, false)
	s.observe("/.tx", "MKCOL", 799, time.Second, false) // and a status beyond any column
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
statehub_http_request_duration_seconds_bucket{route="key",le="0.001"} 2
statehub_http_request_duration_seconds_bucket{route="key",le="0.0025"} 2
statehub_http_request_duration_seconds_bucket{route="key",le="0.005"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.01"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.025"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.05"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.1"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.25"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="0.5"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="1"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="2.5"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="5"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="10"} 3
statehub_http_request_duration_seconds_bucket{route="key",le="+Inf"} 4
statehub_http_request_duration_seconds_sum{route="key"} 11.004001
statehub_http_request_duration_seconds_count{route="key"} 4
# HELP statehub_http_requests_total HTTP requests answered, by route, method and status.
# TYPE statehub_http_requests_total counter
statehub_http_requests_total{method="GET",route="/.health",status="200"} 1
statehub_http_requests_total{method="other",route="/.tx",status="418"} 2
statehub_http_requests_total{method="other",route="/.tx",status="799"} 1
statehub_http_requests_total{method="GET",route="key",status="200"} 1
statehub_http_requests_total{method="GET",route="key",status="404"} 1
statehub_http_requests_total{method="GET",route="stream",status="200"} 1
statehub_http_requests_total{method="POST",route="key",status="200"} 2
`
	if err := testutil.CollectAndCompare(&s, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// TestRequestStatsConcurrent observes from many goroutines while scraping: run under -race, and
// the final counts are exact.
func TestRequestStatsConcurrent(t *testing.T) {
	t.Parallel()
	var s requestStats
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.observe("key", "POST", 200+w%2, time.Duration(i)*time.Millisecond, i%10 != 0)
			}
		}()
	}
	stop := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			select {
			case <-stop:
				return
			default:
				testutil.CollectAndCount(&s)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-scraped
	if got := testutil.CollectAndCount(&s, "statehub_http_requests_total"); got != 2 {
		t.Fatalf("%d label sets, want 2", got)
	}
	total := 0.0
	for _, status := range []int{200, 201} {
		st := s.stat("key", methodIndex("POST"), status)
		n := st.untimed.Load()
		for i := range st.buckets {
			n += st.buckets[i].Load()
		}
		total += float64(n)
	}
	if total != workers*each {
		t.Fatalf("counted %v requests, want %d", total, workers*each)
	}
}

// BenchmarkRequestStats observes one label set from every core at once, the load of a server
// answering one route.
func BenchmarkRequestStats(b *testing.B) {
	var s requestStats
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.observe("key", "POST", 200, 300*time.Microsecond, true)
		}
	})
}

// TestStatusColumns checks that every status with a column maps to its own.
func TestStatusColumns(t *testing.T) {
	t.Parallel()
	for i, s := range statusSlots {
		if int(statusColumn[s]) != i+1 {
			t.Errorf("status %d maps to column %d, want %d (listed twice?)", s, statusColumn[s], i+1)
		}
	}
}
