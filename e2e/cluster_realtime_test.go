package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestClusterThrottleFenceHistory: the realtime features across nodes of a cluster. A throttled
// stream on one node of writes made through another gets a few events ending with the last value
// (an unthrottled one all of them); a write fenced by a lock taken through one node is refused
// through another once the lock was taken again; a node started after a key's changes (and
// holding 2 changes of its own history) reads their history back from etcd, with times.
func TestClusterThrottleFenceHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 1)
	a, b := startNode(t, cl), startNode(t, cl)
	c := clusterClient()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	// Throttle: 200 writes through a, two streams on b.
	const n, every = 200, 300 * time.Millisecond
	slow := readySSE(t, ctx, b.url, "/t/k", "throttle="+every.String())
	all := readySSE(t, ctx, b.url, "/t/k", "")
	start := time.Now()
	for i := 1; i <= n; i++ {
		mustDo(t, c, http.MethodPost, a.url+"/t/k", nil, strconv.Itoa(i), http.StatusOK)
	}
	for i := 1; i <= n; i++ {
		ev, err := all.next()
		if err != nil || ev.data != strconv.Itoa(i) {
			t.Fatalf("unthrottled event %d: %+v, %v", i, ev, err)
		}
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != strconv.Itoa(n) {
		ev, err := slow.next()
		if err != nil {
			t.Fatalf("throttled stream after %d events: %v", len(got), err)
		}
		got = append(got, ev.data)
	}
	elapsed := time.Since(start)
	if bound := int(elapsed/every) + 1; len(got) > bound {
		t.Fatalf("throttled stream: %d events in %v, at most %d", len(got), elapsed, bound)
	}
	t.Logf("throttled: %d events in %v", len(got), elapsed)

	// Fence: the lock through a, its fenced write through b; taken again through b, the old
	// fence is refused through a.
	lock := func(node *clusterNode) (fence uint64, token string) {
		_, body := mustDo(t, c, http.MethodPost, node.url+"/locks/deploy?lock&ttl=1m", nil, "", http.StatusOK)
		var l struct {
			Fence uint64
			Token string
		}
		json.Unmarshal(body, &l)
		return l.Fence, l.Token
	}
	fence, token := lock(a)
	ifFence := func(f uint64) http.Header {
		return http.Header{"If-Fence": {fmt.Sprintf("%d; lock=/locks/deploy", f)}}
	}
	mustDo(t, c, http.MethodPut, b.url+"/release/current", ifFence(fence), `"v1"`, http.StatusOK)
	mustDo(t, c, http.MethodDelete, a.url+"/locks/deploy?lock", http.Header{"X-Lock-Token": {token}}, "", http.StatusOK)
	next, _ := lock(b)
	_, body := mustDo(t, c, http.MethodPut, a.url+"/release/current", ifFence(fence), `"late"`, http.StatusConflict)
	var e struct{ Code, Key string }
	if json.Unmarshal(body, &e); e.Code != "fence_stale" || e.Key != "/locks/deploy" {
		t.Fatalf("a stale fence through the other node: %s", body)
	}
	mustDo(t, c, http.MethodPut, a.url+"/release/current", ifFence(next), `"v2"`, http.StatusOK)

	// History: a node started now, keeping 2 changes, reads the 200 of /t/k back from etcd.
	late := startNode(t, cl, "-history", "2")
	type entry struct {
		Revision int64
		Seq      uint64
		Time     string
		Value    json.RawMessage
	}
	var entries []entry
	for _, body := range getPages(t, c, late.url+"/t/k?history&limit=64") {
		var page struct{ Entries []entry }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, page.Entries...)
	}
	if len(entries) != n {
		t.Fatalf("history on a late node: %d entries, want %d", len(entries), n)
	}
	for i, e := range entries {
		at, err := time.Parse(time.RFC3339Nano, e.Time)
		if string(e.Value) != strconv.Itoa(n-i) || e.Revision != int64(n-1-i) || err != nil || at.Before(start.Add(-time.Minute)) {
			t.Fatalf("entry %d: %+v (%v)", i, e, err)
		}
	}
}
