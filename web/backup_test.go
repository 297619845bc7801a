package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// TestBackupHTTP: GET /.snapshot streams a self-contained backup; hub.Restore reads it straight
// from the response and the restored data directory serves the JSON keys and the stored files.
func TestBackupHTTP(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{MaxFileBytes: 4 << 20}, web.Config{})
	svg := "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>92%</text></svg>\n"
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	ts.must(t, "POST", "/ci/main/coverage", svg, "Content-Type", "image/svg+xml")
	ts.must(t, "PUT", "/big", big, "Content-Type", "application/octet-stream")
	ts.must(t, "PUT", "/j", `{"a":1}`)

	req, _ := http.NewRequest(http.MethodGet, ts.srv.URL+"/.snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /.snapshot: %d", res.StatusCode)
	}
	dir := t.TempDir()
	if _, err := hub.Restore(hub.StoreConfig{Dir: dir}, res.Body); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	h, err := hub.Open(hub.Config{Logger: quiet}, hub.StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for key, want := range map[string]string{"/ci/main/coverage": svg, "/big": big} {
		e, f, err := h.OpenFile(key)
		if err != nil || f == nil {
			t.Fatalf("OpenFile %s: %v, %v", key, f, err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != want {
			t.Errorf("%s: %d bytes (%v), want %d", key, len(b), err, len(want))
		}
		if key == "/big" && e.Type != "application/octet-stream" {
			t.Errorf("%s: content type %q", key, e.Type)
		}
	}
	if e, err := h.Get("/j"); err != nil || string(e.Value) != `{"a":1}` {
		t.Errorf("/j = %s, %v", e.Value, err)
	}
}
