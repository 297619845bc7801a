package web_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/hubtest"
	"github.com/statehub/statehub/web"
)

// TestHealthReportsAFailedStore: /.health answers 200 while the store takes writes and 503 once
// its journal has failed, so a load balancer takes the node out.
func TestHealthReportsAFailedStore(t *testing.T) {
	t.Parallel()
	j := hubtest.NewGateJournal()
	ts := newServer(t, hub.Config{Journal: j}, web.Config{})
	if r := ts.do(t, "GET", "/.health", ""); r.status != http.StatusOK {
		t.Fatalf("/.health of a working store: %d %s", r.status, r.body)
	}
	j.Release <- errors.New("disk on fire")
	if r := ts.do(t, "POST", "/k", `1`); r.status != http.StatusServiceUnavailable {
		t.Fatalf("write with a failing journal: %d %s", r.status, r.body)
	}
	r := ts.do(t, "GET", "/.health", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `"status":"unavailable"`) {
		t.Fatalf("/.health after the journal failed: %d %s, want 503 unavailable", r.status, r.body)
	}
}
