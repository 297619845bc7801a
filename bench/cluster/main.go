// Command cluster measures Statehub on a three-member etcd cluster against the single binary with
// -sync=always, in one run, with real processes on loopback:
//
//	go run ./bench/cluster                                  # from the repository's root
//	go run ./bench/cluster -duration 5s -conns 64 -subs 2000 -rounds 20
//
// It prints:
//   - writes per second and p99 latency (wrk, POST of one of 10,000 keys, keep-alive): the single
//     binary (-sync=always, a data directory); one node; two nodes at once (two wrk, half the
//     connections each); then increments of one hot key through one node;
//   - etcd requests per Statehub write: gRPC requests handled by the members (the sum of
//     grpc_server_handled_total in each member's /metrics) over the one-node run, divided by the
//     writes wrk made;
//   - fan-out: -subs SSE subscribers of one key, half on each node; -rounds writes of that key,
//     each waited for on every stream: deliveries per second (subscribers / the time from sending
//     the write to the last stream's receipt), the median round;
//   - memory per subscriber: a node's resident set (VmRSS) before and after opening its half of
//     the subscribers, divided by their number.
//
// It needs etcd (apt-get install etcd-server) and wrk (apt-get install wrk) on PATH. Every process
// it starts is killed by its PID at the end; every load is bounded by -duration or -rounds.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	duration = flag.Duration("duration", 5*time.Second, "length of each wrk run")
	conns    = flag.Int("conns", 64, "wrk connections (split over the nodes when there are two)")
	hotConns = flag.Int("hot-conns", 16, "wrk connections of the hot-key increment run")
	subs     = flag.Int("subs", 2000, "SSE subscribers of the fan-out, half on each node")
	rounds   = flag.Int("rounds", 20, "writes of the fan-out, each waited for on every stream")
	keep     = flag.Bool("keep", false, "keep the temporary directory (logs, data)")
)

// procs are the processes this run started, killed by PID at the end (cleanup), and by the
// kernel if this process dies first (Pdeathsig).
var (
	procsMu sync.Mutex
	procs   []*exec.Cmd
	tmp     string
)

func main() {
	flag.Parse()
	for _, tool := range []string{"etcd", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("%s is missing: apt-get install -y etcd-server wrk", tool)
		}
	}
	var err error
	if tmp, err = os.MkdirTemp("", "statehub-bench-cluster-"); err != nil {
		log.Fatal(err)
	}
	// An interrupt ends the run with the cleanup, and so does a closed stdout (| head): with
	// SIGPIPE notified, a write to it fails (say) instead of killing the process. A SIGPIPE of a
	// socket (a subscriber's stream) is ignored here; its write fails too.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for s := range sig {
			if s != syscall.SIGPIPE {
				fatal(fmt.Errorf("stopped by %v", s))
			}
		}
	}()
	if err := run(tmp); err != nil {
		fatal(err)
	}
	cleanup()
}

// cleanup kills every process this run started, by its PID, and removes the temporary directory
// (unless -keep).
func cleanup() {
	procsMu.Lock()
	for _, c := range procs {
		c.Process.Kill()
		c.Wait()
	}
	procs = nil
	procsMu.Unlock()
	if *keep {
		fmt.Fprintln(os.Stderr, "kept", tmp)
	} else {
		os.RemoveAll(tmp)
	}
}

// say prints a result line; when stdout is gone the run ends.
func say(format string, args ...any) {
	if _, err := fmt.Printf(format, args...); err != nil {
		fatal(err)
	}
}

// fatal cleans up, then exits with err.
func fatal(err error) {
	cleanup()
	log.Fatal(err)
}

