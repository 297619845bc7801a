package e2e

// The cluster tests: a three-member etcd cluster and two or three Statehub nodes (-store etcd), all
// real processes on loopback (harness in etcdcluster_test.go). Each test starts its own cluster,
// so a member or node it kills disturbs no other test.
//
//	go test -count=1 -run Cluster ./e2e/

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/coder/websocket"
)

// clusterDeadline bounds every wait of a cluster test: a guard against a hang, never an assertion
// about speed.
const clusterDeadline = 60 * time.Second

func clusterClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: time.Minute}
}

// mustDo makes a request that must be answered with want.
func mustDo(t *testing.T, c *http.Client, method, url string, hdr http.Header, body string, want int) (http.Header, []byte) {
	t.Helper()
	status, h, b, err := crashDo(context.Background(), c, method, url, hdr, []byte(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, status, b, want)
	}
	return h, b
}

// getPages GETs url (a listing or a history read, with a query) and the pages after it, following
// each page's cursor until a page has none, and returns the pages' bodies in order.
func getPages(t *testing.T, c *http.Client, url string) [][]byte {
	t.Helper()
	var pages [][]byte
	for cursor := ""; ; {
		u := url
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		_, body := mustDo(t, c, http.MethodGet, u, nil, "", http.StatusOK)
		pages = append(pages, body)
		var page struct{ Cursor string }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if cursor = page.Cursor; cursor == "" {
			return pages
		}
	}
}

// writeSeq is the seq a write's answer gives.
func writeSeq(t *testing.T, b []byte) uint64 {
	t.Helper()
	var r struct{ Seq uint64 }
	if err := json.Unmarshal(b, &r); err != nil || r.Seq == 0 {
		t.Fatalf("write answered %s, want a seq", b)
	}
	return r.Seq
}

// TestClusterWritesReadOnOtherNodes: what one node writes another reads, at the seq the write
// answered: a GET (value, X-Revision, X-Seq), a listing, a ?snapshot stream, and a live stream
// opened on the other node before the writes.
func TestClusterWritesReadOnOtherNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	a, b := startNode(t, cl), startNode(t, cl)
	c := clusterClient()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	live := readySSE(t, ctx, b.url, "/rw/", "")

	_, body := mustDo(t, c, http.MethodPost, a.url+"/rw/x", nil, `{"n": 1}`, http.StatusOK)
	seqX := writeSeq(t, body)
	_, body = mustDo(t, c, http.MethodPut, a.url+"/rw/x", http.Header{"X-Revision": {"1"}}, `{"n": 2}`, http.StatusOK)
	seqX2 := writeSeq(t, body)
	h, body := mustDo(t, c, http.MethodPost, a.url+"/rw/y?incr=5", nil, "", http.StatusOK)
	seqY, _ := strconv.ParseUint(h.Get("X-Seq"), 10, 64)
	_, body2 := mustDo(t, c, http.MethodPost, a.url+"/rw/z", nil, `"gone"`, http.StatusOK)
	_, body3 := mustDo(t, c, http.MethodDelete, a.url+"/rw/z", nil, "", http.StatusOK)
	seqZ, seqDel := writeSeq(t, body2), writeSeq(t, body3)
	if string(body) != "5" || !(seqX < seqX2 && seqX2 < seqY && seqY < seqZ && seqZ < seqDel) {
		t.Fatalf("incr answered %s; seqs %d %d %d %d %d, want increasing", body, seqX, seqX2, seqY, seqZ, seqDel)
	}

	// GET through b: the value, its revision and the seq a wrote it at.
	h, body = mustDo(t, c, http.MethodGet, b.url+"/rw/x", nil, "", http.StatusOK)
	if string(body) != `{"n":2}` || h.Get("X-Revision") != "1" || h.Get("X-Seq") != strconv.FormatUint(seqX2, 10) {
		t.Errorf("GET /rw/x on b: %s revision %s seq %s, want {\"n\":2} revision 1 seq %d", body, h.Get("X-Revision"), h.Get("X-Seq"), seqX2)
	}
	mustDo(t, c, http.MethodGet, b.url+"/rw/z", nil, "", http.StatusNotFound)
	// A CAS through b against the revision a wrote.
	mustDo(t, c, http.MethodPut, b.url+"/rw/x", http.Header{"X-Revision": {"1"}}, `{"n": 3}`, http.StatusConflict)

	// The listing through b.
	_, body = mustDo(t, c, http.MethodGet, b.url+"/rw/", nil, "", http.StatusOK)
	var page struct {
		Entries []struct {
			Key      string
			Value    json.RawMessage
			Revision int64
			Seq      uint64
		}
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, e := range page.Entries {
		got += fmt.Sprintf("%s=%s@%d/%d ", e.Key, e.Value, e.Revision, e.Seq)
	}
	if want := fmt.Sprintf("/rw/x={\"n\":2}@1/%d /rw/y=5@0/%d ", seqX2, seqY); got != want {
		t.Errorf("listing on b: %s, want %s", got, want)
	}

	// A ?snapshot stream through b: the entries, then ready at or after the last write.
	snap, err := openSSE(ctx, b.url, "/rw/", "snapshot", "")
	if err != nil {
		t.Fatal(err)
	}
	defer snap.close()
	got = ""
	for {
		ev, err := snap.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.event == "ready" {
			if s, _ := strconv.ParseUint(ev.id, 10, 64); s < seqDel {
				t.Errorf("snapshot on b is ready at seq %d, before the last write's %d", s, seqDel)
			}
			break
		}
		key, _, seq, isSnap, err := ev.change()
		if err != nil || !isSnap {
			t.Fatalf("snapshot entry %v: %v", ev, err)
		}
		got += fmt.Sprintf("%s=%s/%d ", key, ev.data, seq)
	}
	if want := fmt.Sprintf("/rw/x={\"n\":2}/%d /rw/y=5/%d ", seqX2, seqY); got != want {
		t.Errorf("snapshot on b: %s, want %s", got, want)
	}

	// The live stream on b saw every change a made, in order, at the seqs a answered.
	want := []string{
		fmt.Sprintf("/rw/x:0:%d {\"n\":1}", seqX), fmt.Sprintf("/rw/x:1:%d {\"n\":2}", seqX2),
		fmt.Sprintf("/rw/y:0:%d 5", seqY), fmt.Sprintf("/rw/z:0:%d \"gone\"", seqZ), fmt.Sprintf("delete /rw/z:1:%d null", seqDel),
	}
	for _, w := range want {
		ev, err := live.next()
		if err != nil {
			t.Fatal(err)
		}
		g := ev.id + " " + ev.data
		if ev.event != "" {
			g = ev.event + " " + g
		}
		if g != w {
			t.Errorf("stream on b: %q, want %q", g, w)
		}
	}
}

