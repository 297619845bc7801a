package e2e

// TestCrashLinearizable runs many clients' reads and writes (get, set, compare-and-swap, incr,
// delete) against the real binary under -sync always, kills it with SIGKILL in the middle of the
// load, restarts it on the same data directory, and goes on; every round adds to one history,
// which porcupine then checks for linearizability. A request that got no answer (the kill cut it)
// is indeterminate: it may have taken effect at any point after it was sent, or never.
//
// Beside the values, it checks every position the server showed: a seq in a read's X-Seq, a
// write's answer or a ?snapshot stream's ready event must never be given to another commit after a
// restart, so the restarted server's seq is at least every seq shown before the kill, and one
// key's seq always shows the same value.
//
//	go test ./e2e -run CrashLinearizable -lin.rounds=20

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var linRounds = flag.Int("lin.rounds", 4, "linearizability test: kill-and-restart rounds")

const (
	linClients  = 8
	linKeys     = 8
	linKillMin  = 50 * time.Millisecond
	linKillMax  = 300 * time.Millisecond
	linMaxCheck = 2 * time.Minute // porcupine's budget; running out is a failure, not a pass
)

func linKey(i int) string { return fmt.Sprintf("/lin/k%d", i) }

// linOp is one request of the history.
type linInput struct {
	op  string // get, set, cas, incr, delete
	key string
	val int64 // set: the value written
	rev int64 // cas: the X-Revision sent (the revision the write must produce)
}

type linOutput struct {
	unknown bool // no answer: the request may or may not have taken effect
	status  int
	val     int64 // get, incr: the value
	rev     int64 // the X-Revision answered
}

// linState is one key's state in the model: absent, or an integer value at a revision.
type linState struct {
	exists bool
	val    int64
	rev    int64
}

var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		next := func(v int64) linState {
			if s.exists {
				return linState{true, v, s.rev + 1}
			}
			return linState{true, v, 0}
		}
		switch in.op {
		case "get":
			if out.status == http.StatusNotFound {
				return !s.exists, s
			}
			return s.exists && out.val == s.val && out.rev == s.rev, s
		case "set":
			n := next(in.val)
			return out.unknown || out.rev == n.rev, n
		case "cas":
			want := int64(0)
			if s.exists {
				want = s.rev + 1
			}
			holds := in.rev == want
			switch {
			case out.unknown:
				if holds {
					return true, next(in.val)
				}
				return true, s
			case out.status == http.StatusOK:
				return holds, next(in.val)
			default: // 409
				return !holds, s
			}
		case "incr":
			n := next(s.val + 1)
			if !s.exists {
				n.val = 1
			}
			return out.unknown || (out.val == n.val && out.rev == n.rev), n
		case "delete":
			switch {
			case out.unknown:
				if s.exists {
					return true, linState{}
				}
				return true, s
			case out.status == http.StatusOK:
				return s.exists, linState{}
			default: // 404
				return !s.exists, s
			}
		}
		panic("unknown op " + in.op)
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if out.unknown {
			return fmt.Sprintf("%s %s %d/%d -> ?", in.op, in.key, in.val, in.rev)
		}
		return fmt.Sprintf("%s %s %d/%d -> %d %d@%d", in.op, in.key, in.val, in.rev, out.status, out.val, out.rev)
	},
}

