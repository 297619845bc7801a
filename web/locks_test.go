package web_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

func lockAnswer(t *testing.T, r response) web.LockAnswer {
	t.Helper()
	var la web.LockAnswer
	if err := json.Unmarshal([]byte(r.body), &la); err != nil {
		t.Fatalf("lock answer %q: %v", r.body, err)
	}
	return la
}

func TestLockHTTP(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{})

	la := lockAnswer(t, ts.must(t, "POST", "/ci/deploy?lock&ttl=30s&owner=ci-7", ""))
	if la.Token == "" || la.Owner != "ci-7" || la.Fence == 0 || la.Expires != "2026-01-01T00:00:30Z" {
		t.Fatalf("lock answer %+v", la)
	}
	// The lock's state is the key's value; its token is not.
	r := ts.must(t, "GET", "/ci/deploy", "")
	if strings.Contains(r.body, la.Token) || r.body != `{"owner":"ci-7","fence":`+strconv.FormatUint(la.Fence, 10)+`,"expires":"2026-01-01T00:00:30Z"}` {
		t.Fatalf("lock value %s", r.body)
	}
	// Held: 409 with owner and expiry.
	r = ts.do(t, "POST", "/ci/deploy?lock&owner=other", "")
	eb := errorBody(t, r)
	if r.status != http.StatusConflict || eb.Code != "locked" || eb.Owner == nil || *eb.Owner != "ci-7" || eb.Expires != "2026-01-01T00:00:30Z" {
		t.Fatalf("held lock: %d %s", r.status, r.body)
	}
	for _, s := range []step{
		fail("POST", "/ci/deploy", `1`, http.StatusConflict, "locked"),
		fail("DELETE", "/ci/deploy", "", http.StatusConflict, "locked"),
		fail("POST", "/ci/deploy?lock&renew", "", http.StatusBadRequest, "lock_token_required"),
		fail("POST", "/ci/deploy?lock&renew", "", http.StatusForbidden, "lock_token", "X-Lock-Token", "nope"),
		fail("DELETE", "/ci/deploy?lock", "", http.StatusForbidden, "lock_token", "X-Lock-Token", "nope"),
		fail("POST", "/ci/deploy?lock&ttl=-1s", "", http.StatusBadRequest, "invalid_ttl"),
		fail("POST", "/ci/deploy?lock&wait=soon", "", http.StatusBadRequest, "invalid_wait"),
		fail("POST", "/plain?lock", "", http.StatusConflict, "not_a_lock"),
	} {
		if s.path == "/plain?lock" {
			ts.must(t, "POST", "/plain", `1`)
		}
		s.run(t, ts)
	}
	clock.Advance(20 * time.Second)
	rn := lockAnswer(t, ts.must(t, "POST", "/ci/deploy?lock&renew&ttl=1m", "", "X-Lock-Token", la.Token))
	if rn.Fence != la.Fence || rn.Expires != "2026-01-01T00:01:20Z" {
		t.Fatalf("renewed %+v", rn)
	}
	ts.must(t, "DELETE", "/ci/deploy?lock", "", "X-Lock-Token", la.Token)
	fail("DELETE", "/ci/deploy?lock", "", http.StatusNotFound, "not_found", "X-Lock-Token", la.Token).run(t, ts)

	// Expiry on the hub's clock, with the default TTL of an hour.
	la2 := lockAnswer(t, ts.must(t, "POST", "/ci/deploy?lock", ""))
	if la2.Fence <= la.Fence {
		t.Fatalf("fence %d after %d", la2.Fence, la.Fence)
	}
	clock.Advance(59 * time.Minute)
	ts.must(t, "GET", "/ci/deploy", "")
	clock.Advance(time.Minute)
	fail("GET", "/ci/deploy", "", http.StatusNotFound, "not_found").run(t, ts)
}

