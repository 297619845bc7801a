package e2e

// The cluster tests' harness: a three-member etcd cluster of real processes (Debian's etcd-server,
// or any etcd 3.4+ on PATH) and Statehub nodes started with -store etcd, all on loopback ports;
// clients for SSE streams and WebSockets that report errors instead of failing the test, so that
// goroutines can use them. Every process is started by the test and killed by its PID.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// etcdMember is one etcd process of a test's cluster.
type etcdMember struct {
	name   string
	client string // http://127.0.0.1:port
	peer   string
	dir    string
	cmd    *exec.Cmd
	done   chan struct{}
	logs   *lockedBuffer
}

// etcdCluster is a test's etcd cluster.
type etcdCluster struct {
	t       *testing.T
	members []*etcdMember
	initial string // --initial-cluster
}

// startEtcdCluster starts n members and waits until the cluster has a leader. It skips the test
// when no etcd is installed. The members are killed at the end of the test.
func startEtcdCluster(t *testing.T, n int) *etcdCluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (apt-get install etcd-server)")
	}
	for attempt := 0; ; attempt++ {
		c := &etcdCluster{t: t}
		var peers []string
		for i := range n {
			m := &etcdMember{name: fmt.Sprintf("m%d", i+1), client: "http://" + freeAddr(t), peer: "http://" + freeAddr(t),
				dir: filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i+1))}
			c.members = append(c.members, m)
			peers = append(peers, m.name+"="+m.peer)
		}
		c.initial = strings.Join(peers, ",")
		for _, m := range c.members {
			c.start(bin, m)
		}
		err := c.waitHealthy(60 * time.Second)
		if err == nil {
			return c
		}
		// Another process may have taken a port between its choice and the listen: try new ones.
		inUse := false
		for _, m := range c.members {
			c.kill(m)
			inUse = inUse || strings.Contains(m.logs.String(), "address already in use")
		}
		if !inUse || attempt == 3 {
			for _, m := range c.members {
				t.Logf("etcd %s output:\n%s", m.name, m.logs.String())
			}
			t.Fatalf("the etcd cluster did not start: %v", err)
		}
	}
}

// start runs m's process (again, after a kill: its data directory holds its state).
func (c *etcdCluster) start(bin string, m *etcdMember) {
	t := c.t
	m.cmd = exec.Command(bin, "--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", c.initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", "statehub-e2e", "--log-level", "warn")
	if m.logs == nil {
		m.logs = &lockedBuffer{}
	}
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.done = make(chan struct{})
	cmd, done := m.cmd, m.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill() // only this test's own process, by its PID
			<-done
		}
		if t.Failed() {
			t.Logf("etcd %s (pid %d) output:\n%s", m.name, cmd.Process.Pid, m.logs.String())
		}
	})
}

// restart starts a killed member again on its data directory.
func (c *etcdCluster) restart(m *etcdMember) {
	bin, _ := exec.LookPath("etcd")
	c.start(bin, m)
}

// kill sends SIGKILL to m's process, by its PID, and waits for it to exit.
func (c *etcdCluster) kill(m *etcdMember) {
	select {
	case <-m.done:
		return
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Errorf("SIGKILL to etcd pid %d: %v", m.cmd.Process.Pid, err)
	}
	<-m.done
}

func (m *etcdMember) alive() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// endpoints is the -etcd-endpoints value: every member's client URL.
func (c *etcdCluster) endpoints() string {
	var urls []string
	for _, m := range c.members {
		urls = append(urls, m.client)
	}
	return strings.Join(urls, ",")
}

// waitHealthy waits until every running member answers /health with a leader elected. The
// deadline guards against a hang only.
func (c *etcdCluster) waitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, m := range c.members {
		for m.alive() {
			var h struct{ Health string }
			body, err := httpGetBody(m.client + "/health")
			if err == nil && json.Unmarshal(body, &h) == nil && h.Health == "true" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcd %s did not become healthy: %v %s", m.name, err, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !m.alive() {
			return fmt.Errorf("etcd %s exited", m.name)
		}
	}
	return nil
}

// leader returns the member that reports itself the leader (etcd_server_is_leader in /metrics),
// waiting for one.
func (c *etcdCluster) leader() *etcdMember {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, m := range c.members {
			if !m.alive() {
				continue
			}
			body, err := httpGetBody(m.client + "/metrics")
			if err == nil && strings.Contains(string(body), "\netcd_server_is_leader 1\n") {
				return m
			}
		}
	}
	c.t.Fatal("no etcd member reports itself leader")
	return nil
}