// TestLinearizabilityModel: the model rejects what it must (a read of a value that a later
// acknowledged write replaced, a revision that skips) and accepts an indeterminate write either way.
func TestLinearizabilityModel(t *testing.T) {
	t.Parallel()
	op := func(c int, in linInput, call int64, out linOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
	}
	k := "/k"
	cases := []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"set then get", true, []porcupine.Operation{
			op(0, linInput{op: "set", key: k, val: 5}, 0, linOutput{status: 200, rev: 0}, 1),
			op(1, linInput{op: "get", key: k}, 2, linOutput{status: 200, val: 5, rev: 0}, 3),
		}},
		{"stale read after an acknowledged write", false, []porcupine.Operation{
			op(0, linInput{op: "set", key: k, val: 5}, 0, linOutput{status: 200, rev: 0}, 1),
			op(0, linInput{op: "set", key: k, val: 6}, 2, linOutput{status: 200, rev: 1}, 3),
			op(1, linInput{op: "get", key: k}, 4, linOutput{status: 200, val: 5, rev: 0}, 5),
		}},
		{"read of a write that never happened", false, []porcupine.Operation{
			op(1, linInput{op: "get", key: k}, 0, linOutput{status: 200, val: 7, rev: 0}, 1),
			op(1, linInput{op: "get", key: k}, 2, linOutput{status: 404}, 3),
		}},
		{"indeterminate write seen", true, []porcupine.Operation{
			op(0, linInput{op: "cas", key: k, val: 5, rev: 0}, 0, linOutput{unknown: true}, math.MaxInt64),
			op(1, linInput{op: "get", key: k}, 2, linOutput{status: 200, val: 5, rev: 0}, 3),
		}},
		{"indeterminate write lost", true, []porcupine.Operation{
			op(0, linInput{op: "incr", key: k}, 0, linOutput{unknown: true}, math.MaxInt64),
			op(1, linInput{op: "get", key: k}, 2, linOutput{status: 404}, 3),
		}},
		{"increment from a value", true, []porcupine.Operation{
			op(0, linInput{op: "set", key: k, val: 41}, 0, linOutput{status: 200, rev: 0}, 1),
			op(0, linInput{op: "incr", key: k}, 2, linOutput{status: 200, val: 42, rev: 1}, 3),
			op(0, linInput{op: "delete", key: k}, 4, linOutput{status: 200}, 5),
			op(0, linInput{op: "cas", key: k, val: 1, rev: 0}, 6, linOutput{status: 200, rev: 0}, 7),
		}},
		{"compare-and-swap against a lost revision", false, []porcupine.Operation{
			op(0, linInput{op: "set", key: k, val: 1}, 0, linOutput{status: 200, rev: 0}, 1),
			op(0, linInput{op: "cas", key: k, val: 2, rev: 1}, 2, linOutput{status: 409}, 3),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(linModel, tc.ops); got != tc.ok {
				t.Errorf("linearizable = %v, want %v", got, tc.ok)
			}
		})
	}
}

// linHistory collects the operations of every round, and every seq the server showed.
type linHistory struct {
	mu     sync.Mutex
	origin time.Time
	ops    []porcupine.Operation
	shown  uint64                      // the largest seq shown since the last restart
	bySeq  map[string]map[uint64]int64 // key -> seq -> value shown at that seq
	errs   []string
	nshown int
}

func (h *linHistory) now() int64 { return time.Since(h.origin).Nanoseconds() }

func (h *linHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// show records a seq the server answered; val is the value shown with it (ok false: none).
func (h *linHistory) show(what, key string, seq uint64, val int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shown = max(h.shown, seq)
	h.nshown++
	if !ok {
		return
	}
	m := h.bySeq[key]
	if m == nil {
		m = map[uint64]int64{}
		h.bySeq[key] = m
	}
	if old, had := m[seq]; had && old != val {
		h.errs = append(h.errs, fmt.Sprintf("%s: %s at seq %d showed %d, and %d before: one seq, two commits", what, key, seq, val, old))
	}
	m[seq] = val
}

func TestCrashLinearizable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d rounds", seed, *linRounds)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	h := &linHistory{origin: time.Now(), bySeq: map[string]map[uint64]int64{}}

	var srv *crashServer
	for round := range *linRounds {
		srv = crashStart(t, binary, data, "always", filepath.Join(dir, fmt.Sprintf("lin-%02d.log", round)))
		seq := srv.healthSeq(t)
		h.mu.Lock()
		if seq < h.shown {
			t.Errorf("round %d: the restarted server is at seq %d, but seq %d was shown before the kill: a crash took back what a client saw", round, seq, h.shown)
		}
		h.shown = 0
		h.mu.Unlock()

		rng := rand.New(rand.NewPCG(seed, uint64(round)))
		delay := linKillMin + time.Duration(rng.Int64N(int64(linKillMax-linKillMin)))
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for c := range linClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				linClient(ctx, h, srv, round*linClients+c, rand.New(rand.NewPCG(seed, uint64(1000+round*linClients+c))))
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			linSnapshots(ctx, h, srv)
		}()
		time.Sleep(delay) // the moment of the kill; nothing is asserted about time
		srv.kill(t)
		stop()
		wg.Wait()
	}
	srv = crashStart(t, binary, data, "always", filepath.Join(dir, "lin-final.log"))
	if seq := srv.healthSeq(t); seq < h.shown {
		t.Errorf("final start: seq %d, but seq %d was shown before the last kill", seq, h.shown)
	}
	// A last read of every key closes the history.
	for c := range linKeys {
		linDo(context.Background(), h, srv.client(), srv.url, 9999, linInput{op: "get", key: linKey(c)})
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
	t.Logf("%d operations (%d indeterminate), %d positions shown", len(h.ops), unknown, h.nshown)
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
		t.Fatalf("the history is not linearizable")
	default:
		t.Fatalf("porcupine could not decide within %v", linMaxCheck)
	}
}

