// Command keys measures what a million small keys cost Statehub against redis-server, in one run:
// the memory they take, and random GETs of them.
//
//	go run ./bench/keys                                 # 1,000,000 keys, 3 alternating rounds of 5 s
//	go run ./bench/keys -n 200000 -rounds 5 -d 3s -c 32
//
// It builds the binary (go build, into a temporary directory), starts redis-server (no
// persistence, a temporary directory) and Statehub memory only (-data "", no rate limits), each on
// a free port of 127.0.0.1, and loads the same keys /k/000000000000 ... into both: the same names
// and the same bytes of value ({"n":123}-like, 9 to 15 bytes), redis with pipelined SETs, Statehub
// with pipelined HTTP PUTs (each over 8 connections). Then it alternates rounds of random GETs:
// redis-benchmark's GET /k/__rand_int__ -r n against redis and wrk with a script of the same
// random keys against Statehub, the same connections and duration, and prints each round's ratio
// and their median, with the CPU time per GET of each server (/proc/PID/stat) and of each load
// tool. Each round also runs wrk with the same script against the bare net/http counter of
// bench/baseline (a plain http.Server answering a small JSON number to any request): the most a
// net/http server can do on the same machine, against redis and against Statehub. Last it reads the memory of each: redis' INFO memory used_memory, Statehub's
// live heap (go_gc_heap_live_bytes of /.metrics: marked by the last collection, which the GET
// rounds' garbage has triggered), and both processes' resident sets, each before and after the
// load, and prints the growth per key and its ratio.
//
// Every process it starts is killed by its PID when it ends.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	n       = flag.Int("n", 1_000_000, "keys to load")
	conns   = flag.Int("c", 50, "connections of the GET load, for both servers")
	dur     = flag.Duration("d", 5*time.Second, "duration of each GET round")
	rounds  = flag.Int("rounds", 3, "alternating GET rounds")
	loaders = flag.Int("loaders", 8, "connections that load the keys into each server")
	binary  = flag.String("bin", "", "the statehub binary; empty: go build the repository in the current directory")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	for _, tool := range []string{"redis-server", "redis-benchmark", "wrk", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("%s is missing", tool)
		}
	}
	var err error
	tmp, err = os.MkdirTemp("", "statehub-bench-keys-")
	check(err)
	defer cleanup()
	start := func(name string, args ...string) *os.Process {
		cmd := exec.Command(name, args...)
		cmd.Stderr = os.Stderr
		check(cmd.Start())
		procs = append(procs, cmd.Process)
		return cmd.Process
	}

	bin := *binary
	if bin == "" {
		bin = filepath.Join(tmp, "statehub")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			fatalf("go build (run from the repository's root): %v\n%s", err, out)
		}
	}
	bare := filepath.Join(tmp, "baseline")
	if out, err := exec.Command("go", "build", "-o", bare, "./bench/baseline").CombinedOutput(); err != nil {
		fatalf("go build ./bench/baseline (run from the repository's root): %v\n%s", err, out)
	}
	redisAddr, hubAddr, bareAddr := freeAddr(), freeAddr(), freeAddr()
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	redis := start("redis-server", "--bind", "127.0.0.1", "--port", redisPort, "--save", "", "--appendonly", "no",
		"--dir", tmp, "--logfile", filepath.Join(tmp, "redis.log"))
	hub := start(bin, "-addr", hubAddr, "-data", "", "-rate", "0", "-token-rate", "0", "-max-conns", "0",
		"-open", "-log-level", "warn")
	bareProc := start(bare, "-addr", bareAddr)
	if err := waitUp(bareAddr); err != nil {
		fatalf("bench/baseline: %v", err)
	}
	if err := waitUp(redisAddr); err != nil {
		fatalf("redis: %v", err)
	}
	if err := waitUp(hubAddr); err != nil {
		fatalf("statehub: %v", err)
	}

	redisBefore, hubBefore := redisMemory(redisAddr, redis.Pid), hubMemory(hubAddr, hub.Pid)
	t0 := time.Now()
	if err := load(redisAddr, redisSet, redisReply); err != nil {
		fatalf("loading redis: %v", err)
	}
	t1 := time.Now()
	if err := load(hubAddr, httpPut, httpReply); err != nil {
		fatalf("loading statehub: %v", err)
	}
	t2 := time.Now()
	fmt.Printf("loaded %d keys: redis in %v, statehub in %v\n", *n, t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond))
	if got := redisCommand(redisAddr, "DBSIZE"); got != ":"+strconv.Itoa(*n) {
		fatalf("redis holds %s keys, not %d", got, *n)
	}

	script := filepath.Join(tmp, "get.lua")
	check(os.WriteFile(script, []byte(fmt.Sprintf(`math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/k/%%012d", math.random(0, %d)))
end
`, *n-1)), 0o644))
	var ratios, cpuRatios, bareRatios, bareCPURatios, hubBareRatios []float64
	for round := 1; round <= *rounds; round++ {
		r, err := measure(redis.Pid, func() (float64, int, *os.ProcessState, error) { return redisGets(redisAddr) })
		if err != nil {
			fatalf("redis-benchmark: %v", err)
		}
		h, err := measure(hub.Pid, func() (float64, int, *os.ProcessState, error) { return wrkGets(hubAddr, script) })
		if err != nil {
			fatalf("wrk: %v", err)
		}
		b, err := measure(bareProc.Pid, func() (float64, int, *os.ProcessState, error) { return wrkGets(bareAddr, script) })
		if err != nil {
			fatalf("wrk: %v", err)
		}
		ratios = append(ratios, h.rate/r.rate)
		cpuRatios = append(cpuRatios, r.serverCPU/h.serverCPU)
		bareRatios = append(bareRatios, b.rate/r.rate)
		bareCPURatios = append(bareCPURatios, r.serverCPU/b.serverCPU)
		hubBareRatios = append(hubBareRatios, h.rate/b.rate)
		fmt.Printf("round %d: random GETs/s redis %.0f, statehub %.0f (ratio %.2f), bare net/http %.0f (ratio %.2f); "+
			"server CPU µs per GET: redis %.1f, statehub %.1f, bare %.1f; load tool's: redis-benchmark %.1f, wrk %.1f and %.1f\n",
			round, r.rate, h.rate, h.rate/r.rate, b.rate, b.rate/r.rate, r.serverCPU, h.serverCPU, b.serverCPU, r.toolCPU, h.toolCPU, b.toolCPU)
	}
	fmt.Printf("median ratio of random GETs statehub/redis: %.2f (%d connections, %v rounds); in server CPU per GET (redis/statehub): %.2f\n",
		median(ratios), *conns, *dur, median(cpuRatios))
	fmt.Printf("the bare net/http server against redis: median ratio %.2f in GETs/s, %.2f in server CPU per GET; statehub/bare: %.2f in GETs/s\n",
		median(bareRatios), median(bareCPURatios), median(hubBareRatios))

	redisAfter, hubAfter := redisMemory(redisAddr, redis.Pid), hubMemory(hubAddr, hub.Pid)
	perKey := func(after, before float64) float64 { return (after - before) / float64(*n) }
	fmt.Printf("redis used_memory: %.1f MiB, %.1f bytes per key; resident %.1f MiB, %.1f bytes per key\n",
		redisAfter.used/(1<<20), perKey(redisAfter.used, redisBefore.used), redisAfter.rss/(1<<20), perKey(redisAfter.rss, redisBefore.rss))
	fmt.Printf("statehub live heap: %.1f MiB, %.1f bytes per key; resident %.1f MiB, %.1f bytes per key\n",
		hubAfter.used/(1<<20), perKey(hubAfter.used, hubBefore.used), hubAfter.rss/(1<<20), perKey(hubAfter.rss, hubBefore.rss))
	fmt.Printf("ratio statehub/redis per key: %.2f (live heap / used_memory), %.2f (resident)\n",
		perKey(hubAfter.used, hubBefore.used)/perKey(redisAfter.used, redisBefore.used),
		perKey(hubAfter.rss, hubBefore.rss)/perKey(redisAfter.rss, redisBefore.rss))
}