// compact compacts etcd's history up to rev, physically, through the gRPC gateway of a running
// member (what etcdctl compact --physical does).
func (c *etcdCluster) compact(rev uint64) {
	c.t.Helper()
	for _, m := range c.members {
		if !m.alive() {
			continue
		}
		body := fmt.Sprintf(`{"revision":"%d","physical":true}`, rev)
		resp, err := http.Post(m.client+"/v3/kv/compaction", "application/json", strings.NewReader(body))
		if err != nil {
			c.t.Fatalf("compacting etcd at %d: %v", rev, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			c.t.Fatalf("compacting etcd at %d: %d %s", rev, resp.StatusCode, b)
		}
		return
	}
	c.t.Fatal("no etcd member is running")
}

func httpGetBody(url string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// clusterNode is one Statehub process with -store etcd.
type clusterNode struct {
	url string // http://127.0.0.1:port
	cmd *exec.Cmd
	p   *proc
}

// startNode starts a Statehub node on c with a data directory of its own (it holds only the
// admin token) and an ephemeral grace of 2 s, and waits until /.health answers.
func startNode(t *testing.T, c *etcdCluster, extra ...string) *clusterNode {
	t.Helper()
	args := append([]string{"-store", "etcd", "-etcd-endpoints", c.endpoints(), "-data", t.TempDir(), "-ephemeral-grace", "2s"}, extra...)
	url, cmd, p := startWith(t, args...)
	return &clusterNode{url: url, cmd: cmd, p: p}
}

// kill sends SIGKILL to the node's process, by its PID, and waits for it to exit.
func (n *clusterNode) kill(t *testing.T) {
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL to statehub pid %d: %v", n.cmd.Process.Pid, err)
	}
	<-n.p.done
}

// sseEvent is one block of an event stream.
type sseEvent struct {
	event, id, data string
}

// change parses a change or snapshot entry's id (key:revision:seq, or key:revision:seq:s).
func (e sseEvent) change() (key string, rev int64, seq uint64, snapshot bool, err error) {
	id := e.id
	if s, ok := strings.CutSuffix(id, ":s"); ok {
		id, snapshot = s, true
	}
	i := strings.LastIndexByte(id, ':')
	j := strings.LastIndexByte(id[:max(i, 0)], ':')
	if i < 0 || j < 0 {
		return "", 0, 0, false, fmt.Errorf("id %q is not key:revision:seq", e.id)
	}
	key = id[:j]
	if rev, err = strconv.ParseInt(id[j+1:i], 10, 64); err == nil {
		seq, err = strconv.ParseUint(id[i+1:], 10, 64)
	}
	return key, rev, seq, snapshot, err
}

// sseStream is an open event stream.
type sseStream struct {
	resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
}

// readySSE opens a stream of path (with query) on base that must begin with ready; the stream
// is closed when the test ends.
func readySSE(t *testing.T, ctx context.Context, base, path, query string) *sseStream {
	t.Helper()
	s, err := openSSE(ctx, base, path, query, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	if ev, err := s.next(); err != nil || ev.event != "ready" {
		t.Fatalf("stream of %s on %s: %+v %v, want ready", path, base, ev, err)
	}
	return s
}

// openSSE opens a stream of path (with query, e.g. "snapshot") on base, resuming from lastID
// when it is not empty.
func openSSE(ctx context.Context, base, path, query, lastID string) (*sseStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	url := base + path
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return &sseStream{resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel}, nil
}

// next returns the next event with an event name, an id or data (comments and retry hints are
// skipped).
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	var any bool
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if any {
				return ev, nil
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "event":
			ev.event, any = v, true
		case "id":
			ev.id, any = v, true
		case "data":
			ev.data, any = v, true
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// wsMessage is a message from the server: an answer or a subscription's event.
type wsMessage struct {
	ID       json.RawMessage `json:"id"`
	OK       bool            `json:"ok"`
	Error    string          `json:"error"`
	Code     string          `json:"code"`
	Sub      json.RawMessage `json:"sub"`
	Type     string          `json:"type"`
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Revision int64           `json:"revision"`
	Seq      uint64          `json:"seq"`
	Snapshot bool            `json:"snapshot"`
	Reason   string          `json:"reason"`
	Conn     string          `json:"conn"`
}

// position is the event's position string (PROTOCOL.md): key:revision:seq for a change, seq for
// ready.
func (m wsMessage) position() string {
	if m.Type == "ready" || m.Type == "reset" {
		return strconv.FormatUint(m.Seq, 10)
	}
	return fmt.Sprintf("%s:%d:%d", m.Key, m.Revision, m.Seq)
}

// dialWS opens a WebSocket to base's /.ws.
func dialWS(ctx context.Context, base string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/.ws", nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

func wsSend(ctx context.Context, c *websocket.Conn, msg map[string]any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageText, b)
}

func wsRead(ctx context.Context, c *websocket.Conn) (wsMessage, error) {
	var m wsMessage
	_, b, err := c.Read(ctx)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("message %s: %w", b, err)
	}
	return m, nil
}
