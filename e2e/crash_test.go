package e2e

// TestCrash is the crash test of the durability issue: it runs the real binary under concurrent
// acknowledged writes, kills it with SIGKILL at a random moment, restarts it on the same data
// directory and checks that nothing acknowledged was lost and nothing unsent appeared.
//
//	go test ./e2e -run Crash                       # 8 rounds
//	go test ./e2e -run Crash -crash.rounds=200     # more
//	go test ./e2e -run Crash -crash.seed=12345     # replay the logged seed
//
// The seed fixes the kill moments and which keys the writers pick; the interleaving of the
// writers and the server is the scheduler's, so a replay repeats the plan, not every byte.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	crashRounds = flag.Int("crash.rounds", 8, "crash test: kill-and-restart rounds under -sync always (one -sync interval round is added)")
	crashSeed   = flag.Uint64("crash.seed", 0, "crash test: seed of the kill moments and key choices; 0 picks one (it is logged)")
)

// The write load of one round: several goroutines, each with its own keep-alive client.
const (
	crashCounterWriters = 3
	crashCASWriters     = 3
	crashCounterKeys    = 6
	crashCASKeys        = 3 // fewer keys than writers, so CAS writers conflict and retry

	crashKillMin = 20 * time.Millisecond // the kill comes this long after the writers start, at least
	crashKillMax = 400 * time.Millisecond
)

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash seed %d (replay with -crash.seed=%d), %d rounds under -sync always and one under -sync interval", seed, seed, *crashRounds)

	bin := binary // built once by TestMain in binary_test.go, without -race
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	m := newCrashModel()
	var last [2]*crashServer // the servers of the last two starts, whose logs a failure shows
	t.Cleanup(func() {
		for _, srv := range last {
			if srv != nil && t.Failed() {
				t.Logf("server log %s:\n%s", filepath.Base(srv.logPath), srv.log())
			}
		}
	})

	// The -sync interval round sits in the middle, so later rounds also recover from what a crash
	// under interval leaves behind.
	intervalRound := *crashRounds / 2
	total := *crashRounds + 1
	var torn int
	for round := range total {
		mode := "always"
		if round == intervalRound {
			mode = "interval"
		}
		srv := crashStart(t, bin, data, mode, filepath.Join(dir, fmt.Sprintf("server-%03d.log", round)))
		last[0], last[1] = last[1], srv
		startSeq := m.verify(t, srv, fmt.Sprintf("start of round %d (-sync %s)", round, mode))
		if t.Failed() {
			return
		}
		rng := rand.New(rand.NewPCG(seed, uint64(round)))
		delay := crashKillMin + time.Duration(rng.Int64N(int64(crashKillMax-crashKillMin)))
		st := m.writeAndKill(t, srv, seed, round, mode == "always", startSeq, delay)
		if srv.tornTail() {
			torn++
		}
		t.Logf("round %d (-sync %s): killed %v after the writers started; %d writes acknowledged, %d sent unanswered",
			round, mode, delay.Round(time.Millisecond), st.acked, st.unanswered)
		if t.Failed() {
			return
		}
	}

	// A last start checks what the last kill left, then a clean shutdown.
	srv := crashStart(t, bin, data, "always", filepath.Join(dir, "server-final.log"))
	last[0], last[1] = last[1], srv
	m.verify(t, srv, "the final start")
	if srv.tornTail() {
		torn++
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to pid %d: %v", srv.cmd.Process.Pid, err)
	}
	if err := srv.wait(); err != nil {
		t.Errorf("after SIGTERM the server exited with %v, want status 0", err)
	}
	if m.totalAcked == 0 {
		t.Errorf("no write was acknowledged in %d rounds: the test checked nothing", total)
	}
	t.Logf("%d restarts cut a torn log tail; %d writes acknowledged in all, final seq %d", torn, m.totalAcked, m.seqFloor)
}

// crashModel is what the test knows about the server's state: lower bounds from acknowledged
// writes, upper bounds from attempted ones. It accumulates across rounds, as the data directory does.
type crashModel struct {
	mu         sync.Mutex
	counters   [crashCounterKeys]crashCounter
	cas        [crashCASKeys]crashCAS
	seqFloor   uint64 // the highest seq known durable: acknowledged under -sync always, or seen at a start
	totalAcked int
}

