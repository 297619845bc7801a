package web

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/buildinfo"
)

// metrics are the server's Prometheus metrics, in a registry of its own (never the global one),
// served at /.metrics to holders of the metrics grant (admin on "/" implies it; the metrics token
// holds it alone). Names:
//
//	statehub_http_requests_total{route,method,code}     requests answered, by status code (promhttp's label)
//	statehub_http_request_duration_seconds{route}       latency, streams and sockets excluded
//	statehub_open_streams{transport}                    open SSE streams ("sse") and WebSockets ("ws")
//	statehub_limited_total{scope}                       requests refused by a limit: ip, token, conns
//	statehub_keys, statehub_seq, statehub_subscribers
//	statehub_slow_consumers_total                       subscriptions closed because their queue overflowed
//	statehub_history_events, statehub_history_capacity, statehub_history_floor_seq
//	statehub_wal_records_total, statehub_wal_bytes_total, statehub_wal_fsyncs_total,
//	statehub_wal_segments, statehub_wal_batch_records (records per fsync since start),
//	statehub_wal_failed, statehub_snapshots_total, statehub_wal_fsync_duration_seconds
//	statehub_build_info{version,commit,goversion}      always 1: which build is running (internal/buildinfo)
//
// plus the Go runtime's and the process's standard collectors.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // route, method, code
	latency  *prometheus.HistogramVec // route
	streams  *prometheus.GaugeVec
	limited  *prometheus.CounterVec
	// broadcasts counts the messages this node has accepted (Server.opBroadcast).
	broadcasts prometheus.Counter
	handler    http.Handler
}

// latencyBuckets are the upper bounds of the latency histogram, in seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(h *hub.Hub, log *slog.Logger) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statehub_http_requests_total", Help: "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "statehub_http_request_duration_seconds", Help: "Time to answer a request (streams and sockets excluded), by route.",
			Buckets: latencyBuckets,
		}, []string{"route"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "statehub_open_streams", Help: "Open SSE streams (sse) and WebSockets (ws).",
		}, []string{"transport"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statehub_limited_total", Help: "Requests refused by a limit: the per-IP rate (ip), the per-token rate (token), open streams and sockets (conns), a client's broadcast rate (broadcast).",
		}, []string{"scope"}),
		broadcasts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statehub_broadcasts_total", Help: "Broadcast messages accepted by this node (HTTP and WebSocket) and handed to subscribers.",
		}),
	}
	for _, t := range []string{"sse", "ws"} {
		m.streams.WithLabelValues(t)
	}
	for _, s := range []string{"ip", "token", "conns", "broadcast"} {
		m.limited.WithLabelValues(s)
	}
	build := buildinfo.Read()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "statehub_build_info", Help: "Always 1; its labels tell which build of Statehub is running.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.requests, m.latency, m.streams, m.limited, m.broadcasts, hubCollector{h}, buildInfo,
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(liveHeap)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}, ErrorHandling: promhttp.ContinueOnError})
	return m
}

// liveHeap adds go_gc_heap_live_bytes to the Go collector's default metrics: the heap the last
// collection found live, which is what the keys and the history take without the garbage that
// go_memstats_heap_alloc_bytes also counts.
var liveHeap = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", v) }

// serveMetrics answers GET /.metrics (the metrics grant).
func (s *Server) serveMetrics(c echo.Context) error {
	if err := s.authorize(c, auth.Metrics, "/"); err != nil {
		return err
	}
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}

// routeMetrics are the request metrics of the route registered at one path, their label sets
// looked up once, when New registers the route: an echo route's label is its path; the key route
// ("/*") has one each for a key ("key"), a subtree ("subtree") and a stream ("stream").
type routeMetrics struct {
	path                 routeLabel // an echo route's
	keyRoute             bool       // the key route: key, subtree and stream instead
	key, subtree, stream routeLabel
}

// routeLabel is the request metrics of one route label.
type routeLabel struct {
	requests *requestCounters
	latency  prometheus.Observer // nil for a label never timed (streams, the WebSocket)
}

func (m *metrics) route(path string) *routeMetrics {
	label := func(route string, timed bool) routeLabel {
		l := routeLabel{requests: &requestCounters{vec: m.requests.MustCurryWith(prometheus.Labels{"route": route})}}
		if timed {
			l.latency = m.latency.WithLabelValues(route)
		}
		return l
	}
	if path != "/*" {
		return &routeMetrics{path: label(path, path != "/.ws")}
	}
	return &routeMetrics{keyRoute: true, key: label("key", true), subtree: label("subtree", true), stream: label("stream", false)}
}