// moverWriters and the rest size TestClusterStreamsMoveBetweenNodes.
const (
	moverWriters     = 3
	moverWrites      = 150 // per writer, to a key of its own: values 1..moverWrites
	moverSSE         = 4
	moverWS          = 2
	moverMaxPerVisit = 40 // a subscriber moves after 1..this many events
)

// moverCheck is what one subscriber has seen: every writer key's values must arrive as 1, 2, 3...
// exactly once each, and positions must only grow.
type moverCheck struct {
	name    string
	last    map[string]int64
	lastSeq uint64
	lastKey string
	moves   int
	events  int
}

// see checks one change; it returns an error for a loss, a repeat or a position out of order.
func (m *moverCheck) see(key string, seq uint64, data string) error {
	if seq < m.lastSeq || seq == m.lastSeq && key <= m.lastKey {
		return fmt.Errorf("%s: %s at seq %d after %s at seq %d: out of order or repeated", m.name, key, seq, m.lastKey, m.lastSeq)
	}
	m.lastSeq, m.lastKey = seq, key
	v, err := strconv.ParseInt(data, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %s = %q", m.name, key, data)
	}
	if v != m.last[key]+1 {
		return fmt.Errorf("%s: %s went from %d to %d after %d moves: lost or repeated", m.name, key, m.last[key], v, m.moves)
	}
	m.last[key] = v
	m.events++
	return nil
}

func (m *moverCheck) complete() bool {
	for w := range moverWriters {
		if m.last[fmt.Sprintf("/move/w%d", w)] < moverWrites {
			return false
		}
	}
	return true
}

// TestClusterStreamsMoveBetweenNodes: SSE and WebSocket subscribers that hop between nodes at
// random, each time resuming from their last position (SSE: Last-Event-ID or ?since; WebSocket:
// since), lose and repeat nothing while writers write through every node: each writer's values
// arrive 1, 2, 3... and positions only grow, with no reset.
func TestClusterStreamsMoveBetweenNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	nodes := []*clusterNode{startNode(t, cl), startNode(t, cl), startNode(t, cl)}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	var subs sync.WaitGroup
	started := make(chan struct{}, moverSSE+moverWS)
	for i := range moverSSE + moverWS {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		m := &moverCheck{name: fmt.Sprintf("sse%d", i), last: map[string]int64{}}
		run := moveSSE
		if i >= moverSSE {
			m.name, run = fmt.Sprintf("ws%d", i-moverSSE), moveWS
		}
		subs.Go(func() {
			if err := run(ctx, nodes, m, rng, started); err != nil && ctx.Err() == nil {
				t.Error(err) // the first failure; the others only see the cancellation
				cancel()
			}
			t.Logf("%s: %d events over %d moves", m.name, m.events, m.moves)
		})
	}
	for range moverSSE + moverWS {
		<-started // every subscriber is subscribed before the first write
	}

	var writers sync.WaitGroup
	for w := range moverWriters {
		rng := rand.New(rand.NewPCG(seed, uint64(100+w)))
		writers.Go(func() {
			c := clusterClient()
			defer c.CloseIdleConnections()
			for v := 1; v <= moverWrites && ctx.Err() == nil; v++ {
				n := nodes[rng.IntN(len(nodes))]
				status, _, b, err := crashDo(ctx, c, http.MethodPost, fmt.Sprintf("%s/move/w%d", n.url, w), nil, []byte(strconv.Itoa(v)))
				if (err != nil || status != http.StatusOK) && ctx.Err() == nil {
					t.Errorf("writer %d, value %d through %s: %d %s %v", w, v, n.url, status, b, err)
					cancel()
				}
				if err != nil || status != http.StatusOK {
					return
				}
			}
		})
	}
	writers.Wait()
	subs.Wait()
}