func run(tmp string) error {
	bin := filepath.Join(tmp, "statehub")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/statehub/statehub").CombinedOutput(); err != nil {
		return fmt.Errorf("building statehub: %v\n%s", err, out)
	}
	script := filepath.Join(tmp, "set.lua")
	if err := os.WriteFile(script, []byte(setLua), 0o644); err != nil {
		return err
	}
	incr := filepath.Join(tmp, "incr.lua")
	if err := os.WriteFile(incr, []byte("wrk.method = \"POST\"\n"), 0o644); err != nil {
		return err
	}

	// The single binary, -sync=always.
	single, err := startStatehub(tmp, "single", bin, "-data", filepath.Join(tmp, "single"), "-sync", "always")
	if err != nil {
		return err
	}
	c0 := cpuTicks(single.cmd.Process.Pid)
	s := wrk(single.url, script, *conns)
	singleCPU := perWrite(cpuTicks(single.cmd.Process.Pid)-c0, s.requests)
	single.stop()
	say("single binary -sync=always: %8.0f writes/s, p99 %s%s; CPU %.0f µs per write\n", s.rate, s.p99, s.errors(), singleCPU)

	// The cluster: three etcd members, two nodes.
	members, etcdPids, err := startEtcd(tmp)
	if err != nil {
		return err
	}
	var nodes []*statehub
	for i := range 2 {
		// The node's data directory holds only its admin token.
		if err := os.Mkdir(filepath.Join(tmp, fmt.Sprintf("node%d", i+1)), 0o700); err != nil {
			return err
		}
		n, err := startStatehub(tmp, fmt.Sprintf("node%d", i+1), bin, "-store", "etcd", "-etcd-endpoints", strings.Join(members, ","),
			"-data", filepath.Join(tmp, fmt.Sprintf("node%d", i+1)), "-max-conns", "0")
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}

	before, err := etcdRequests(members)
	if err != nil {
		return err
	}
	n0, e0 := cpuTicks(nodes[0].cmd.Process.Pid), cpuTicks(etcdPids...)
	one := wrk(nodes[0].url, script, *conns)
	nodeCPU, etcdCPU := perWrite(cpuTicks(nodes[0].cmd.Process.Pid)-n0, one.requests), perWrite(cpuTicks(etcdPids...)-e0, one.requests)
	after, err := etcdRequests(members)
	if err != nil {
		return err
	}
	say("one node:                   %8.0f writes/s, p99 %s%s; CPU %.0f µs per write in the node, %.0f in etcd (three members)\n",
		one.rate, one.p99, one.errors(), nodeCPU, etcdCPU)
	var per []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d > 0 && k != "total" && !strings.HasPrefix(k, "fsync") {
			per = append(per, fmt.Sprintf("%s %.2f", k, d/float64(one.requests)))
		}
	}
	say("etcd requests per write:    %.2f (%s)\n", (after["total"]-before["total"])/float64(one.requests), strings.Join(per, ", "))
	fsyncs, fsyncSecs := after["fsyncs"]-before["fsyncs"], after["fsync_seconds"]-before["fsync_seconds"]
	say("etcd WAL fsyncs per write:  %.2f per member (mean fsync %.1f ms)\n", fsyncs/float64(len(members))/float64(one.requests), 1000*fsyncSecs/max(fsyncs, 1))

	var two [2]wrkResult
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { two[i] = wrk(n.url, script, *conns/2) })
	}
	wg.Wait()
	say("two nodes:                  %8.0f writes/s, p99 %s and %s%s%s\n", two[0].rate+two[1].rate, two[0].p99, two[1].p99, two[0].errors(), two[1].errors())

	hot := wrk(nodes[0].url+"/bench/hot?incr", incr, *hotConns)
	say("one hot key, incr, one node: %7.0f increments/s, p99 %s (%d connections)%s\n", hot.rate, hot.p99, *hotConns, hot.errors())

	return fanout(nodes)
}

// setLua makes wrk POST a JSON value to one of 10,000 keys, chosen at random per request, with a
// seed of its own in each thread.
const setLua = `
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args) math.randomseed(os.time() * 1000 + id) end
request = function()
  return wrk.format("POST", "/bench/k" .. math.random(10000), {["Content-Type"] = "application/json"}, '{"v":1}')
end
`

type wrkResult struct {
	rate     float64
	p99      string
	requests int64
	non2xx   int64
	socket   string
}