// of returns the label of a request of this route; kind is streamKind's for it.
func (rm *routeMetrics) of(c echo.Context, kind string) routeLabel {
	switch {
	case !rm.keyRoute:
		return rm.path
	case kind == "sse":
		return rm.stream
	case hub.IsPrefix(c.Request().URL.Path):
		return rm.subtree
	}
	return rm.key
}

// observe counts a request by method and status code and, when timed (not a stream), records its
// duration d.
func (l routeLabel) observe(method string, status int, d time.Duration, timed bool) {
	l.requests.inc(method, status)
	if timed {
		l.latency.Observe(d.Seconds())
	}
}

// requestCounters are the request counters of one route label by method and status code. Each
// label set is looked up in the vector on its first request and kept, so that a request costs
// a short scan instead of the vector's hashing, locking and the code's formatting
// (BenchmarkGetHandler).
type requestCounters struct {
	vec  *prometheus.CounterVec           // curried with the route: method, code
	mu   sync.Mutex                       // held to add to seen
	seen atomic.Pointer[[]requestCounter] // replaced by add, never changed in place
}

type requestCounter struct {
	method string // methodLabel's
	code   int
	c      prometheus.Counter
}

// inc counts a request of method answered with code.
func (rc *requestCounters) inc(method string, code int) {
	method = methodLabel(method)
	if seen := rc.seen.Load(); seen != nil {
		for _, k := range *seen {
			if k.code == code && k.method == method {
				k.c.Inc()
				return
			}
		}
	}
	rc.add(method, code).Inc()
}

// add looks the counter of method and code up in the vector and keeps it in seen. The label sets
// it keeps are the vector's own: one per method label and code answered.
func (rc *requestCounters) add(method string, code int) prometheus.Counter {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var seen []requestCounter
	if p := rc.seen.Load(); p != nil {
		seen = *p
	}
	for _, k := range seen { // added by another request since inc looked
		if k.code == code && k.method == method {
			return k.c
		}
	}
	c := rc.vec.WithLabelValues(method, strconv.Itoa(code))
	seen = append(slices.Clip(seen), requestCounter{method, code, c})
	rc.seen.Store(&seen)
	return c
}

// methodLabel is a request's method label: its method, or "other" for a method the API does not
// use, so that a client cannot make new label sets at will.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "other"
}

// observe records a request of the route rm once it is answered: it counts every request by
// route, method and status code, times those that are not streams, and logs each at debug level
// (errors at warn), with query tokens redacted. kind is streamKind's for the request; err is the
// handler's error, already answered by c.Error.
func (s *Server) observe(c echo.Context, rm *routeMetrics, kind string, start time.Time, err error) {
	r := c.Request()
	status := c.Response().Status
	d := time.Since(start)
	rm.of(c, kind).observe(r.Method, status, d, kind == "")
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []any{"method", r.Method, "uri", redactURI(r.URL), "status", status, "dur", d, "ip", c.RealIP()}
	if p, perr := s.principalOf(c); perr == nil {
		attrs = append(attrs, "who", p.String())
	}
	if err != nil {
		_, code, msg := classify(err)
		attrs = append(attrs, "code", code, "err", msg)
	}
	s.log.Log(r.Context(), level, "request", attrs...)
}

// redactURI is the request URI for logs, with the value of every query parameter that may hold a
// secret (secretParam) replaced by REDACTED. Parameters are split at "&" and at ";" (which
// net/url does not parse but a client may still send), and names are matched after unescaping and
// in any case, so ?TOKEN=, ?%74oken= and ?a=1;token= are redacted too. Everything else is kept as
// the client sent it.
func redactURI(u *url.URL) string {
	uri := u.RequestURI()
	if u.RawQuery == "" {
		return uri
	}
	path, _, _ := strings.Cut(uri, "?") // the escaped path holds no "?"
	return path + "?" + redactQuery(u.RawQuery)
}

// redactQuery redacts a raw query string (see redactURI).
func redactQuery(raw string) string {
	var b strings.Builder
	for raw != "" {
		i := strings.IndexAny(raw, "&;")
		part, sep := raw, ""
		if i >= 0 {
			part, sep = raw[:i], raw[i:i+1]
			raw = raw[i+1:]
		} else {
			raw = ""
		}
		plain := part
		if u, err := url.QueryUnescape(part); err == nil {
			plain = u // an escaped "=" still separates the name from a value that must not leak
		}
		if name, value, ok := strings.Cut(plain, "="); ok && value != "" && secretParam(name) {
			part = url.QueryEscape(name) + "=REDACTED"
		}
		b.WriteString(part)
		b.WriteString(sep)
	}
	return b.String()
}

