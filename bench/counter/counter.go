package counter

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Handler counts every request and answers the new count as JSON: the bare yardstick.
func Handler() http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(strconv.AppendInt(nil, v, 10))
	})
}

// Like is the like-for-like yardstick: the same counter, answering with the headers Statehub
// puts on an increment (CORS, X-Revision, X-Seq, ETag) and counting and timing every request in
// Prometheus vectors of Statehub's names and labels, registered with reg, each label set looked
// up as Statehub looks it up. Serve it with web.NewHTTPServer, for Statehub's timeouts.
func Like(reg prometheus.Registerer) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statehub_http_requests_total", Help: "HTTP requests answered, by route, method and status.",
	}, []string{"route", "method", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "statehub_http_request_duration_seconds", Help: "Time to answer a request, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	reg.MustRegister(requests, latency)
	keyRequests := requests.MustCurryWith(prometheus.Labels{"route": "key"})
	keyLatency := latency.WithLabelValues("key")
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "*")
		v := n.Add(1)
		s := strconv.FormatInt(v, 10)
		h.Set("Content-Type", "application/json")
		h.Set("X-Revision", s)
		h.Set("X-Seq", s)
		h.Set("ETag", `"`+s+`"`)
		w.Write(strconv.AppendInt(nil, v, 10))
		keyRequests.WithLabelValues(r.Method, strconv.Itoa(http.StatusOK)).Inc()
		keyLatency.Observe(time.Since(start).Seconds())
	})
}
