package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// noCache checks the headers that keep image proxies from caching a badge.
func noCache(t *testing.T, r response) {
	t.Helper()
	for k, v := range map[string]string{"Cache-Control": "no-cache, no-store, must-revalidate, max-age=0", "Expires": "0", "Pragma": "no-cache"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if r.header.Get("ETag") == "" {
		t.Error("no ETag")
	}
}

func TestBadgeShieldsEndpoint(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	ts.must(t, "POST", "/ci/cov", `"87%"`)
	for _, tc := range []struct {
		path string
		want string // the JSON answer, compared as a map
	}{
		{"/site/views?badge&format=shields", `{"schemaVersion":1,"label":"views","message":"0","color":"blue"}`},
		{"/site/views?badge&format=shields&incr", `{"schemaVersion":1,"label":"views","message":"1","color":"blue"}`},
		{"/site/views?badge&format=shields&incr&label=page%20views&color=Green", `{"schemaVersion":1,"label":"page views","message":"2","color":"green"}`},
		{"/site/views?badge&format=shields&label=&color=%23ff0000&labelColor=abc", `{"schemaVersion":1,"label":"","message":"2","color":"ff0000","labelColor":"abc"}`},
		{"/ci/cov?badge&format=shields&labelColor=orange&style=flat-square", `{"schemaVersion":1,"label":"cov","message":"87%","color":"blue","labelColor":"orange"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := ts.do(t, "GET", tc.path, "")
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			noCache(t, r)
			var got, want map[string]any
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
				t.Fatalf("got %s\nwant %s", g, w)
			}
		})
	}
	if v := ts.must(t, "GET", "/site/views", "").body; v != "2" {
		t.Fatalf("/site/views = %s after two counted JSON badges", v)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBadgeStyles(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	for _, tc := range []struct {
		path            string
		square          bool
		labelFill, fill string
	}{
		{"/site/views?badge", false, "#555", "#007ec6"},
		{"/site/views?badge&style=flat&format=svg", false, "#555", "#007ec6"},
		{"/site/views?badge&style=flat-square", true, "#555", "#007ec6"},
		{"/site/views?badge&style=flat-square&labelColor=red&color=ABC", true, "#e05d44", "#ABC"},
		{"/site/views?badge&labelColor=%23123456", false, "#123456", "#007ec6"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := ts.do(t, "GET", tc.path, "")
			label, value, _ := parseBadge(t, r) // checks the cache headers too
			if label != "views" || value != "0" {
				t.Fatalf("label %q value %q", label, value)
			}
			body := r.body
			if square := !strings.Contains(body, `rx=`) && !strings.Contains(body, "linearGradient"); square != tc.square {
				t.Fatalf("square %v, want %v: %s", square, tc.square, body)
			}
			if !tc.square && (!strings.Contains(body, `rx="3"`) || !strings.Contains(body, `fill="url(#s)"`)) {
				t.Fatalf("flat badge without rounding or gradient: %s", body)
			}
			if !strings.Contains(body, `<rect width="`) || !strings.Contains(body, `height="20" fill="`+tc.labelFill+`"/><rect x="`) {
				t.Errorf("label colour %s: %s", tc.labelFill, body)
			}
			if !strings.Contains(body, `height="20" fill="`+tc.fill+`"/>`) {
				t.Errorf("colour %s: %s", tc.fill, body)
			}
		})
	}
}

func TestBadgeBadParameters(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{}, web.Config{})
	for _, tc := range []struct {
		path, code, names string
	}{
		{"/site/views?badge&style=plastic", "invalid_style", `"plastic"`},
		{"/site/views?badge&style=for-the-badge&format=shields", "invalid_style", `"for-the-badge"`},
		{"/site/views?badge&format=png", "invalid_format", `"png"`},
		{"/site/views?badge&format=shields&labelColor=url(x)", "invalid_color", "labelColor"},
		{"/site/views?badge&incr&color=nope", "invalid_color", `"nope"`},
		{"/site/views?badge&logo=github", "unknown_parameter", "logo"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := ts.do(t, "GET", tc.path, "")
			var e struct{ Error, Code string }
			if err := json.Unmarshal([]byte(r.body), &e); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if r.status != http.StatusBadRequest || e.Code != tc.code || !strings.Contains(e.Error, tc.names) {
				t.Fatalf("%d %s, want 400 %s naming %s", r.status, r.body, tc.code, tc.names)
			}
		})
	}
	fail("GET", "/site/views", "", http.StatusNotFound, "not_found").run(t, ts) // a refused badge counts nothing
}
