package web

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestStats counts and times answered requests: statehub_http_requests_total{route,method,status}
// and statehub_http_request_duration_seconds{route}. It takes the place of a CounterVec and a
// HistogramVec because of the cost per request: those hash the label values into a map and take
// five atomic operations, one a float compare-and-swap loop, which under load from both cores was a
// measurable share of an increment (README, Performance). Here a request finds its counters by
// index: its route's table (one read of a map that changes only when a route is first seen), then
// the method's row and the status's column; a status outside statusSlots takes a map instead. It
// then takes two atomic adds; the scrape sums them into the client library's constant metrics.
//
// A label set's count is its untimed requests (streams) plus its timed ones, the sum of its
// buckets; a route's histogram sums the buckets of its label sets. Counts never go down; a
// scrape racing a request may count it without its duration in the sum.
type requestStats struct {
	mu     sync.Mutex                             // held to add a route
	routes atomic.Pointer[map[string]*routeStats] // replaced, never changed, when a route is added
}

// routeStats are the counters of one route label.
type routeStats struct {
	sets  [len(methodLabels)][len(statusSlots)]atomic.Pointer[requestStat] // nil until counted
	other sync.Map                                                         // methodStatus -> *requestStat
}

type methodStatus struct {
	method, status int
}

type requestStat struct {
	untimed atomic.Uint64
	nanos   atomic.Uint64                         // total duration of the timed requests
	buckets [len(latencyBounds) + 1]atomic.Uint64 // by the first bound at or above the duration; the last is +Inf
}

// methodLabels are the method label's values; any other method counts as "other", so that a
// client cannot make new label sets at will.
var methodLabels = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodOptions, http.MethodPatch, "other"}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodOptions:
		return 5
	case http.MethodPatch:
		return 6
	}
	return len(methodLabels) - 1
}

// statusSlots are the statuses Statehub answers, which have a column of their own.
var statusSlots = [...]int{101, 200, 201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405,
	408, 409, 410, 412, 413, 415, 416, 422, 423, 428, 429, 431, 500, 502, 503, 504}

// statusColumn maps a status below 600 to its column in statusSlots plus one; 0 for none.
var statusColumn = func() (c [600]uint8) {
	for i, s := range statusSlots {
		c[s] = uint8(i + 1)
	}
	return c
}()

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
	st := s.stat(route, methodIndex(method), status)
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

// stat returns the counters of a label set, made on first use.
func (s *requestStats) stat(route string, method, status int) *requestStat {
	var rs *routeStats
	if m := s.routes.Load(); m != nil {
		rs = (*m)[route]
	}
	if rs == nil {
		rs = s.addRoute(route)
	}
	if status >= 0 && status < len(statusColumn) && statusColumn[status] > 0 {
		p := &rs.sets[method][statusColumn[status]-1]
		if st := p.Load(); st != nil {
			return st
		}
		p.CompareAndSwap(nil, &requestStat{})
		return p.Load()
	}
	k := methodStatus{method, status}
	if v, ok := rs.other.Load(k); ok {
		return v.(*requestStat)
	}
	v, _ := rs.other.LoadOrStore(k, &requestStat{})
	return v.(*requestStat)
}

func (s *requestStats) addRoute(route string) *routeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.routes.Load()
	if old != nil {
		if rs := (*old)[route]; rs != nil {
			return rs
		}
	}
	m := make(map[string]*routeStats, 1)
	if old != nil {
		m = maps.Clone(*old)
	}
	rs := &routeStats{}
	m[route] = rs
	s.routes.Store(&m)
	return rs
}

// each calls f with every label set counted so far.
func (s *requestStats) each(f func(route string, method, status int, st *requestStat)) {
	m := s.routes.Load()
	if m == nil {
		return
	}
	for route, rs := range *m {
		for method := range rs.sets {
			for col := range rs.sets[method] {
				if st := rs.sets[method][col].Load(); st != nil {
					f(route, method, statusSlots[col], st)
				}
			}
		}
		rs.other.Range(func(k, v any) bool {
			ms := k.(methodStatus)
			f(route, ms.method, ms.status, v.(*requestStat))
			return true
		})
	}
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
	s.each(func(route string, method, status int, st *requestStat) {
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
			route, methodLabels[method], strconv.Itoa(status))
		if n == 0 {
			return
		}
		h := routes[route]
		if h == nil {
			h = &histogram{}
			routes[route] = h
		}
		h.count += n
		h.nanos += nanos
		var below uint64
		for i := range h.buckets {
			below += timed[i]
			h.buckets[i] += below
		}
	})
	for r, h := range routes {
		buckets := make(map[float64]uint64, len(latencyBuckets))
		for i, le := range latencyBuckets {
			buckets[le] = h.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, h.count, time.Duration(h.nanos).Seconds(), buckets, r)
	}
}