type crashCounter struct {
	attempted int64 // increments sent, answered or not: the counter can be no higher
	floor     int64 // the highest value known durable: acknowledged, or seen after a restart
}

type crashCAS struct {
	floorRev int64  // the highest revision known durable (-1: none yet)
	floorVal string // its value
	// every value sent for each revision: whatever revision the key is at, its value is one of these
	attempted map[int64]map[string]bool
}

func newCrashModel() *crashModel {
	m := &crashModel{}
	for i := range m.cas {
		m.cas[i] = crashCAS{floorRev: -1, attempted: map[int64]map[string]bool{}}
	}
	return m
}

func crashCounterKey(i int) string { return fmt.Sprintf("/crash/counter/c%d", i) }
func crashCASKey(i int) string     { return fmt.Sprintf("/crash/cas/k%d", i) }

// verify reads the restarted server's state before any write and checks it against the model:
// every counter between its floor and its attempts, every CAS key at or past its floor revision with
// the floor value or a value sent for its revision, the seq at or past the floor. What it reads then
// raises the floors: it is on disk now, and a later SIGKILL must not take it back. It returns the
// server's seq.
func (m *crashModel) verify(t *testing.T, srv *crashServer, when string) uint64 {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := srv.client()
	defer c.CloseIdleConnections()

	seq := srv.healthSeq(t)
	if seq < m.seqFloor {
		t.Errorf("%s: /.health seq %d went backwards: %d was durable before", when, seq, m.seqFloor)
	}
	m.seqFloor = max(m.seqFloor, seq)

	for i := range m.counters {
		k := &m.counters[i]
		status, _, body := crashGet(t, c, srv.url+crashCounterKey(i))
		var v int64
		switch status {
		case http.StatusNotFound:
		case http.StatusOK:
			var err error
			if v, err = strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64); err != nil {
				t.Errorf("%s: counter %s holds %q, not an integer", when, crashCounterKey(i), body)
				continue
			}
		default:
			t.Errorf("%s: GET %s: status %d: %s", when, crashCounterKey(i), status, body)
			continue
		}
		if v < k.floor {
			t.Errorf("%s: counter %s is %d, but %d was acknowledged (or seen after a restart): an acknowledged increment was lost", when, crashCounterKey(i), v, k.floor)
		}
		if v > k.attempted {
			t.Errorf("%s: counter %s is %d, but only %d increments were ever sent", when, crashCounterKey(i), v, k.attempted)
		}
		k.floor = max(k.floor, v)
	}

	for i := range m.cas {
		k := &m.cas[i]
		status, h, body := crashGet(t, c, srv.url+crashCASKey(i))
		rev, val := int64(-1), ""
		switch status {
		case http.StatusNotFound:
		case http.StatusOK:
			var err error
			if rev, err = strconv.ParseInt(h.Get("X-Revision"), 10, 64); err != nil {
				t.Errorf("%s: GET %s: X-Revision %q", when, crashCASKey(i), h.Get("X-Revision"))
				continue
			}
			val = string(body)
		default:
			t.Errorf("%s: GET %s: status %d: %s", when, crashCASKey(i), status, body)
			continue
		}
		switch {
		case rev < k.floorRev:
			t.Errorf("%s: %s is at revision %d, but revision %d (%s) was acknowledged (or seen after a restart)", when, crashCASKey(i), rev, k.floorRev, k.floorVal)
		case rev == k.floorRev && val != k.floorVal:
			t.Errorf("%s: %s is at its acknowledged revision %d with %s, want the acknowledged %s", when, crashCASKey(i), rev, val, k.floorVal)
		case rev > k.floorRev && !k.attempted[rev][val]:
			t.Errorf("%s: %s is at revision %d with %s, which no writer sent for that revision", when, crashCASKey(i), rev, val)
		}
		if rev > k.floorRev {
			k.floorRev, k.floorVal = rev, val
		}
	}
	return seq
}

// crashRoundStats counts one round's writes.
type crashRoundStats struct{ acked, unanswered int }

