package main

// The fan-out benchmark (-fanout): deliveries of one key's changes to -fanout-subs subscribers
// over SSE and over WebSockets, against a trivial net/http SSE broadcaster (bench/baseline -sse)
// doing the same deliveries, in one alternating run. It builds and starts the servers itself on
// loopback (a Statehub for each transport, so that each holds only its own subscribers' sockets
// and its CPU time is theirs) and kills them by their PIDs at the end:
//
//	go run ./bench/subscribers -fanout                      # from the repository's root
//	go run ./bench/subscribers -fanout -fanout-subs 10000 -fanout-rounds 10 -fanout-duration 2s
//
// The three targets (the broadcaster, Statehub's SSE, Statehub's WebSocket) each get their
// subscribers first, all connected at once: each target's in a child process of this command
// (-fanout-client), so that every process stays within the open-file limit, each subscriber on
// its own TCP connection (a WebSocket holds one subscription); every subscriber has had a
// delivery before the rounds start. Each of -fanout-rounds rounds then measures the targets in
// turn, each round starting with the next one, so that the machine's other load, which swings by
// a quarter from one second to the next, falls on all three alike:
//   - throughput, -fanout-duration for each target: the writer keeps -fanout-window changes in
//     flight (it sends change k once (k - window) × subscribers deliveries have arrived):
//     deliveries per second, and the server's CPU time per delivery (utime + stime of
//     /proc/PID/stat). The next target starts once every change sent has reached every
//     subscriber;
//   - paced, -fanout-duration for all three together: each target gets -fanout-rate changes a
//     second, the targets' changes spread evenly over each period; the latency of every delivery
//     (the change carries the time it was sent), the server's CPU time per delivery, and the
//     deliveries that did not arrive.
//
// It prints each round's figures, the median over the rounds of each round's ratios, and each
// target's latencies over all its paced deliveries. -compare BIN adds BIN's SSE and WebSocket as
// two more targets, and prints this tree's ratios to them, for a before-and-after comparison:
//
//	go run ./bench/subscribers -fanout -fanout-only WebSocket -compare /tmp/statehub-before -fanout-rounds 20
//
// The subscribers read raw bytes (HTTP/1.0 streams, WebSocket frames) and find each change by its
// value {"t":<µs>}, so the client's work per delivery is the same for every target; they share
// the machine with the servers. A child counts its deliveries and their latencies in a file this
// process maps too (fanCounters).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

var (
	fanoutMode     = flag.Bool("fanout", false, "run the fan-out benchmark (starts its own servers; see fanout.go)")
	fanoutSubs     = flag.Int("fanout-subs", 10000, "subscribers of each target")
	fanoutRounds   = flag.Int("fanout-rounds", 10, "alternating rounds")
	fanoutDuration = flag.Duration("fanout-duration", 2*time.Second, "length of each target's throughput phase, and of each round's paced phase")
	fanoutWindow   = flag.Int("fanout-window", 8, "changes in flight in the throughput phase")
	fanoutRate     = flag.Float64("fanout-rate", 1, "changes a second to each target in the paced phase")
	fanoutOnly     = flag.String("fanout-only", "", "run only the targets whose names contain this (broadcaster, SSE, WebSocket)")
	fanoutBin      = flag.String("statehub", "", "a statehub binary to measure instead of building this tree's (-fanout, -snapshot, -idle)")
	fanoutCompare  = flag.String("compare", "", "a second statehub binary measured beside the first (-fanout): two more targets, its SSE and WebSocket")

	// The child process of one target (started by -fanout).
	fanoutClient   = flag.String("fanout-client", "", "internal: hold the subscribers of the target of this name")
	fanoutAddr     = flag.String("fanout-addr", "", "internal: the child's server")
	fanoutCounters = flag.String("fanout-counters", "", "internal: the file of the child's counters")
)