func (r wrkResult) errors() string {
	var s string
	if r.non2xx > 0 {
		s += fmt.Sprintf(" (%d answers not 2xx)", r.non2xx)
	}
	if r.socket != "" {
		s += " (" + r.socket + ")"
	}
	return s
}

var (
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reRate     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reP99      = regexp.MustCompile(`\n\s+99%\s+(\S+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: [^\n]+`)
)

// wrk runs wrk against url for -duration with c connections.
func wrk(url, script string, c int) wrkResult {
	if !strings.Contains(strings.TrimPrefix(url, "http://"), "/") {
		url += "/"
	}
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(c), "-d"+duration.String(), "--latency", "-s", script, url).CombinedOutput()
	if err != nil {
		fatal(fmt.Errorf("wrk: %v\n%s", err, out))
	}
	var r wrkResult
	if m := reRequests.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := reRate.FindSubmatch(out); m != nil {
		r.rate, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := reP99.FindSubmatch(out); m != nil {
		r.p99 = string(m[1])
	}
	if m := reNon2xx.FindSubmatch(out); m != nil {
		r.non2xx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := reSocket.Find(out); m != nil {
		r.socket = string(m)
	}
	return r
}

// fanout opens -subs streams of one key, half on each node, and measures deliveries per second of
// -rounds writes, and each node's resident memory per subscriber.
func fanout(nodes []*statehub) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const key = "/fan/k"
	if err := post(nodes[0].url+key, "0"); err != nil {
		return err
	}
	var got [][]atomic.Int64 // got[round][0]: streams that received it; [1]: when the last did (ns since start)
	got = make([][]atomic.Int64, *rounds+1)
	for i := range got {
		got[i] = make([]atomic.Int64, 2)
	}
	start := time.Now()
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	client := &http.Client{Transport: tr}
	var rssPer []string
	for ni, n := range nodes {
		rss0, err := rss(n.cmd.Process.Pid)
		if err != nil {
			return err
		}
		count := *subs / len(nodes)
		var ready sync.WaitGroup
		errs := make(chan error, count)
		for range count {
			ready.Add(1)
			go func() {
				err := stream(ctx, client, n.url+key, &ready, func(round int) {
					if round <= 0 || round > *rounds {
						return
					}
					at := time.Since(start).Nanoseconds()
					if got[round][0].Add(1) == int64(*subs) {
						got[round][1].Store(at)
					}
				})
				if err != nil && ctx.Err() == nil {
					errs <- err
				}
			}()
		}
		ready.Wait()
		select {
		case err := <-errs:
			return fmt.Errorf("a stream of node %d: %w", ni+1, err)
		default:
		}
		time.Sleep(500 * time.Millisecond) // let the node's heap settle before reading its size
		rss1, err := rss(n.cmd.Process.Pid)
		if err != nil {
			return err
		}
		rssPer = append(rssPer, fmt.Sprintf("node %d: %.1f KiB (%d → %d MiB for %d)", ni+1, float64(rss1-rss0)/float64(count), rss0>>10, rss1>>10, count))
	}

	var rates []float64
	for round := 1; round <= *rounds; round++ {
		sent := time.Since(start)
		if err := post(nodes[round%len(nodes)].url+key, strconv.Itoa(round)); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for got[round][1].Load() == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("round %d: %d of %d streams got the change", round, got[round][0].Load(), *subs)
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Duration(got[round][1].Load()) - sent
		rates = append(rates, float64(*subs)/took.Seconds())
	}
	slices.Sort(rates)
	say("fan-out to %d SSE subscribers on two nodes: %.0f deliveries/s (median of %d writes; %.0f to %.0f)\n",
		*subs, rates[len(rates)/2], len(rates), rates[0], rates[len(rates)-1])
	say("memory per subscriber: %s\n", strings.Join(rssPer, "; "))
	return nil
}

// stream reads an SSE stream of url; ready is done at its ready event; each change's data (an
// integer) goes to seen.
func stream(ctx context.Context, c *http.Client, url string, ready *sync.WaitGroup, seen func(int)) error {
	once := sync.OnceFunc(ready.Done)
	defer once()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(line, "event: ready"):
			once()
		case strings.HasPrefix(line, "event: close"):
			return errors.New("the stream was closed: " + line)
		case strings.HasPrefix(line, "data: "):
			if n, err := strconv.Atoi(strings.TrimSpace(line[len("data: "):])); err == nil {
				seen(n)
			}
		}
	}
}