// writeAndKill runs the writers against srv, kills it with SIGKILL after delay, and waits for the
// writers to notice. Acknowledgements raise the model's floors only when durable is set (-sync
// always); every acknowledged seq must be past startSeq, the seq the server started at.
func (m *crashModel) writeAndKill(t *testing.T, srv *crashServer, seed uint64, round int, durable bool, startSeq uint64, delay time.Duration) crashRoundStats {
	var (
		killed     atomic.Bool // set just before the kill: from then on a failed request is expected
		acked      atomic.Int64
		unanswered atomic.Int64
		wg         sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// failed reports a request that got no answer; before the kill that is a test failure.
	failed := func(what string, err error) {
		unanswered.Add(1)
		if !killed.Load() {
			t.Errorf("round %d: %s before the kill: %v", round, what, err)
		}
	}
	ackSeq := func(what string, h http.Header) bool {
		seq, err := strconv.ParseUint(h.Get("X-Seq"), 10, 64)
		if err != nil {
			t.Errorf("round %d: %s: acknowledged without a valid X-Seq (%q)", round, what, h.Get("X-Seq"))
			return false
		}
		if seq <= startSeq {
			t.Errorf("round %d: %s: acknowledged with seq %d, but the server started at seq %d: the seq went backwards", round, what, seq, startSeq)
		}
		acked.Add(1)
		if durable {
			m.mu.Lock()
			m.seqFloor = max(m.seqFloor, seq)
			m.totalAcked++
			m.mu.Unlock()
		}
		return true
	}

	for w := range crashCounterWriters {
		rng := rand.New(rand.NewPCG(seed, uint64(round)<<16|uint64(w)|1<<32))
		wg.Go(func() {
			c := srv.client()
			defer c.CloseIdleConnections()
			for ctx.Err() == nil && !killed.Load() {
				i := rng.IntN(crashCounterKeys)
				m.mu.Lock()
				m.counters[i].attempted++
				m.mu.Unlock()
				what := "POST " + crashCounterKey(i) + "?incr"
				status, h, body, err := crashDo(ctx, c, http.MethodPost, srv.url+crashCounterKey(i)+"?incr", nil, nil)
				if err != nil {
					failed(what, err)
					return
				}
				if status != http.StatusOK {
					t.Errorf("round %d: %s: status %d: %s", round, what, status, body)
					return
				}
				v, err := strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
				if err != nil {
					t.Errorf("round %d: %s answered %q, not an integer", round, what, body)
					return
				}
				if !ackSeq(what, h) {
					return
				}
				if durable {
					m.mu.Lock()
					m.counters[i].floor = max(m.counters[i].floor, v)
					m.mu.Unlock()
				}
			}
		})
	}

	// Each CAS writer starts from the revisions verify saw and learns newer ones from conflicts.
	m.mu.Lock()
	var startRevs [crashCASKeys]int64
	for i := range m.cas {
		startRevs[i] = m.cas[i].floorRev
	}
	m.mu.Unlock()
	for w := range crashCASWriters {
		rng := rand.New(rand.NewPCG(seed, uint64(round)<<16|uint64(w)|2<<32))
		wg.Go(func() {
			c := srv.client()
			defer c.CloseIdleConnections()
			known := startRevs
			for n := 0; ctx.Err() == nil && !killed.Load(); n++ {
				i := rng.IntN(crashCASKeys)
				next := known[i] + 1
				val := fmt.Sprintf(`{"round":%d,"writer":%d,"n":%d}`, round, w, n) // unique: tells the writes apart
				m.mu.Lock()
				vals := m.cas[i].attempted[next]
				if vals == nil {
					vals = map[string]bool{}
					m.cas[i].attempted[next] = vals
				}
				vals[val] = true
				m.mu.Unlock()
				what := fmt.Sprintf("PUT %s with X-Revision %d", crashCASKey(i), next)
				hdr := http.Header{"X-Revision": {strconv.FormatInt(next, 10)}, "Content-Type": {"application/json"}}
				status, h, body, err := crashDo(ctx, c, http.MethodPut, srv.url+crashCASKey(i), hdr, []byte(val))
				if err != nil {
					failed(what, err)
					return
				}
				switch status {
				case http.StatusConflict: // another writer got there first: retry from the current revision
					cur, err := strconv.ParseInt(h.Get("X-Revision"), 10, 64)
					if err != nil {
						t.Errorf("round %d: %s: 409 without a valid X-Revision (%q): %s", round, what, h.Get("X-Revision"), body)
						return
					}
					known[i] = cur
				case http.StatusOK:
					if got := h.Get("X-Revision"); got != strconv.FormatInt(next, 10) {
						t.Errorf("round %d: %s: acknowledged with X-Revision %q", round, what, got)
						return
					}
					if !ackSeq(what, h) {
						return
					}
					known[i] = next
					if durable {
						m.mu.Lock()
						if k := &m.cas[i]; next > k.floorRev {
							k.floorRev, k.floorVal = next, val
						}
						m.mu.Unlock()
					}
				default:
					t.Errorf("round %d: %s: status %d: %s", round, what, status, body)
					return
				}
			}
		})
	}

	select {
	case <-time.After(delay):
	case <-srv.done:
		t.Errorf("round %d: the server exited by itself during the writes: %v", round, srv.exitErr)
	}
	killed.Store(true)
	srv.kill(t)
	cancel() // nothing can answer any more; unblock writers waiting on a dead connection at once
	wg.Wait()
	return crashRoundStats{acked: int(acked.Load()), unanswered: int(unanswered.Load())}
}

// crashServer is one run of the binary, started by this test.
type crashServer struct {
	cmd     *exec.Cmd
	url     string // http://127.0.0.1:port
	logPath string
	done    chan struct{} // closed when the process has exited and exitErr is set
	exitErr error
}

// crashStart starts the binary on a free 127.0.0.1 port and waits until /.health answers. The
// process is killed at cleanup if the test ends first (a failure), and its log is shown on failure.
func crashStart(t *testing.T, bin, data, mode, logPath string) *crashServer {
	t.Helper()
	for attempt := 0; ; attempt++ {
		srv, err := crashTryStart(t, bin, data, mode, logPath)
		if err == nil {
			return srv
		}
		// Another process may take the port between its choice and the listen: try another one.
		if attempt < 4 && strings.Contains(srv.log(), "address already in use") {
			continue
		}
		t.Fatalf("starting the server (-sync %s): %v\n%s", mode, err, srv.log())
	}
}

func crashTryStart(t *testing.T, bin, data, mode, logPath string) (*crashServer, error) {
	addr := freeAddr(t)
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "-addr", addr, "-data", data, "-sync", mode)
	cmd.Env = crashEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	srv := &crashServer{cmd: cmd, url: "http://" + addr, logPath: logPath, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		srv.exitErr = cmd.Wait()
		close(srv.done)
	}()
	t.Cleanup(func() {
		select {
		case <-srv.done:
		default:
			srv.kill(t)
		}
	})

	// Wait for /.health. The deadline only guards against a hang; it asserts nothing about speed.
	c := srv.client()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-srv.done:
			return srv, fmt.Errorf("the server exited before answering /.health: %v", srv.exitErr)
		default:
		}
		if resp, err := c.Get(srv.url + "/.health"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv, nil
			}
		}
		if time.Now().After(deadline) {
			srv.kill(t)
			return srv, errors.New("/.health did not answer 200 within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashEnv is the test's environment without STATEHUB_* variables, so only the flags configure
// the server.
func crashEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STATEHUB_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill sends SIGKILL to the process this test started, by its pid, and waits for it to exit.
func (s *crashServer) kill(t *testing.T) {
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL to pid %d: %v", s.cmd.Process.Pid, err)
	}
	<-s.done
}

// wait waits for the process to exit and returns what cmd.Wait returned.
func (s *crashServer) wait() error {
	<-s.done
	return s.exitErr
}

func (s *crashServer) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// tornTail reports whether this start cut a torn tail off the log (what a kill mid-write leaves).
func (s *crashServer) tornTail() bool { return strings.Contains(s.log(), "torn tail") }

// client returns a keep-alive client of its own.
func (s *crashServer) client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: time.Minute}
}

func (s *crashServer) healthSeq(t *testing.T) uint64 {
	t.Helper()
	c := s.client()
	defer c.CloseIdleConnections()
	status, _, body := crashGet(t, c, s.url+"/.health")
	var h struct {
		Status string  `json:"status"`
		Seq    *uint64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &h); status != http.StatusOK || err != nil || h.Seq == nil {
		t.Fatalf("/.health: status %d, %s (%v)", status, body, err)
	}
	return *h.Seq
}

func crashGet(t *testing.T, c *http.Client, url string) (int, http.Header, []byte) {
	t.Helper()
	status, h, body, err := crashDo(context.Background(), c, http.MethodGet, url, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return status, h, body
}

// crashDo makes one request and reads the whole answer, so the connection is reused.
func crashDo(ctx context.Context, c *http.Client, method, url string, hdr http.Header, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}