// fanTarget is one server and transport under test, with its subscribers.
type fanTarget struct {
	name    string
	bin     string // the server's binary, for Statehub's targets
	pid     int    // the server's
	addr    string // the server's
	path    string // the key the changes are written to
	publish string // the URL a change is POSTed to

	fc      *fanCounters
	pub     *http.Client
	sent    int64 // changes sent since the subscribers all had one
	missing int64 // deliveries of those that never arrived
}

// request is what a subscriber of target name sends on its new connection, and whether the
// answer is a WebSocket.
func fanRequest(name string) (req []byte, ws bool) {
	switch {
	case name == "broadcaster":
		return []byte("GET /events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"), false
	case strings.HasSuffix(name, "SSE"):
		return []byte("GET /fanout HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"), false
	}
	return wsOpen(`{"op":"sub","id":1,"path":"/fanout"}`), true
}

// fanResult is one target's figures in one throughput phase.
type fanResult struct {
	rate float64 // deliveries a second
	cpu  float64 // server CPU µs per delivery
}

func runFanout() error {
	if *fanoutClient != "" {
		return runFanoutClient()
	}
	if err := raiseOpenFiles(*fanoutSubs); err != nil {
		return err
	}
	tmp, bin, baseline, err := buildBench()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	}()
	start := func(bin string, args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(bin, args...)
		if bin == self { // a child's errors; the servers' lines are of no use here
			cmd.Stderr = os.Stderr
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
		return cmd, nil
	}
	all := []*fanTarget{{name: "broadcaster"}, {name: "statehub SSE", bin: bin}, {name: "statehub WebSocket", bin: bin}}
	if *fanoutCompare != "" {
		all = append(all, &fanTarget{name: "compared SSE", bin: *fanoutCompare}, &fanTarget{name: "compared WebSocket", bin: *fanoutCompare})
	}
	var targets []*fanTarget
	for _, t := range all {
		if !strings.Contains(t.name, *fanoutOnly) {
			continue
		}
		t.addr = freeAddr()
		var server *exec.Cmd
		if t.name == "broadcaster" {
			t.publish = "http://" + t.addr + "/publish"
			server, err = start(baseline, "-sse", "-addr", t.addr)
		} else {
			t.publish = "http://" + t.addr + "/fanout"
			server, err = start(t.bin, "-addr", t.addr, "-data", "", "-max-conns", "0", "-log-level", "error")
		}
		if err != nil {
			return err
		}
		t.pid = server.Process.Pid
		if err := waitPost(t.publish); err != nil {
			return err
		}
		targets = append(targets, t)
	}
	fmt.Printf("%d subscribers per target, %d rounds, throughput phases of %v (window %d), paced phases of %v at %g changes/s to each target\n",
		*fanoutSubs, *fanoutRounds, *fanoutDuration, *fanoutWindow, *fanoutDuration, *fanoutRate)
	for i, t := range targets {
		file := filepath.Join(tmp, "counters-"+strconv.Itoa(i))
		if t.fc, err = mapCounters(file, true); err != nil {
			return err
		}
		t.pub = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		child, err := start(self, "-fanout", "-fanout-client", t.name, "-fanout-addr", t.addr,
			"-fanout-counters", file, "-fanout-subs", strconv.Itoa(*fanoutSubs))
		if err != nil {
			return err
		}
		if err := t.connect(child); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	results := make(map[string][]fanResult)
	for round := range *fanoutRounds {
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			r, err := t.throughput()
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			results[t.name] = append(results[t.name], r)
			fmt.Printf("round %d %-19s %9.0f deliveries/s, %5.2f µs CPU each\n", round+1, t.name, r.rate, r.cpu)
		}
		if err := paced(targets); err != nil {
			return err
		}
	}
	for _, t := range targets {
		fc := t.fc
		fmt.Printf("%-19s paced: p50 %v, p99 %v, max %v; %.2f µs CPU each; %d of %d deliveries lost\n", t.name,
			fc.quantile(0.5), fc.quantile(0.99), fc.quantile(1), ticksMicros(fc.pacedCPU)/float64(max(fc.paced, 1)), fc.lost, fc.paced)
	}
	ratio := func(name string, f func(a, b fanResult) float64, base string) float64 {
		var rs []float64
		for i := range results[name] {
			rs = append(rs, f(results[name][i], results[base][i]))
		}
		slices.Sort(rs)
		return rs[(len(rs)-1)/2]
	}
	thr := func(a, b fanResult) float64 { return a.rate / b.rate }
	cpu := func(a, b fanResult) float64 { return a.cpu / b.cpu }
	if *fanoutCompare != "" {
		for _, tr := range []string{"SSE", "WebSocket"} {
			if results["compared "+tr] != nil && results["statehub "+tr] != nil {
				lower := 0
				for i, r := range results["statehub "+tr] {
					if r.cpu < results["compared "+tr][i].cpu {
						lower++
					}
				}
				fmt.Printf("%s, median ratio of this tree's to the compared binary's: %.2f in deliveries/s, %.2f in CPU per delivery (lower in %d of %d rounds)\n", tr,
					ratio("statehub "+tr, thr, "compared "+tr), ratio("statehub "+tr, cpu, "compared "+tr), lower, len(results["statehub "+tr]))
			}
		}
	}
	if results["broadcaster"] == nil || results["statehub SSE"] == nil || results["statehub WebSocket"] == nil {
		return nil
	}
	fmt.Printf("median ratio of deliveries/s to the broadcaster's: SSE %.2f, WebSocket %.2f\n",
		ratio("statehub SSE", thr, "broadcaster"), ratio("statehub WebSocket", thr, "broadcaster"))
	fmt.Printf("median ratio of CPU per delivery: SSE/broadcaster %.2f, WebSocket/broadcaster %.2f, WebSocket/SSE %.2f\n",
		ratio("statehub SSE", cpu, "broadcaster"), ratio("statehub WebSocket", cpu, "broadcaster"), ratio("statehub WebSocket", cpu, "statehub SSE"))
	return nil
}