// moveSSE follows /move/ over SSE, moving to a random node after a random number of events,
// resuming with Last-Event-ID or ?since, until it has seen every write.
func moveSSE(ctx context.Context, nodes []*clusterNode, m *moverCheck, rng *rand.Rand, started chan<- struct{}) error {
	last := ""
	for first := true; !m.complete(); first = false {
		n := nodes[rng.IntN(len(nodes))]
		header, query := last, ""
		if rng.IntN(2) == 0 && last != "" {
			header, query = "", "since="+last
		}
		s, err := openSSE(ctx, n.url, "/move/", query, header)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		visit := 1 + rng.IntN(moverMaxPerVisit)
		for seen := 0; seen < visit && !m.complete(); {
			ev, err := s.next()
			if err != nil {
				s.close()
				return fmt.Errorf("%s: reading the stream from %s: %w", m.name, n.url, err)
			}
			switch ev.event {
			case "ready":
				last = ev.id
				if first {
					started <- struct{}{}
				}
			case "reset":
				s.close()
				return fmt.Errorf("%s: a reset resuming from %q on %s after %d moves", m.name, last, n.url, m.moves)
			case "close": // the node ends the stream (e.g. unavailable): resume elsewhere
				seen = visit
			case "":
				key, _, seq, _, err := ev.change()
				if err == nil {
					err = m.see(key, seq, ev.data)
				}
				if err != nil {
					s.close()
					return err
				}
				last = ev.id
				seen++
			default:
				s.close()
				return fmt.Errorf("%s: unexpected event %v", m.name, ev)
			}
		}
		s.close()
		m.moves++
	}
	return nil
}

// moveWS is moveSSE over WebSockets: a sub with since on a new connection to a random node.
func moveWS(ctx context.Context, nodes []*clusterNode, m *moverCheck, rng *rand.Rand, started chan<- struct{}) error {
	last := ""
	for first := true; !m.complete(); first = false {
		n := nodes[rng.IntN(len(nodes))]
		c, err := dialWS(ctx, n.url)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		sub := map[string]any{"op": "sub", "id": 1, "path": "/move/"}
		if last != "" {
			sub["since"] = last
		}
		if err := wsSend(ctx, c, sub); err != nil {
			c.CloseNow()
			return fmt.Errorf("%s: %w", m.name, err)
		}
		visit := 1 + rng.IntN(moverMaxPerVisit)
		for seen := 0; seen < visit && !m.complete(); {
			msg, err := wsRead(ctx, c)
			if err != nil {
				c.CloseNow()
				return fmt.Errorf("%s: reading the socket of %s: %w", m.name, n.url, err)
			}
			switch {
			case msg.Sub == nil: // the sub's answer
				if !msg.OK {
					c.CloseNow()
					return fmt.Errorf("%s: sub on %s: %s %s", m.name, n.url, msg.Code, msg.Error)
				}
			case msg.Type == "ready":
				last = msg.position()
				if first {
					started <- struct{}{}
				}
			case msg.Type == "reset":
				c.CloseNow()
				return fmt.Errorf("%s: a reset resuming from %q on %s after %d moves", m.name, last, n.url, m.moves)
			case msg.Type == "close":
				seen = visit
			case msg.Type == "set":
				if err := m.see(msg.Key, msg.Seq, string(msg.Value)); err != nil {
					c.CloseNow()
					return err
				}
				last = msg.position()
				seen++
			default:
				c.CloseNow()
				return fmt.Errorf("%s: unexpected message %+v", m.name, msg)
			}
		}
		c.Close(websocket.StatusNormalClosure, "moving")
		m.moves++
	}
	return nil
}