// linClient sends random operations on random keys until ctx ends or the server stops answering.
func linClient(ctx context.Context, h *linHistory, srv *crashServer, id int, rng *rand.Rand) {
	c := srv.client()
	defer c.CloseIdleConnections()
	revs := map[string]int64{} // the last revision this client saw of each key
	for n := 0; ctx.Err() == nil; n++ {
		in := linRandomOp(rng, revs, id, n)
		key := in.key
		out, ok := linDo(ctx, h, c, srv.url, id, in)
		if !ok {
			return // the server is gone: this client's last request stays indeterminate
		}
		switch {
		case out.status == http.StatusOK && in.op != "delete":
			revs[key] = out.rev
		case out.status == http.StatusNotFound || in.op == "delete":
			delete(revs, key)
		}
	}
}

// linDo sends one operation and records it; ok is false when it got no answer.
func linDo(ctx context.Context, h *linHistory, c *http.Client, base string, client int, in linInput) (out linOutput, ok bool) {
	var method, url = http.MethodGet, base + in.key
	hdr := http.Header{}
	var body []byte
	switch in.op {
	case "set":
		method, body = http.MethodPost, []byte(strconv.FormatInt(in.val, 10))
	case "cas":
		method, body = http.MethodPut, []byte(strconv.FormatInt(in.val, 10))
		hdr.Set("X-Revision", strconv.FormatInt(in.rev, 10))
	case "incr":
		method, url = http.MethodPost, url+"?incr=1"
	case "delete":
		method = http.MethodDelete
	}
	call := h.now()
	status, rh, b, err := crashDo(context.WithoutCancel(ctx), c, method, url, hdr, body)
	ret := h.now()
	if err != nil || status >= 500 {
		if in.op != "get" { // a read without an answer says nothing
			h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: linOutput{unknown: true}, Return: math.MaxInt64})
		}
		return linOutput{}, false
	}
	out.status = status
	switch {
	case in.op == "get" && status == http.StatusOK, in.op == "incr" && status == http.StatusOK:
		out.val, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		out.rev, _ = strconv.ParseInt(rh.Get("X-Revision"), 10, 64)
		seq, _ := strconv.ParseUint(rh.Get("X-Seq"), 10, 64)
		h.show(in.op, in.key, seq, out.val, true)
	case status == http.StatusOK:
		out.rev, _ = strconv.ParseInt(rh.Get("X-Revision"), 10, 64)
		seq, _ := strconv.ParseUint(rh.Get("X-Seq"), 10, 64)
		h.show(in.op, in.key, seq, in.val, in.op != "delete")
	case status == http.StatusConflict, status == http.StatusNotFound:
	default:
		h.mu.Lock()
		h.errs = append(h.errs, fmt.Sprintf("%s %s: unexpected status %d: %s", in.op, in.key, status, b))
		h.mu.Unlock()
		return out, false
	}
	h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	return out, true
}

// linSnapshots opens ?snapshot streams of the keys' subtree one after another and records each
// ready position and each snapshot entry's seq, until ctx ends or the server is gone.
func linSnapshots(ctx context.Context, h *linHistory, srv *crashServer) {
	c := srv.client()
	defer c.CloseIdleConnections()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/lin/?snapshot", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.Do(req)
		if err != nil {
			return
		}
		br := bufio.NewReader(resp.Body)
		var event, id string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				id = line[len("id: "):]
			case strings.HasPrefix(line, "data: ") && event == "" && id != "":
				// A snapshot entry: key:revision:seq:s
				parts := strings.Split(id, ":")
				if len(parts) >= 3 {
					seq, _ := strconv.ParseUint(parts[2], 10, 64)
					v, err := strconv.ParseInt(line[len("data: "):], 10, 64)
					h.show("snapshot", parts[0], seq, v, err == nil)
				}
			case line == "":
				if event == "ready" {
					seq, _ := strconv.ParseUint(id, 10, 64)
					h.show("ready", "", seq, 0, false)
					event = "done"
				}
				if event != "done" {
					event, id = "", ""
				}
			}
			if event == "done" {
				break
			}
		}
		resp.Body.Close()
	}
}