// send posts one change, its value the time it is sent.
func (t *fanTarget) send() error {
	t.sent++
	body := `{"t":` + strconv.FormatInt(time.Now().UnixMicro(), 10) + `}`
	res, err := t.pub.Post(t.publish, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %s", t.publish, res.Status)
	}
	return nil
}

// expected is how many deliveries the changes sent so far make, less those that never arrived.
func (t *fanTarget) expected() int64 { return t.sent*int64(*fanoutSubs) - t.missing }

// connect waits until the child holds every subscriber, then sends changes until every one has
// had a delivery.
func (t *fanTarget) connect(child *exec.Cmd) error {
	fc, n := t.fc, int64(*fanoutSubs)
	exited := make(chan error, 1)
	go func() { _, err := child.Process.Wait(); exited <- err }()
	deadline := time.Now().Add(2 * time.Minute)
	for fc.connected.Load() < n {
		select {
		case <-exited:
			return errors.New("the subscribers' process ended")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscribers connected within two minutes", fc.connected.Load(), n)
		}
	}
	deadline = time.Now().Add(time.Minute)
	for fc.started.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscribers had a delivery within a minute", fc.started.Load(), n)
		}
		if err := t.send(); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Those sent before a subscriber connected never reach it: count from here.
	fc.settle()
	t.sent = 0
	fc.delivered.Store(0)
	return nil
}

// drain waits until every change sent has reached every subscriber, for up to 20 s, and returns
// how many deliveries did not arrive (counted as missing from then on).
func (t *fanTarget) drain() int64 {
	deadline := time.Now().Add(20 * time.Second)
	for t.fc.delivered.Load() < t.expected() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	lost := t.expected() - t.fc.delivered.Load()
	t.missing += lost
	return lost
}