// clusterLoad writes through nodes until stop: each writer sets keys of its own, once each
// (/load/w<i>/<n> = n), and increments counters shared by all (/load/c<j>). It records what was
// acknowledged, and how many increments were sent, answered or not.
type clusterLoad struct {
	mu        sync.Mutex
	acked     map[string]int64 // key set -> value, acknowledged
	incrAcked [clusterCounters]int64
	incrMax   [clusterCounters]int64 // the largest value an acknowledged increment answered
	incrSent  [clusterCounters]int64
	failed    atomic.Int64 // requests without an answer, or answered 503
	ackCount  atomic.Int64
	errs      []string
}

const (
	clusterLoadWriters = 6
	clusterCounters    = 3
)

// run writes until ctx ends; each writer goes to nodes in turn, skipping a node that does not
// answer.
func (l *clusterLoad) run(ctx context.Context, nodes []*clusterNode, seed uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range clusterLoadWriters {
		rng := rand.New(rand.NewPCG(seed, uint64(200+w)))
		wg.Go(func() {
			c := clusterClient()
			defer c.CloseIdleConnections()
			for n := 0; ctx.Err() == nil; n++ {
				node := nodes[(w+n)%len(nodes)]
				if !node.alive() {
					continue
				}
				var status int
				var body []byte
				var err error
				var key string
				counter := -1
				if rng.IntN(2) == 0 {
					key = fmt.Sprintf("/load/w%d/%d", w, n)
					status, _, body, err = crashDo(context.WithoutCancel(ctx), c, http.MethodPost, node.url+key, nil, []byte(strconv.Itoa(n)))
				} else {
					counter = rng.IntN(clusterCounters)
					l.mu.Lock()
					l.incrSent[counter]++
					l.mu.Unlock()
					key = fmt.Sprintf("/load/c%d", counter)
					status, _, body, err = crashDo(context.WithoutCancel(ctx), c, http.MethodPost, node.url+key+"?incr", nil, nil)
				}
				switch {
				case err != nil || status == http.StatusServiceUnavailable:
					l.failed.Add(1)
					c.CloseIdleConnections()
				case status != http.StatusOK:
					l.mu.Lock()
					l.errs = append(l.errs, fmt.Sprintf("POST %s through %s: %d %s", key, node.url, status, body))
					l.mu.Unlock()
				default:
					l.ackCount.Add(1)
					l.mu.Lock()
					if counter < 0 {
						l.acked[key] = int64(n)
					} else {
						v, _ := strconv.ParseInt(string(body), 10, 64)
						l.incrAcked[counter]++
						l.incrMax[counter] = max(l.incrMax[counter], v)
					}
					l.mu.Unlock()
				}
			}
		})
	}
	return &wg
}

// waitAcks waits until n more writes than now are acknowledged (bounded by clusterDeadline).
func (l *clusterLoad) waitAcks(t *testing.T, n int64) {
	t.Helper()
	target := l.ackCount.Load() + n
	for deadline := time.Now().Add(clusterDeadline); l.ackCount.Load() < target; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged, waiting for %d", l.ackCount.Load(), target)
		}
	}
}

