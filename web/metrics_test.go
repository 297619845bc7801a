package web_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/internal/buildinfo"
	"github.com/statehub/statehub/web"
)

// scrape reads /.metrics with the headers hdr, by default with the admin token.
func scrape(t *testing.T, ts *testServer, hdr ...string) map[string]*dto.MetricFamily {
	t.Helper()
	if len(hdr) == 0 {
		hdr = bearer(testAdminToken)
	}
	r := ts.must(t, "GET", "/.metrics", "", hdr...)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parsing /.metrics: %v\n%s", err, r.body)
	}
	return fams
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no %s with labels %v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts, _ := authServer(t, "", nil)
	admin := bearer(testAdminToken)
	ts.must(t, "POST", "/a", `1`, admin...)
	ts.must(t, "POST", "/b", `2`, admin...)
	ts.do(t, "GET", "/nope", "", admin...)
	ts.do(t, "GET", "/a", "") // 401
	fams := scrape(t, ts, admin...)
	if got := value(t, fams, "statehub_http_requests_total", "route", "key", "method", "POST", "code", "200"); got != 2 {
		t.Fatalf("POST 200 count %v, want 2", got)
	}
	if got := value(t, fams, "statehub_http_requests_total", "route", "key", "method", "GET", "code", "401"); got != 1 {
		t.Fatalf("GET 401 count %v, want 1", got)
	}
	value(t, fams, "statehub_http_requests_total", "route", "key", "method", "GET", "code", "404")
	if got := value(t, fams, "statehub_http_request_duration_seconds", "route", "key"); got < 4 {
		t.Fatalf("latency samples %v, want at least 4", got)
	}
	if got := value(t, fams, "statehub_keys"); got != 2 {
		t.Fatalf("statehub_keys %v", got)
	}
	if got := value(t, fams, "statehub_seq"); got != 2 {
		t.Fatalf("statehub_seq %v", got)
	}
	if got := value(t, fams, "statehub_history_events"); got != 2 {
		t.Fatalf("statehub_history_events %v", got)
	}
	for _, name := range []string{"statehub_subscribers", "statehub_slow_consumers_total", "statehub_history_capacity", "statehub_history_bytes",
		"statehub_history_floor_seq", "go_goroutines"} {
		value(t, fams, name)
	}
	value(t, fams, "statehub_open_streams", "transport", "sse")
	value(t, fams, "statehub_open_streams", "transport", "ws")
	value(t, fams, "statehub_limited_total", "scope", "ip")
	if _, ok := fams["statehub_wal_records_total"]; ok {
		t.Fatal("a memory-only hub reports a log")
	}
}

func TestMetricsOfTheLog(t *testing.T) {
	t.Parallel()
	h, err := hub.Open(hub.Config{Logger: quiet}, hub.StoreConfig{Dir: t.TempDir(), Sync: wal.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(web.New(h, web.Config{Logger: quiet, Auth: protectedAuth(t)}).Handler())
	t.Cleanup(srv.Close)
	ts := &testServer{hub: h, srv: srv, client: srv.Client()}
	for range 3 {
		ts.must(t, "POST", "/k?incr", "")
	}
	fams := scrape(t, ts)
	if got := value(t, fams, "statehub_wal_records_total"); got != 3 {
		t.Fatalf("records %v, want 3", got)
	}
	if got := value(t, fams, "statehub_wal_fsyncs_total"); got < 1 {
		t.Fatalf("fsyncs %v", got)
	}
	if got := value(t, fams, "statehub_wal_fsync_duration_seconds"); got < 1 {
		t.Fatalf("fsync histogram has %v samples", got)
	}
	for _, name := range []string{"statehub_wal_bytes_total", "statehub_wal_segments", "statehub_wal_batch_records", "statehub_wal_failed", "statehub_snapshots_total"} {
		value(t, fams, name)
	}
}

// TestSlowConsumerCounted fills a subscriber's queue and checks the overflow is counted.
func TestSlowConsumerCounted(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{Logger: quiet, QueueSize: 1})
	t.Cleanup(func() { h.Close() })
	sub, err := h.Subscribe("/s/", hub.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range 3 {
		if _, err := h.Set("/s/k", []byte{'0' + byte(i)}, hub.Cond{}, hub.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if st := h.Stats(); st.SlowConsumers != 1 || st.Subscribers != 0 {
		t.Fatalf("Stats %+v, want one slow consumer and no subscriber left", st)
	}
}

func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	b := buildinfo.Read()
	fams := scrape(t, ts, bearer(testAdminToken)...)
	if got := value(t, fams, "statehub_build_info", "version", b.Version, "commit", b.Commit, "goversion", b.GoVersion); got != 1 {
		t.Fatalf("statehub_build_info %v, want 1", got)
	}
}