// throughput runs one throughput phase of t.
func (t *fanTarget) throughput() (fanResult, error) {
	fc, n := t.fc, int64(*fanoutSubs)
	base := fc.delivered.Load()
	c0, t0 := cpuTicks(t.pid), time.Now()
	for k := int64(1); time.Since(t0) < *fanoutDuration; k++ {
		for fc.delivered.Load()-base < (k-int64(*fanoutWindow))*n && time.Since(t0) < *fanoutDuration {
			time.Sleep(200 * time.Microsecond)
		}
		if err := t.send(); err != nil {
			return fanResult{}, err
		}
	}
	d, el, c1 := fc.delivered.Load()-base, time.Since(t0), cpuTicks(t.pid)
	if lost := t.drain(); lost != 0 {
		return fanResult{}, fmt.Errorf("%d deliveries of the throughput phase did not arrive", lost)
	}
	return fanResult{rate: float64(d) / el.Seconds(), cpu: ticksMicros(c1-c0) / float64(d)}, nil
}

// paced runs one paced phase of every target: each gets -fanout-rate changes a second, the
// targets' changes spread evenly over each period (no drift: each is timed from the start).
func paced(targets []*fanTarget) error {
	period := time.Duration(float64(time.Second) / *fanoutRate)
	before, cpu := make([]int64, len(targets)), make([]int64, len(targets))
	for i, t := range targets {
		before[i], cpu[i] = t.expected(), cpuTicks(t.pid)
		t.fc.latency.Store(1)
	}
	t0 := time.Now()
send:
	for k := 0; ; k++ {
		for i, t := range targets {
			at := time.Duration(k)*period + time.Duration(i)*period/time.Duration(len(targets))
			if at >= *fanoutDuration {
				break send
			}
			time.Sleep(time.Until(t0.Add(at)))
			if err := t.send(); err != nil {
				return err
			}
		}
	}
	for i, t := range targets {
		lost := t.drain()
		t.fc.latency.Store(0)
		t.fc.lost += lost
		t.fc.paced += t.expected() + lost - before[i]
		t.fc.pacedCPU += cpuTicks(t.pid) - cpu[i]
	}
	return nil
}

// fanCounters are one target's subscribers' counts, in a file mapped by the benchmark and by the
// child process holding the subscribers (MAP_SHARED), so that both read and write them with
// atomic operations.
type fanCounters struct {
	delivered *atomic.Int64 // deliveries
	started   *atomic.Int64 // subscribers that have had a delivery
	connected *atomic.Int64 // subscribers connected
	latency   *atomic.Int64 // non-zero: record the latencies
	hist      []atomic.Int64

	// The benchmark's own, over the paced phases: deliveries, those lost, the server's CPU
	// time in clock ticks.
	paced, lost, pacedCPU int64
}

const (
	fanBucket = 100 * time.Microsecond
	fanSlots  = 8       // counters before the histogram
	fanHist   = 100_000 // latency buckets of fanBucket
)