// verify reads every acknowledged write back through node: every key set is there with its value,
// every counter at least its acknowledged increments and the largest value one answered, and at
// most the increments sent.
func (l *clusterLoad) verify(t *testing.T, node *clusterNode) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
	c := clusterClient()
	defer c.CloseIdleConnections()
	got := map[string]string{}
	for _, body := range getPages(t, c, node.url+"/load/?limit=1000") {
		var page struct {
			Entries []struct {
				Key   string
				Value json.RawMessage
			}
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			got[e.Key] = string(e.Value)
		}
	}
	lost := 0
	for k, v := range l.acked {
		if got[k] != strconv.FormatInt(v, 10) {
			lost++
			if lost <= 10 {
				t.Errorf("%s: acknowledged with %d, read through %s as %q", k, v, node.url, got[k])
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged sets lost", lost, len(l.acked))
	}
	for i := range clusterCounters {
		v, _ := strconv.ParseInt(got[fmt.Sprintf("/load/c%d", i)], 10, 64)
		if v < l.incrAcked[i] || v < l.incrMax[i] || v > l.incrSent[i] {
			t.Errorf("/load/c%d is %d through %s: %d increments acknowledged, the largest answering %d; %d sent", i, v, node.url, l.incrAcked[i], l.incrMax[i], l.incrSent[i])
		}
	}
}

func (n *clusterNode) alive() bool {
	select {
	case <-n.p.done:
		return false
	default:
		return true
	}
}

// TestClusterNodeKilledMidStream: a node killed with SIGKILL while writers write through it and a
// stream reads from it loses no acknowledged write: the stream resumes on another node from its
// last id and sees every acknowledged set exactly once (and every key at most once), and every
// acknowledged write reads back through each remaining node.
func TestClusterNodeKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	a, b, c := startNode(t, cl), startNode(t, cl), startNode(t, cl)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	// The stream reads /load/ from a, then from b after a dies.
	seen := map[string]int{}
	var streamErr error
	streamDone := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(streamDone)
		streamErr = func() error {
			last, node := "", a
			for {
				s, err := openSSE(ctx, node.url, "/load/", "", last)
				if err != nil {
					return err
				}
				for {
					ev, err := s.next()
					if err != nil { // a died: resume on b
						s.close()
						if node == b {
							return fmt.Errorf("the stream on b broke: %w", err)
						}
						node = b
						break
					}
					switch ev.event {
					case "ready":
						if last == "" {
							close(ready)
						}
						last = ev.id
					case "":
						key, _, _, _, err := ev.change()
						if err != nil {
							return err
						}
						seen[key]++
						last = ev.id
						if key == "/load/done" {
							s.close()
							return nil
						}
					case "delete":
						return fmt.Errorf("unexpected delete %v", ev)
					default:
						s.close()
						return fmt.Errorf("unexpected event %v (after %s)", ev, last)
					}
				}
			}
		}()
	}()
	<-ready

	l := &clusterLoad{acked: map[string]int64{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	wg := l.run(loadCtx, []*clusterNode{a, b, c}, seed)
	l.waitAcks(t, 200)
	a.kill(t)
	l.waitAcks(t, 200)
	stopLoad()
	wg.Wait()
	t.Logf("%d writes acknowledged, %d without an answer", l.ackCount.Load(), l.failed.Load())
	mustDo(t, clusterClient(), http.MethodPost, b.url+"/load/done", nil, "true", http.StatusOK)
	<-streamDone
	if streamErr != nil {
		t.Fatal(streamErr)
	}
	l.mu.Lock()
	for k := range l.acked {
		if seen[k] != 1 {
			t.Errorf("the stream saw acknowledged %s %d times, want once", k, seen[k])
		}
	}
	l.mu.Unlock()
	for k, n := range seen {
		if n > 1 && !strings.HasPrefix(k, "/load/c") {
			t.Errorf("the stream saw %s %d times", k, n)
		}
	}
	l.verify(t, b)
	l.verify(t, c)
}

// TestClusterEtcdMemberKilledUnderLoad: the etcd leader killed with SIGKILL under a write load
// through two nodes loses no acknowledged write: every acknowledged set reads back with its
// value, and every counter holds at least its acknowledged increments (at most those sent),
// through each node, with the member still down and again after it restarts.
func TestClusterEtcdMemberKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	a, b := startNode(t, cl), startNode(t, cl)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	l := &clusterLoad{acked: map[string]int64{}}
	wg := l.run(ctx, []*clusterNode{a, b}, seed)
	l.waitAcks(t, 200)
	leader := cl.leader()
	cl.kill(leader)
	t.Logf("killed the leader %s at %d acknowledged writes", leader.name, l.ackCount.Load())
	l.waitAcks(t, 200) // writes go on with two members
	cancel()
	wg.Wait()
	t.Logf("%d writes acknowledged, %d failed or unanswered", l.ackCount.Load(), l.failed.Load())
	l.verify(t, a)
	l.verify(t, b)

	cl.restart(leader)
	if err := cl.waitHealthy(clusterDeadline); err != nil {
		t.Fatal(err)
	}
	l.verify(t, a)
}