// median returns the median of xs, the lower of the two middle ones for an even count.
func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// The processes started and the temporary directory, which cleanup removes.
var (
	procs []*os.Process
	tmp   string
)

func cleanup() {
	for _, p := range procs {
		p.Kill()
		p.Wait()
	}
	procs = nil
	if tmp != "" {
		os.RemoveAll(tmp)
	}
}

func fatalf(format string, args ...any) {
	cleanup()
	log.Fatalf(format, args...)
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

func waitUp(addr string) error {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

// value is the value of key i: the same bytes in both servers.
func value(i int) string { return `{"n":` + strconv.Itoa(i%1000) + `}` }

func keyName(i int) string { return fmt.Sprintf("/k/%012d", i) }

func redisSet(w *bufio.Writer, i int) {
	k, v := keyName(i), value(i)
	fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
}

func redisReply(r *bufio.Reader) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+OK\r\n" {
		return fmt.Errorf("SET answered %q", line)
	}
	return nil
}

func httpPut(w *bufio.Writer, i int) {
	v := value(i)
	fmt.Fprintf(w, "PUT %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", keyName(i), len(v), v)
}

func httpReply(r *bufio.Reader) error {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT answered %s: %s", resp.Status, body)
	}
	return nil
}

// load writes keys 0..n-1 over *loaders connections, each pipelining its share (a writer and a
// reader of the answers per connection).
func load(addr string, write func(*bufio.Writer, int), read func(*bufio.Reader) error) error {
	var wg sync.WaitGroup
	errs := make([]error, *loaders)
	for c := range *loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs[c] = err
				return
			}
			defer conn.Close()
			var mine []int
			for i := c; i < *n; i += *loaders {
				mine = append(mine, i)
			}
			// At most window requests in flight, so neither side's buffers fill.
			const window = 256
			sem := make(chan struct{}, window)
			done := make(chan error, 1)
			go func() {
				r := bufio.NewReaderSize(conn, 64<<10)
				for range mine {
					if err := read(r); err != nil {
						done <- err
						conn.Close() // which ends the writer's wait
						return
					}
					<-sem
				}
				done <- nil
			}()
			w := bufio.NewWriterSize(conn, 64<<10)
			for _, i := range mine {
				select {
				case sem <- struct{}{}:
				default:
					if err := w.Flush(); err != nil {
						errs[c] = err
						return
					}
					select {
					case sem <- struct{}{}:
					case err := <-done:
						errs[c] = err
						return
					}
				}
				write(w, i)
			}
			if err := w.Flush(); err != nil {
				errs[c] = errors.Join(err, <-done)
				return
			}
			errs[c] = <-done
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// redisCommand sends one inline command and returns the first line of the answer.
func redisCommand(addr, cmd string) string {
	conn, err := net.Dial("tcp", addr)
	check(err)
	defer conn.Close()
	fmt.Fprintf(conn, "%s\r\n", cmd)
	line, err := bufio.NewReader(conn).ReadString('\n')
	check(err)
	return strings.TrimSpace(line)
}