// mapCounters maps the counters' file, creating it when create is set.
func mapCounters(path string, create bool) (*fanCounters, error) {
	size := (fanSlots + fanHist) * 8
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if create {
		if err := f.Truncate(int64(size)); err != nil {
			return nil, err
		}
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	w := unsafe.Slice((*atomic.Int64)(unsafe.Pointer(&b[0])), size/8) // page-aligned: 8-byte aligned
	return &fanCounters{delivered: &w[0], started: &w[1], connected: &w[2], latency: &w[3], hist: w[fanSlots:]}, nil
}

// settle waits until no delivery has arrived for half a second (at most 20 s).
func (fc *fanCounters) settle() {
	last := fc.delivered.Load()
	for i := 0; i < 40; i++ {
		time.Sleep(500 * time.Millisecond)
		now := fc.delivered.Load()
		if now == last {
			return
		}
		last = now
	}
}

// quantile is the q-quantile of the recorded latencies (1: the largest), to fanBucket.
func (fc *fanCounters) quantile(q float64) time.Duration {
	var total int64
	for i := range fc.hist {
		total += fc.hist[i].Load()
	}
	want, seen := min(int64(q*float64(total)), total-1), int64(0)
	for i := range fc.hist {
		seen += fc.hist[i].Load()
		if seen > want {
			return time.Duration(i+1) * fanBucket
		}
	}
	return time.Duration(len(fc.hist)) * fanBucket
}

// runFanoutClient is the child process of one target (-fanout-client): it opens -fanout-subs
// subscribers, 64 at a time, counts their deliveries in the counters' file and runs until the
// benchmark kills it.
func runFanoutClient() error {
	fc, err := mapCounters(*fanoutCounters, false)
	if err != nil {
		return err
	}
	req, ws := fanRequest(*fanoutClient)
	sem := make(chan struct{}, 64)
	errs := make(chan error, 1)
	for range *fanoutSubs {
		sem <- struct{}{}
		go func() {
			c, err := net.Dial("tcp", *fanoutAddr)
			if err == nil {
				_, err = c.Write(req)
			}
			<-sem
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			fc.connected.Add(1)
			fc.read(c, ws)
		}()
	}
	return <-errs
}

var marker = []byte(`{"t":`)

// read counts the deliveries of one subscriber until its connection closes.
func (fc *fanCounters) read(c net.Conn, ws bool) {
	started := false
	seen := func(p []byte) []byte { // counts the changes in p; returns an unfinished tail
		now := time.Now().UnixMicro()
		for {
			i := bytes.Index(p, marker)
			if i < 0 {
				return p[max(0, len(p)-len(marker)+1):]
			}
			end := bytes.IndexByte(p[i:], '}')
			if end < 0 {
				return p[i:]
			}
			t, err := strconv.ParseInt(string(p[i+len(marker):i+end]), 10, 64)
			p = p[i+end+1:]
			if err != nil {
				continue
			}
			fc.delivered.Add(1)
			if !started {
				started = true
				fc.started.Add(1)
			}
			if fc.latency.Load() != 0 {
				b := min(int((now-t)*int64(time.Microsecond)/int64(fanBucket)), len(fc.hist)-1)
				fc.hist[max(b, 0)].Add(1)
			}
		}
	}
	if !ws {
		buf := make([]byte, 16<<10)
		k := 0
		for {
			n, err := c.Read(buf[k:])
			if err != nil {
				return
			}
			tail := seen(buf[:k+n])
			k = copy(buf, tail)
		}
	}
	br := bufio.NewReaderSize(c, 16<<10)
	// The upgrade's answer, up to its blank line.
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	var payload []byte
	for {
		op, p, err := readFrame(br, payload[:0])
		if err != nil {
			return
		}
		payload = p
		switch op {
		case 0x1:
			seen(p)
		case 0x9: // ping: answer with a pong
			if _, err := c.Write(wsFrame(0xA, p)); err != nil {
				return
			}
		case 0x8:
			return
		}
	}
}

// readFrame reads one unmasked WebSocket frame (the server's) into buf.
func readFrame(br *bufio.Reader, buf []byte) (op byte, p []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 64<<20 {
		return 0, nil, errors.New("frame too large")
	}
	p = slices.Grow(buf, int(n))[:n]
	_, err = io.ReadFull(br, p)
	return h[0] & 0x0f, p, err
}

// wsFrame is a masked client frame (payload under 126 bytes).
func wsFrame(op byte, p []byte) []byte {
	key := rand.Uint32()
	b := []byte{0x80 | op, 0x80 | byte(len(p)), byte(key >> 24), byte(key >> 16), byte(key >> 8), byte(key)}
	for i, c := range p {
		b = append(b, c^b[2+i%4])
	}
	return b
}

// wsOpen is a WebSocket upgrade request followed by the first message.
func wsOpen(msg string) []byte {
	req := "GET /.ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	return append([]byte(req), wsFrame(0x1, []byte(msg))...)
}

// waitPost posts to url until it answers, for up to a minute (a restore takes a while).
func waitPost(url string) error {
	for range 600 {
		res, err := http.Post(url, "application/json", strings.NewReader(`{"t":0}`))
		if err == nil {
			res.Body.Close()
			if res.StatusCode < 300 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s", url)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cpuTicks is the utime + stime of a process, in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// ticksMicros converts clock ticks (100 a second on Linux) to µs.
func ticksMicros(t int64) float64 { return float64(t) * 1e4 }