// secretParam reports whether a query parameter of this name may hold a secret: token,
// access_token, secret, password, api_key, auth, X-Lock-Token and the like, in any case. No
// parameter of the API (key, ttl, owner, since, cursor, ...) matches, so their values stay
// readable in the logs.
func secretParam(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return unicode.ToLower(r)
	}, name)
	for _, s := range []string{"token", "secret", "passw", "pwd", "auth", "credential", "signature", "jwt", "bearer", "session", "cookie"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return n == "sig" || strings.HasSuffix(n, "key") // key, apikey, accesskey, privatekey; not keys
}

// hubCollector reads hub.Stats at each scrape.
type hubCollector struct{ h *hub.Hub }

var (
	descKeys        = prometheus.NewDesc("statehub_keys", "Keys in the tree.", nil, nil)
	descSeq         = prometheus.NewDesc("statehub_seq", "The last committed seq.", nil, nil)
	descSubscribers = prometheus.NewDesc("statehub_subscribers", "Open subscriptions (SSE streams and WebSocket subscriptions).", nil, nil)
	descSlow        = prometheus.NewDesc("statehub_slow_consumers_total", "Subscriptions closed because their queue overflowed.", nil, nil)
	descHistEvents  = prometheus.NewDesc("statehub_history_events", "Changes retained for resuming streams.", nil, nil)
	descHistCap     = prometheus.NewDesc("statehub_history_capacity", "The most changes retained for resuming streams.", nil, nil)
	descHistBytes   = prometheus.NewDesc("statehub_history_bytes", "Bytes of keys and values of the retained changes.", nil, nil)
	descHistFloor   = prometheus.NewDesc("statehub_history_floor_seq", "Seq of the newest change no longer retained; resuming from before it resets.", nil, nil)
	descWALRecords  = prometheus.NewDesc("statehub_wal_records_total", "Records appended to the log.", nil, nil)
	descWALBytes    = prometheus.NewDesc("statehub_wal_bytes_total", "Bytes written to the log.", nil, nil)
	descWALSyncs    = prometheus.NewDesc("statehub_wal_fsyncs_total", "Fsyncs of log segments (group commits).", nil, nil)
	descWALSegments = prometheus.NewDesc("statehub_wal_segments", "Log segment files on disk.", nil, nil)
	descWALBatch    = prometheus.NewDesc("statehub_wal_batch_records", "Records per fsync since start (the group-commit batch size); rate(records)/rate(fsyncs) gives it over a window.", nil, nil)
	descWALFailed   = prometheus.NewDesc("statehub_wal_failed", "1 when the log has failed and writes are refused.", nil, nil)
	descSnapshots   = prometheus.NewDesc("statehub_snapshots_total", "Snapshots written since start.", nil, nil)
	descFsync       = prometheus.NewDesc("statehub_wal_fsync_duration_seconds", "Time taken by fsyncs of data files.", nil, nil)
)

func (hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descKeys, descSeq, descSubscribers, descSlow, descHistEvents, descHistCap, descHistBytes, descHistFloor,
		descWALRecords, descWALBytes, descWALSyncs, descWALSegments, descWALBatch, descWALFailed, descSnapshots, descFsync} {
		ch <- d
	}
}

func (hc hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := hc.h.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(descKeys, float64(st.Keys))
	gauge(descSeq, float64(st.Seq))
	gauge(descSubscribers, float64(st.Subscribers))
	counter(descSlow, float64(st.SlowConsumers))
	gauge(descHistEvents, float64(st.HistoryEvents))
	gauge(descHistCap, float64(st.HistoryCapacity))
	gauge(descHistBytes, float64(st.HistoryBytes))
	gauge(descHistFloor, float64(st.HistoryFloor))
	if !st.Durable {
		return
	}
	counter(descWALRecords, float64(st.WAL.Records))
	counter(descWALBytes, float64(st.WAL.Bytes))
	counter(descWALSyncs, float64(st.WAL.Syncs))
	gauge(descWALSegments, float64(st.WAL.Segments))
	batch := 0.0
	if st.WAL.Syncs > 0 {
		batch = float64(st.WAL.Records) / float64(st.WAL.Syncs)
	}
	gauge(descWALBatch, batch)
	failed := 0.0
	if st.WAL.SyncErr != nil {
		failed = 1
	}
	gauge(descWALFailed, failed)
	counter(descSnapshots, float64(st.Snapshots))
	if f := st.Fsync; f != nil {
		ch <- prometheus.MustNewConstHistogram(descFsync, f.Count, f.Sum.Seconds(), f.Buckets)
	}
}