func TestLockHTTPWait(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{MaxLockWait: time.Millisecond})
	la := lockAnswer(t, ts.must(t, "POST", "/w?lock&owner=a", ""))
	// The wait is capped by MaxLockWait, so this gives up at once.
	r := ts.do(t, "POST", "/w?lock&wait=1h", "")
	if eb := errorBody(t, r); r.status != http.StatusConflict || eb.Code != "locked" {
		t.Fatalf("capped wait: %d %s", r.status, r.body)
	}

	ts2 := newServer(t, hub.Config{Clock: fakeclock.New(time.Now())}, web.Config{})
	la = lockAnswer(t, ts2.must(t, "POST", "/w?lock&owner=a", ""))
	got := make(chan response, 1)
	go func() { got <- ts2.do(t, "POST", "/w?lock&wait=60s&owner=b", "") }()
	// Whether b is already waiting or not, it gets the lock once a releases it.
	ts2.must(t, "DELETE", "/w?lock", "", "X-Lock-Token", la.Token)
	r = <-got
	if r.status != http.StatusOK || lockAnswer(t, r).Owner != "b" {
		t.Fatalf("waiter: %d %s", r.status, r.body)
	}
}

// armClock is a fake clock that reports each timer armed, so a test knows that a request has
// started waiting before it acts.
type armClock struct {
	*fakeclock.Clock
	armed chan time.Duration
}

func (c armClock) AfterFunc(d time.Duration, f func()) func() bool {
	stop := c.Clock.AfterFunc(d, f)
	c.armed <- d // buffered far beyond what a test arms
	return stop
}

func (c armClock) awaitArmed(d time.Duration) {
	for got := range c.armed {
		if got == d {
			return
		}
	}
}

// TestLockHTTPWaitShutdown: a lock request waiting for a held lock is answered 503 with
// Retry-After as soon as the shutdown starts (hub.Drain), not when its wait or the server's
// shutdown timeout runs out; a wait asked for during the shutdown is 503 at once.
func TestLockHTTPWaitShutdown(t *testing.T) {
	t.Parallel()
	clock := armClock{fakeclock.New(time.Now()), make(chan time.Duration, 1024)}
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{MaxLockWait: time.Hour})
	ts.must(t, "POST", "/w?lock&owner=a", "")
	got := make(chan response, 1)
	go func() { got <- ts.do(t, "POST", "/w?lock&wait=50m&owner=b", "") }()
	clock.awaitArmed(50 * time.Minute) // b waits; the fake clock never ends the wait by itself
	ts.hub.Drain()
	for _, r := range []response{<-got, ts.do(t, "POST", "/w?lock&wait=10s&owner=c", "")} {
		if eb := errorBody(t, r); r.status != http.StatusServiceUnavailable || eb.Code != "unavailable" || r.header.Get("Retry-After") == "" {
			t.Fatalf("lock wait at shutdown: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
		}
	}
}

// TestLockHTTPMutualExclusion: many clients, one holder at a time, fences strictly increasing.
func TestLockHTTPMutualExclusion(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{Clock: fakeclock.New(time.Now())}, web.Config{}) // waits never time out
	const clients, rounds = 8, 5
	var holders atomic.Int32
	var mu sync.Mutex
	var fences []uint64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range rounds {
				r := ts.do(t, "POST", "/mutex?lock&wait=60s", "")
				if r.status != http.StatusOK {
					t.Errorf("lock: %d %s", r.status, r.body)
					return
				}
				la := lockAnswer(t, r)
				if n := holders.Add(1); n != 1 {
					t.Errorf("%d holders", n)
				}
				mu.Lock()
				fences = append(fences, la.Fence)
				mu.Unlock()
				holders.Add(-1)
				if r := ts.do(t, "DELETE", "/mutex?lock", "", "X-Lock-Token", la.Token); r.status != http.StatusOK {
					t.Errorf("unlock: %d %s", r.status, r.body)
				}
			}
		})
	}
	wg.Wait()
	if len(fences) != clients*rounds {
		t.Fatalf("%d acquisitions", len(fences))
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fence %d after %d", fences[i], fences[i-1])
		}
	}
}

// svgBadge is the part of a badge the tests look at.
type svgBadge struct {
	XMLName xml.Name `xml:"svg"`
	Width   int      `xml:"width,attr"`
	Title   string   `xml:"title"`
	Texts   []struct {
		ID   string `xml:"id,attr"`
		Text string `xml:",chardata"`
	} `xml:"g>text"`
}