func post(url, body string) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return nil
}

// cpuTicks sums the user and system CPU time of processes, in clock ticks (/proc/PID/stat).
func cpuTicks(pids ...int) int64 {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			fatal(err)
		}
		// The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		sum += u + s
	}
	return sum
}

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's times, 100 on every common platform.
const clockTick = 10 * time.Millisecond

// perWrite is CPU ticks per write, in microseconds.
func perWrite(ticks, writes int64) float64 {
	return float64(time.Duration(ticks)*clockTick/time.Microsecond) / float64(max(writes, 1))
}

// rss returns a process's resident set in KiB.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// etcdRequests sums grpc_server_handled_total over the members, in all and by method, and their
// WAL fsyncs (count and seconds).
func etcdRequests(members []string) (map[string]float64, error) {
	out := map[string]float64{}
	re := regexp.MustCompile(`^grpc_server_handled_total\{[^}]*grpc_method="(\w+)"[^}]*grpc_type="unary"[^}]*\} (\S+)$`)
	for _, m := range members {
		resp, err := http.Get(m + "/metrics")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f := re.FindStringSubmatch(line); f != nil {
				v, _ := strconv.ParseFloat(f[2], 64)
				out[f[1]] += v
				out["total"] += v
			}
			for name, metric := range map[string]string{"fsyncs": "etcd_disk_wal_fsync_duration_seconds_count ", "fsync_seconds": "etcd_disk_wal_fsync_duration_seconds_sum "} {
				if v, ok := strings.CutPrefix(line, metric); ok {
					f, _ := strconv.ParseFloat(v, 64)
					out[name] += f
				}
			}
		}
		resp.Body.Close()
	}
	return out, nil
}

// statehub is a started server.
type statehub struct {
	url string
	cmd *exec.Cmd
}

// stop ends the server with SIGTERM and waits for it.
func (s *statehub) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

func startStatehub(tmp, name, bin string, args ...string) (*statehub, error) {
	addr := freeAddr()
	logf, err := os.Create(filepath.Join(tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-log-level", "warn"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := start(cmd); err != nil {
		return nil, err
	}
	s := &statehub{url: "http://" + addr, cmd: cmd}
	if err := waitUp(s.url + "/.health"); err != nil {
		b, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("%s: %w\n%s", name, err, b)
	}
	return s, nil
}

// startEtcd starts three members with the settings the README recommends and returns their
// client URLs and PIDs once each answers /health.
func startEtcd(tmp string) ([]string, []int, error) {
	var pids []int
	var clients, peers, initial []string
	for i := range 3 {
		clients = append(clients, "http://"+freeAddr())
		peers = append(peers, "http://"+freeAddr())
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	for i := range 3 {
		name := fmt.Sprintf("m%d", i+1)
		logf, err := os.Create(filepath.Join(tmp, "etcd-"+name+".log"))
		if err != nil {
			return nil, nil, err
		}
		cmd := exec.Command("etcd", "--name", name, "--data-dir", filepath.Join(tmp, "etcd-"+name),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--auto-compaction-mode", "revision", "--auto-compaction-retention", "100000",
			"--quota-backend-bytes", strconv.Itoa(8<<30), "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := start(cmd); err != nil {
			return nil, nil, err
		}
		pids = append(pids, cmd.Process.Pid)
	}
	for _, c := range clients {
		if err := waitUp(c + "/health"); err != nil {
			return nil, nil, fmt.Errorf("etcd at %s: %w", c, err)
		}
	}
	return clients, pids, nil
}

func start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	procsMu.Lock()
	procs = append(procs, cmd)
	procsMu.Unlock()
	return nil
}

func waitUp(url string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && !strings.Contains(string(b), `"false"`) {
				return nil
			}
		}
	}
	return errors.New("no answer within 30 s")
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