type memory struct{ used, rss float64 }

func redisMemory(addr string, pid int) memory {
	conn, err := net.Dial("tcp", addr)
	check(err)
	defer conn.Close()
	fmt.Fprintf(conn, "INFO memory\r\n")
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	check(err)
	size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	check(err)
	body := make([]byte, size)
	_, err = io.ReadFull(r, body)
	check(err)
	var m memory
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			m.used, err = strconv.ParseFloat(v, 64)
			check(err)
		}
	}
	m.rss = resident(pid)
	return m
}

func hubMemory(addr string, pid int) memory {
	req, err := http.NewRequest("GET", "http://"+addr+"/.metrics", nil)
	check(err)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	check(err)
	var m memory
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "go_gc_heap_live_bytes "); ok {
			m.used, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
			check(err)
		}
	}
	if m.used == 0 {
		fatalf("no go_gc_heap_live_bytes in statehub's /.metrics (%s)", resp.Status)
	}
	m.rss = resident(pid)
	return m
}

// resident returns a process's resident set in bytes (VmRSS of /proc/PID/status).
func resident(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	check(err)
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			check(err)
			return kb * 1024
		}
	}
	fatalf("no VmRSS for process %d", pid)
	return 0
}

// redisGets runs redis-benchmark's random GETs for about *dur and returns GETs per second, how
// many it made and redis-benchmark's process state. It runs two threads, as wrk does (wrkGets).
func redisGets(addr string) (float64, int, *os.ProcessState, error) {
	host, port, _ := net.SplitHostPort(addr)
	// redis-benchmark runs a number of requests, not a time: take about *dur at redis' last rate.
	requests := int(lastRedisRate * dur.Seconds())
	cmd := exec.Command("redis-benchmark", "-h", host, "-p", port, "-c", strconv.Itoa(*conns), "--threads", "2",
		"-n", strconv.Itoa(requests), "-r", strconv.Itoa(*n), "--csv", "GET", "/k/__rand_int__")
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, nil, err
	}
	// --csv: a header line, then "GET /k/__rand_int__","rps",...
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Split(lines[len(lines)-1], ",")
	if len(fields) < 2 {
		return 0, 0, nil, fmt.Errorf("unexpected output %q", out)
	}
	rate, err := strconv.ParseFloat(strings.Trim(fields[1], `"`), 64)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("unexpected output %q", out)
	}
	lastRedisRate = rate
	return rate, requests, cmd.ProcessState, nil
}

