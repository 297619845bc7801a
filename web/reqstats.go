package web

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestStats counts and times answered requests: statehub_http_requests_total{route,method,status}
// and statehub_http_request_duration_seconds{route}. It takes the place of a CounterVec and a
// HistogramVec because of the cost per request: those take five atomic operations on shared
// cache lines, one a float compare-and-swap loop, which under load from both cores was a
// measurable share of an increment (README, Performance). Here a request is two atomic adds on
// one label set's counters; the scrape sums them into the client library's constant metrics.
//
// A label set's count is its untimed requests (streams) plus its timed ones, the sum of its
// buckets; a route's histogram sums the buckets of its label sets. Counts never go down; a
// scrape racing a request may count it without its duration in the sum.
type requestStats struct {
	sets sync.Map // requestLabels -> *requestStat
}

type requestLabels struct {
	route, method string
	status        int
}

type requestStat struct {
	untimed atomic.Uint64
	nanos   atomic.Uint64                         // total duration of the timed requests
	buckets [len(latencyBounds) + 1]atomic.Uint64 // by the first bound at or above the duration; the last is +Inf
}

// latencyBuckets are the upper bounds of the latency histogram, in seconds.
var latencyBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// latencyBounds are latencyBuckets as durations, so that a request's is compared unconverted.
var latencyBounds = func() (b [len(latencyBuckets)]time.Duration) {
	for i, s := range latencyBuckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

var (
	descRequests = prometheus.NewDesc("statehub_http_requests_total", "HTTP requests answered, by route, method and status.",
		[]string{"route", "method", "status"}, nil)
	descLatency = prometheus.NewDesc("statehub_http_request_duration_seconds", "Time to answer a request (streams and sockets excluded), by route.",
		[]string{"route"}, nil)
)

// observe counts a request and, when timed (not a stream), records its duration d.
func (s *requestStats) observe(route, method string, status int, d time.Duration, timed bool) {
	k := requestLabels{route, method, status}
	v, ok := s.sets.Load(k)
	if !ok {
		v, _ = s.sets.LoadOrStore(k, &requestStat{})
	}
	st := v.(*requestStat)
	if !timed {
		st.untimed.Add(1)
		return
	}
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	st.buckets[i].Add(1)
	st.nanos.Add(uint64(max(d, 0)))
}

func (s *requestStats) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descLatency
}

func (s *requestStats) Collect(ch chan<- prometheus.Metric) {
	type histogram struct {
		count   uint64
		nanos   uint64
		buckets [len(latencyBounds)]uint64 // cumulative, as Prometheus has them
	}
	routes := map[string]*histogram{}
	s.sets.Range(func(k, v any) bool {
		labels, st := k.(requestLabels), v.(*requestStat)
		// The sum first: a request adds to its bucket before the sum, so every duration read
		// belongs to a request counted.
		nanos := st.nanos.Load()
		var timed [len(latencyBounds) + 1]uint64
		var n uint64
		for i := range st.buckets {
			timed[i] = st.buckets[i].Load()
			n += timed[i]
		}
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n+st.untimed.Load()),
			labels.route, labels.method, strconv.Itoa(labels.status))
		if n == 0 {
			return true
		}
		h := routes[labels.route]
		if h == nil {
			h = &histogram{}
			routes[labels.route] = h
		}
		h.count += n
		h.nanos += nanos
		var below uint64
		for i := range h.buckets {
			below += timed[i]
			h.buckets[i] += below
		}
		return true
	})
	for r, h := range routes {
		buckets := make(map[float64]uint64, len(latencyBuckets))
		for i, le := range latencyBuckets {
			buckets[le] = h.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, h.count, time.Duration(h.nanos).Seconds(), buckets, r)
	}
}