// TestClusterIncrementsSumExactly: increments of one counter from many clients, each through a
// random node, sum exactly: each increment answers a distinct value, 1 to the total, and every
// node reads the total. A request without an answer is retried with its Idempotency-Key, so each
// increment counts once.
func TestClusterIncrementsSumExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	const clients, each = 10, 25
	cl := startEtcdCluster(t, 3)
	nodes := []*clusterNode{startNode(t, cl), startNode(t, cl), startNode(t, cl)}
	seed := uint64(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	var mu sync.Mutex
	answered := map[int64]int{}
	var wg sync.WaitGroup
	for i := range clients {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			c := clusterClient()
			defer c.CloseIdleConnections()
			for n := range each {
				hdr := http.Header{"Idempotency-Key": {fmt.Sprintf("sum-%d-%d-%d", seed, i, n)}}
				for attempt := 0; ; attempt++ {
					node := nodes[rng.IntN(len(nodes))]
					status, _, b, err := crashDo(ctx, c, http.MethodPost, node.url+"/sum/n?incr", hdr, nil)
					if err == nil && status == http.StatusOK {
						v, _ := strconv.ParseInt(string(b), 10, 64)
						mu.Lock()
						answered[v]++
						mu.Unlock()
						break
					}
					if ctx.Err() != nil || attempt == 20 || err == nil && status != http.StatusServiceUnavailable {
						t.Errorf("client %d, increment %d through %s: %d %s %v", i, n, node.url, status, b, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for v := int64(1); v <= clients*each; v++ {
		if answered[v] != 1 {
			t.Errorf("value %d was answered %d times, want once", v, answered[v])
		}
	}
	if len(answered) != clients*each {
		t.Errorf("%d distinct values answered, want %d", len(answered), clients*each)
	}
	c := clusterClient()
	for _, n := range nodes {
		h, b := mustDo(t, c, http.MethodGet, n.url+"/sum/n", nil, "", http.StatusOK)
		if string(b) != strconv.Itoa(clients*each) || h.Get("X-Revision") != strconv.Itoa(clients*each-1) {
			t.Errorf("/sum/n through %s: %s at revision %s, want %d at revision %d", n.url, b, h.Get("X-Revision"), clients*each, clients*each-1)
		}
	}
}

// TestClusterLinearizable: get, set, CAS, increment and delete histories of many clients, each
// request through a random node, with the etcd leader killed with SIGKILL part-way, are
// linearizable (porcupine, linModel of linearizable_test.go). A request without an answer, or
// answered 503, is indeterminate.
func TestClusterLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	nodes := []*clusterNode{startNode(t, cl), startNode(t, cl), startNode(t, cl)}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	h := &linHistory{origin: time.Now(), bySeq: map[string]map[uint64]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var ops atomic.Int64
	var wg sync.WaitGroup
	var nextID atomic.Int64
	for c := range linClients {
		rng := rand.New(rand.NewPCG(seed, uint64(c)))
		wg.Go(func() {
			client := clusterClient()
			defer client.CloseIdleConnections()
			id := int(nextID.Add(1))
			revs := map[string]int64{}
			for n := 0; ctx.Err() == nil; n++ {
				in := linRandomOp(rng, revs, id, n)
				out, ok := linDo(ctx, h, client, nodes[rng.IntN(len(nodes))].url, id, in)
				ops.Add(1)
				if !ok {
					// An indeterminate operation stays open forever: this client goes on under a
					// new id, as porcupine's clients are sequential.
					id = int(nextID.Add(1))
					clear(revs)
					continue
				}
				switch {
				case out.status == http.StatusOK && in.op != "delete":
					revs[in.key] = out.rev
				case out.status == http.StatusNotFound || in.op == "delete":
					delete(revs, in.key)
				}
			}
		})
	}
	waitOps := func(n int64) {
		target := ops.Load() + n
		for deadline := time.Now().Add(clusterDeadline); ops.Load() < target && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitOps(300)
	leader := cl.leader()
	cl.kill(leader)
	t.Logf("killed the leader %s after %d operations", leader.name, ops.Load())
	waitOps(300)
	cancel()
	wg.Wait()
	for k := range linKeys {
		linDo(context.Background(), h, clusterClient(), nodes[0].url, 9999, linInput{op: "get", key: linKey(k)})
	}
	for _, e := range h.errs {
		t.Error(e)
	}
	var unknown int
	for _, op := range h.ops {
		if op.Output.(linOutput).unknown {
			unknown++
		}
	}
	t.Logf("%d operations (%d indeterminate)", len(h.ops), unknown)
	if len(h.ops) < linKeys*10 {
		t.Fatalf("only %d operations: the test checked almost nothing", len(h.ops))
	}
	res, info := porcupine.CheckOperationsVerbose(linModel, h.ops, linMaxCheck)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(t.TempDir(), "history.html")
		if err := porcupine.VisualizePath(linModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatal("the history is not linearizable")
	default:
		t.Fatalf("porcupine could not decide within %v", linMaxCheck)
	}
}

// linRandomOp picks an operation as linClient does.
func linRandomOp(rng *rand.Rand, revs map[string]int64, id, n int) linInput {
	key := linKey(rng.IntN(linKeys))
	in := linInput{key: key}
	switch r := rng.IntN(10); {
	case r < 4:
		in.op = "get"
	case r < 6:
		in.op, in.val = "set", int64(id)*1_000_000+int64(n)
	case r < 8:
		rev, seen := revs[key]
		if !seen || rng.IntN(4) == 0 {
			rev = -1
		}
		in.op, in.val, in.rev = "cas", int64(id)*1_000_000+int64(n), rev+1
	case r < 9:
		in.op = "incr"
	default:
		in.op = "delete"
	}
	return in
}

// TestClusterEphemeralKeysOfKilledNode: the ephemeral key a WebSocket wrote through a node that
// is then killed with SIGKILL disappears once the node's lease runs out (the nodes' -ephemeral-grace
// is 2 s, so is the lease), with a delete event on a stream of another node that says who left
// and why (node_lost); the on-disconnect write the connection registered is made by a surviving
// node, once, with the same reason; a plain key written through it stays, and a lock taken through
// it stays held and is released through another node with its token.
func TestClusterEphemeralKeysOfKilledNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	a, b := startNode(t, cl), startNode(t, cl)
	c := clusterClient()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	s := readySSE(t, ctx, b.url, "/room/", "")

	ws, err := dialWS(ctx, a.url)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := wsSend(ctx, ws, map[string]any{"op": "set", "id": 1, "key": "/room/online/ann", "value": map[string]string{"name": "Ann"}, "ephemeral": true}); err != nil {
		t.Fatal(err)
	}
	msg, err := wsRead(ctx, ws)
	if err != nil || !msg.OK || len(msg.Conn) != 16 {
		t.Fatalf("ephemeral set through a: %+v %v", msg, err)
	}
	conn := msg.Conn
	if err := wsSend(ctx, ws, map[string]any{"op": "ondisconnect", "id": 2, "key": "/status/ann", "value": "offline"}); err != nil {
		t.Fatal(err)
	}
	if msg, err := wsRead(ctx, ws); err != nil || !msg.OK {
		t.Fatalf("ondisconnect through a: %+v %v", msg, err)
	}
	// A WebSocket subscriber on b sees the on-disconnect write's reason.
	wb, err := dialWS(ctx, b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.CloseNow()
	if err := wsSend(ctx, wb, map[string]any{"op": "sub", "id": 1, "path": "/status/"}); err != nil {
		t.Fatal(err)
	}
	for msg.Type != "ready" {
		if msg, err = wsRead(ctx, wb); err != nil {
			t.Fatal(err)
		}
	}
	mustDo(t, c, http.MethodPost, a.url+"/room/topic", nil, `"cluster"`, http.StatusOK)
	_, body := mustDo(t, c, http.MethodPost, a.url+"/room/lock?lock&ttl=60s&owner=ann", nil, "", http.StatusOK)
	var lock struct{ Token string }
	if err := json.Unmarshal(body, &lock); err != nil || lock.Token == "" {
		t.Fatalf("lock through a: %s", body)
	}
	for _, want := range []string{"/room/online/ann", "/room/topic", "/room/lock"} {
		ev, err := s.next()
		if key, _, _, _, _ := ev.change(); err != nil || ev.event != "" || key != want {
			t.Fatalf("stream on b: %v %v, want the set of %s", ev, err, want)
		}
	}

	a.kill(t)
	ev, err := s.next()
	if err != nil {
		t.Fatal(err)
	}
	if key, _, _, _, _ := ev.change(); ev.event != "delete" || key != "/room/online/ann" ||
		ev.data != `{"presence":{"conn":"`+conn+`"},"reason":"node_lost"}` {
		t.Fatalf("stream on b after a's death: %v, want the delete of /room/online/ann by %s with reason node_lost", ev, conn)
	}
	if msg, err = wsRead(ctx, wb); err != nil || msg.Type != "set" || msg.Key != "/status/ann" || string(msg.Value) != `"offline"` || msg.Reason != "node_lost" || msg.Revision != 0 {
		t.Fatalf("WebSocket on b after a's death: %+v %v, want the on-disconnect write with reason node_lost", msg, err)
	}
	mustDo(t, c, http.MethodPost, b.url+"/status/marker", nil, `1`, http.StatusOK)
	if msg, err = wsRead(ctx, wb); err != nil || msg.Key != "/status/marker" {
		t.Fatalf("WebSocket on b: %+v %v, want the marker: the on-disconnect write is made once", msg, err)
	}
	mustDo(t, c, http.MethodGet, b.url+"/room/online/ann", nil, "", http.StatusNotFound)
	mustDo(t, c, http.MethodGet, b.url+"/room/topic", nil, "", http.StatusOK)
	mustDo(t, c, http.MethodPost, b.url+"/room/lock?lock", nil, "", http.StatusConflict)
	mustDo(t, c, http.MethodDelete, b.url+"/room/lock?lock", http.Header{"X-Lock-Token": {lock.Token}}, "", http.StatusOK)
	ev, err = s.next()
	if key, _, _, _, _ := ev.change(); err != nil || ev.event != "delete" || key != "/room/lock" {
		t.Fatalf("stream on b: %v %v, want the release of /room/lock", ev, err)
	}
}

// TestClusterCompactedResume: a stream that resumes from a position etcd has compacted away, on a
// node started since (whose history begins at its start), gets a reset and then the current
// state (snapshot entries, then ready); on the node whose history still holds the position it
// resumes with exactly the changes after it.
func TestClusterCompactedResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	a := startNode(t, cl)
	c := clusterClient()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	s := readySSE(t, ctx, a.url, "/cmp/", "")
	for i := range 3 {
		mustDo(t, c, http.MethodPost, fmt.Sprintf("%s/cmp/k%d", a.url, i), nil, strconv.Itoa(i), http.StatusOK)
	}
	var pos string
	for range 3 {
		ev, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		pos = ev.id
	}
	var after []string // the changes after pos, as ids
	var seqs []uint64
	for i := range 3 {
		_, b := mustDo(t, c, http.MethodPost, fmt.Sprintf("%s/cmp/k%d", a.url, i), nil, strconv.Itoa(10+i), http.StatusOK)
		seqs = append(seqs, writeSeq(t, b))
		after = append(after, fmt.Sprintf("/cmp/k%d:1:%d", i, seqs[i]))
	}
	_, b := mustDo(t, c, http.MethodDelete, a.url+"/cmp/k0", nil, "", http.StatusOK)
	last := writeSeq(t, b)
	after = append(after, fmt.Sprintf("delete /cmp/k0:2:%d", last))
	cl.compact(last)

	// A fresh node: its history starts after the compaction.
	fresh := startNode(t, cl)
	r, err := openSSE(ctx, fresh.url, "/cmp/", "", pos)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	var got []string
	var at uint64 // the reset's seq: the state's
	for {
		ev, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.event == "reset" {
			var m struct{ Seq uint64 }
			json.Unmarshal([]byte(ev.data), &m)
			at = m.Seq
			if at < last {
				t.Errorf("reset at seq %d, before the last write's %d", at, last)
			}
		}
		got = append(got, strings.TrimSpace(ev.event+" "+ev.id+" "+ev.data))
		if ev.event == "ready" {
			break
		}
	}
	want := []string{
		fmt.Sprintf(`reset  {"seq":%d}`, at),
		fmt.Sprintf("/cmp/k1:1:%d:s 11", seqs[1]), fmt.Sprintf("/cmp/k2:1:%d:s 12", seqs[2]),
		fmt.Sprintf(`ready %d {"seq":%d}`, at, at),
	}
	if !slices.Equal(got, want) {
		t.Errorf("resume from %s on a fresh node after compaction:\n%s\nwant\n%s", pos, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// On a, the history still holds pos: the changes after it, no reset.
	r2, err := openSSE(ctx, a.url, "/cmp/", "", pos)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.close()
	got = nil
	for {
		ev, err := r2.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.event == "ready" {
			break
		}
		got = append(got, strings.TrimSpace(ev.event+" "+ev.id))
	}
	if !slices.Equal(got, after) {
		t.Errorf("resume from %s on a after compaction: %v, want %v", pos, got, after)
	}
}

// TestClusterQuorumLoss: with two of three etcd members killed, a write answers 503 unavailable
// and a stream ends with event close, reason unavailable; once the members are back, writes
// succeed and the stream resumes from its last id with no reset and the changes after it.
func TestClusterQuorumLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the binary")
	}
	t.Parallel()
	cl := startEtcdCluster(t, 3)
	a, b := startNode(t, cl), startNode(t, cl)
	c := clusterClient()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()

	s := readySSE(t, ctx, b.url, "/q/", "")
	mustDo(t, c, http.MethodPost, a.url+"/q/a", nil, "1", http.StatusOK)
	ev, err := s.next()
	if err != nil || ev.event != "" {
		t.Fatalf("stream on b: %v %v, want the set of /q/a", ev, err)
	}
	last := ev.id

	cl.kill(cl.members[1])
	cl.kill(cl.members[2])
	_, body := mustDo(t, c, http.MethodPost, a.url+"/q/lost", nil, "2", http.StatusServiceUnavailable)
	if !strings.Contains(string(body), `"code":"unavailable"`) {
		t.Errorf("a write without quorum answered %s, want code unavailable", body)
	}
	if ev, err := s.next(); err != nil || ev.event != "close" || ev.data != `{"reason":"unavailable"}` {
		t.Fatalf("stream on b without quorum: %v %v, want close, reason unavailable", ev, err)
	}

	cl.restart(cl.members[1])
	cl.restart(cl.members[2])
	if err := cl.waitHealthy(clusterDeadline); err != nil {
		t.Fatal(err)
	}
	// The first writes after the election may still meet the outage's end: retry those.
	var seq uint64
	for attempt := 0; ; attempt++ {
		status, _, body, err := crashDo(ctx, c, http.MethodPost, a.url+"/q/b", nil, []byte("3"))
		if err == nil && status == http.StatusOK {
			seq = writeSeq(t, body)
			break
		}
		if attempt == 20 || err == nil && status != http.StatusServiceUnavailable {
			t.Fatalf("a write once quorum is back: %d %s %v", status, body, err)
		}
	}
	r, err := openSSE(ctx, b.url, "/q/", "", last)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for {
		ev, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		key, _, evSeq, _, _ := ev.change()
		switch {
		case ev.event == "" && key == "/q/lost": // a write answered 503 may still commit
		case ev.event == "" && key == "/q/b" && evSeq == seq:
			return
		case ev.event == "ready":
			if s, _ := strconv.ParseUint(ev.id, 10, 64); s >= seq {
				t.Fatalf("resumed from %s on b: ready at %d without /q/b (seq %d)", last, s, seq)
			}
		default:
			t.Fatalf("resumed from %s on b: %v, want the changes after it", last, ev)
		}
	}
}
