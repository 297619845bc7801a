package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// TestClusterBroadcast: a broadcast through one node reaches the SSE and WebSocket subscribers of
// another node, in etcd's order with the changes around it (POST ?broadcast and the WebSocket op
// alike); it is never a change: a resume through either node replays the changes only, and a
// position taken right after a broadcast (a snapshot's ready, etcd's last revision being the
// broadcast's) resumes on the other node without a reset.
func TestClusterBroadcast(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 1)
	a, b := startNode(t, cl), startNode(t, cl)
	c := clusterClient()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	// On b: an SSE stream of the room and a WebSocket sub of one cursor.
	sse := readySSE(t, ctx, b.url, "/room/", "")
	ws, err := dialWS(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := wsSend(ctx, ws, map[string]any{"op": "sub", "id": 1, "path": "/room/1/cursor"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"answer", "ready"} {
		if m, err := wsRead(ctx, ws); err != nil || (want == "answer") != m.OK || (want == "ready") != (m.Type == "ready") {
			t.Fatalf("sub on b: %+v %v, want the %s", m, err, want)
		}
	}
	// Through a: a change, a broadcast over HTTP, one over a WebSocket to the room, a change.
	_, body := mustDo(t, c, http.MethodPost, a.url+"/room/1/cursor", nil, `1`, http.StatusOK)
	seq1 := writeSeq(t, body)
	if _, body := mustDo(t, c, http.MethodPost, a.url+"/room/1/cursor?broadcast", nil, `{"x": 10}`, http.StatusAccepted); string(body) != `{"ok":true}` {
		t.Fatalf("broadcast on a: %s", body)
	}
	wa, err := dialWS(ctx, a.url)
	if err != nil {
		t.Fatal(err)
	}
	defer wa.CloseNow()
	if err := wsSend(ctx, wa, map[string]any{"op": "broadcast", "id": 1, "path": "/room/", "msg": "hi"}); err != nil {
		t.Fatal(err)
	}
	if m, err := wsRead(ctx, wa); err != nil || !m.OK {
		t.Fatalf("broadcast over a's WebSocket: %+v %v", m, err)
	}
	_, body = mustDo(t, c, http.MethodPost, a.url+"/room/1/cursor", nil, `2`, http.StatusOK)
	seq2 := writeSeq(t, body)

	want := []sseEvent{
		{id: "/room/1/cursor:0:" + strconv.FormatUint(seq1, 10), data: "1"},
		{event: "broadcast", data: `{"path":"/room/1/cursor","msg":{"x":10}}`},
		{event: "broadcast", data: `{"path":"/room/","msg":"hi"}`},
		{id: "/room/1/cursor:1:" + strconv.FormatUint(seq2, 10), data: "2"},
	}
	for i, w := range want {
		if ev, err := sse.next(); err != nil || ev != w {
			t.Fatalf("SSE event %d on b: %+v %v, want %+v", i, ev, err, w)
		}
	}
	wantWS := []string{
		`{"sub":1,"type":"set","key":"/room/1/cursor","value":1,"revision":0,"seq":` + strconv.FormatUint(seq1, 10) + `}`,
		`{"sub":1,"type":"broadcast","path":"/room/1/cursor","msg":{"x":10}}`,
		`{"sub":1,"type":"set","key":"/room/1/cursor","value":2,"revision":1,"seq":` + strconv.FormatUint(seq2, 10) + `}`,
	}
	for i, w := range wantWS {
		_, got, err := ws.Read(ctx)
		if err != nil || string(got) != w {
			t.Fatalf("WebSocket event %d on b: %s %v, want %s", i, got, err, w)
		}
	}

	// Resumes replay the changes only, on either node.
	for _, n := range []*clusterNode{a, b} {
		r, err := openSSE(ctx, n.url, "/room/", "", "/room/1/cursor:0:"+strconv.FormatUint(seq1, 10))
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range []sseEvent{{id: "/room/1/cursor:1:" + strconv.FormatUint(seq2, 10), data: "2"}, {event: "ready"}} {
			ev, err := r.next()
			if ev.event == "ready" {
				ev.id, ev.data = "", ""
			}
			if err != nil || ev != w {
				t.Fatalf("resume on %s, event %d: %+v %v, want %+v", n.url, i, ev, err, w)
			}
		}
		r.close()
	}

	// A broadcast is etcd's last revision now: a snapshot on b starts at it, and a resume from
	// there on a neither resets nor waits for a change.
	mustDo(t, c, http.MethodPost, b.url+"/room/?broadcast", nil, `"last"`, http.StatusAccepted)
	snap, err := openSSE(ctx, b.url, "/room/", "snapshot", "")
	if err != nil {
		t.Fatal(err)
	}
	var ready sseEvent
	for ready.event != "ready" {
		if ready, err = snap.next(); err != nil {
			t.Fatal(err)
		}
	}
	snap.close()
	var pos struct{ Seq uint64 }
	if err := json.Unmarshal([]byte(ready.data), &pos); err != nil || pos.Seq <= seq2 {
		t.Fatalf("the snapshot after the broadcast is ready at %s, want after %d", ready.data, seq2)
	}
	r, err := openSSE(ctx, a.url, "/room/", "", ready.id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if ev, err := r.next(); err != nil || ev.event != "ready" || ev.id != ready.id {
		t.Fatalf("resume on a from the snapshot's ready %s: %+v %v, want ready at once", ready.id, ev, err)
	}
}