var lastRedisRate = 50_000.0

// wrkGets runs wrk with the random-GET script for *dur and returns requests per second, how many
// it made and wrk's process state.
func wrkGets(addr, script string) (float64, int, *os.ProcessState, error) {
	cmd := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(*conns), "-d"+dur.String(), "-s", script, "http://"+addr)
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, nil, err
	}
	if bytes.Contains(out, []byte("Non-2xx")) {
		return 0, 0, nil, fmt.Errorf("wrk got errors: %s", out)
	}
	rate, requests := -1.0, -1
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Requests/sec:"); ok {
			if rate, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return 0, 0, nil, fmt.Errorf("unexpected output %q", out)
			}
		}
		if f := strings.Fields(line); len(f) > 2 && f[1] == "requests" && f[2] == "in" { // "123456 requests in 4.00s, ..."
			if requests, err = strconv.Atoi(f[0]); err != nil {
				return 0, 0, nil, fmt.Errorf("unexpected output %q", out)
			}
		}
	}
	if rate < 0 || requests <= 0 {
		return 0, 0, nil, fmt.Errorf("unexpected output %q", out)
	}
	return rate, requests, cmd.ProcessState, nil
}

// round is one load tool's run against one server: its rate, and the CPU time per request of the
// server and of the load tool, in microseconds.
type round struct{ rate, serverCPU, toolCPU float64 }

// measure runs a load (which returns its rate, its number of requests and its process state) and
// reads the server's CPU time around it.
func measure(server int, load func() (float64, int, *os.ProcessState, error)) (round, error) {
	before := cpuTime(server)
	rate, requests, tool, err := load()
	if err != nil {
		return round{}, err
	}
	perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(requests) }
	return round{rate, perReq(cpuTime(server) - before), perReq(tool.UserTime() + tool.SystemTime())}, nil
}

// cpuTime returns a process's CPU time so far, user and system (/proc/PID/stat, in clock ticks of
// 10 ms): steadier than requests per second, as other work on the machine takes cores from a
// server but adds nothing to its CPU time.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	check(err)
	// After the command's name in parentheses: state is field 3, utime 14 and stime 15.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		fatalf("unexpected /proc/%d/stat: %q", pid, data)
	}
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	check(err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	check(err)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