func parseBadge(t *testing.T, r response) (label, value string, width int) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("badge: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "image/svg+xml") {
		t.Fatalf("Content-Type %q", ct)
	}
	for k, v := range map[string]string{"Cache-Control": "no-cache, no-store, must-revalidate, max-age=0", "Expires": "0", "Pragma": "no-cache"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	var b svgBadge
	if err := xml.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatalf("badge is not XML: %v\n%s", err, r.body)
	}
	for _, tx := range b.Texts {
		switch tx.ID {
		case "label":
			label = tx.Text
		case "value":
			value = tx.Text
		}
	}
	return label, value, b.Width
}

func TestBadge(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	label, value, w0 := parseBadge(t, ts.do(t, "GET", "/site/views?badge", ""))
	if label != "views" || value != "0" {
		t.Fatalf("absent key: label %q value %q", label, value)
	}
	r1 := ts.do(t, "GET", "/site/views?badge&incr&label=page%20views&color=green", "")
	_, value, _ = parseBadge(t, r1)
	r2 := ts.do(t, "GET", "/site/views?badge&incr&label=page%20views&color=green", "")
	label, value2, _ := parseBadge(t, r2)
	if value != "1" || value2 != "2" || label != "page views" {
		t.Fatalf("counted badge: %q then %q, label %q", value, value2, label)
	}
	if r1.header.Get("ETag") == "" || r1.header.Get("ETag") == r2.header.Get("ETag") {
		t.Fatalf("ETags %q and %q are not fresh", r1.header.Get("ETag"), r2.header.Get("ETag"))
	}
	if !strings.Contains(r2.body, `fill="#97ca00"`) {
		t.Errorf("green badge %s", r2.body)
	}
	ts.must(t, "GET", "/site/views", "") // the count is a plain integer key
	if v := ts.must(t, "GET", "/site/views", "").body; v != "2" {
		t.Fatalf("/site/views = %s", v)
	}

	ts.must(t, "POST", "/cov", `"<b>87% & \"rising\"</b>"`)
	_, value, w1 := parseBadge(t, ts.do(t, "GET", "/cov?badge&color=ff0000", ""))
	if value != `<b>87% & "rising"</b>` {
		t.Fatalf("escaped value %q", value)
	}
	if w1 <= w0 {
		t.Fatalf("a longer value gives width %d, the short one %d", w1, w0)
	}
	ts.must(t, "POST", "/cov", `{"a":1}`)
	if _, value, _ = parseBadge(t, ts.do(t, "GET", "/cov?badge", "")); value != `{"a":1}` {
		t.Fatalf("object value %q", value)
	}
	fail("GET", "/cov?badge&color=url(x)", "", http.StatusBadRequest, "invalid_color").run(t, ts)
	fail("GET", "/cov?badge&incr", "", http.StatusConflict, "not_integer").run(t, ts)
}

func TestClickRedirect(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	noFollow := *ts.client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) *http.Response {
		res, err := noFollow.Get(ts.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	ts.must(t, "POST", "/links/docs", `{"url":"https://example.com/docs?x=1#top","title":"Docs"}`)
	for i := 1; i <= 2; i++ {
		res := get("/links/docs?go=https://evil.example/")
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://example.com/docs?x=1#top" {
			t.Fatalf("redirect: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if v := ts.must(t, "GET", "/links/docs/clicks", "").body; v != strconv.Itoa(i) {
			t.Fatalf("clicks = %s after %d", v, i)
		}
	}
	ts.must(t, "POST", "/links/js", `{"url":"javascript:alert(1)"}`)
	ts.must(t, "POST", "/links/rel", `{"url":"//evil.example/"}`)
	ts.must(t, "POST", "/links/none", `{"href":"https://example.com/"}`)
	for _, s := range []step{
		fail("GET", "/links/js?go", "", http.StatusUnprocessableEntity, "invalid_url"),
		fail("GET", "/links/rel?go", "", http.StatusUnprocessableEntity, "invalid_url"),
		fail("GET", "/links/none?go", "", http.StatusNotFound, "no_url"),
		fail("GET", "/links/absent?go", "", http.StatusNotFound, "not_found"),
	} {
		s.run(t, ts)
	}
	fail("GET", "/links/js/clicks", "", http.StatusNotFound, "not_found").run(t, ts)
}
