package main

// The fan-out benchmark (-fanout): deliveries of one key's changes to -fanout-subs subscribers
// over SSE and over WebSockets, against a trivial net/http SSE broadcaster (bench/baseline -sse)
// doing the same deliveries, in one alternating run. It builds and starts both servers itself
// on loopback and kills them by their PIDs at the end:
//
//	go run ./bench/subscribers -fanout                      # from the repository's root
//	go run ./bench/subscribers -fanout -fanout-subs 10000 -fanout-rounds 3 -fanout-duration 5s
//
// Each round runs the three targets in turn (the broadcaster, Statehub's SSE, Statehub's
// WebSocket). A target's subscribers connect (each its own TCP connection; a WebSocket holds one
// subscription), then two phases of -fanout-duration each:
//   - throughput: the writer keeps -fanout-window changes in flight (it sends change k once
//     (k - window) × subscribers deliveries have arrived): deliveries per second, and the
//     server's CPU time per delivery (utime + stime of /proc/PID/stat);
//   - paced: -fanout-rate changes a second; the p99 of the delivery latency (the change carries
//     the time it was sent) and the deliveries that did not arrive.
//
// The subscribers read raw bytes (HTTP/1.0 streams, WebSocket frames) and find each change by its
// value {"t":<µs>}, so the client's work per delivery is the same for every target; it shares the
// machine with the servers. The process's open-file limit is raised to its hard limit (the
// servers inherit it); -fanout-subs must stay below it.

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	fanoutMode     = flag.Bool("fanout", false, "run the fan-out benchmark (starts its own servers; see fanout.go)")
	fanoutSubs     = flag.Int("fanout-subs", 10000, "subscribers of each target")
	fanoutRounds   = flag.Int("fanout-rounds", 3, "alternating rounds")
	fanoutDuration = flag.Duration("fanout-duration", 5*time.Second, "length of each phase")
	fanoutWindow   = flag.Int("fanout-window", 8, "changes in flight in the throughput phase")
	fanoutRate     = flag.Float64("fanout-rate", 5, "changes a second in the paced phase")
	fanoutOnly     = flag.String("fanout-only", "", "run only the targets whose names contain this (broadcaster, SSE, WebSocket)")
	fanoutBin      = flag.String("statehub", "", "a statehub binary to measure instead of building this tree's (-fanout, -snapshot, -idle)")
)

// fanTarget is one server and transport under test.
type fanTarget struct {
	name    string
	pid     int
	addr    string
	request []byte // sent on a new connection
	ws      bool   // the answer is a WebSocket: read frames
	publish string // the URL a change is POSTed to
}

// fanResult is one target's figures in one round.
type fanResult struct {
	rate   float64 // deliveries a second, throughput phase
	cpu    float64 // server CPU µs per delivery, throughput phase
	p99    time.Duration
	lost   int64
	paced  int64 // deliveries of the paced phase
	pacedC float64
}

func runFanout() error {
	if err := raiseOpenFiles(*fanoutSubs); err != nil {
		return err
	}
	tmp, bin, baseline, err := buildBench()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var procs []*exec.Cmd
	defer func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	}()
	start := func(bin string, args ...string) (int, error) {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		procs = append(procs, cmd)
		return cmd.Process.Pid, nil
	}
	hubAddr, baseAddr := freeAddr(), freeAddr()
	hubPID, err := start(bin, "-addr", hubAddr, "-data", "", "-max-conns", "0", "-log-level", "error")
	if err != nil {
		return err
	}
	basePID, err := start(baseline, "-sse", "-addr", baseAddr)
	if err != nil {
		return err
	}
	for _, u := range []string{"http://" + hubAddr + "/fanout/sse", "http://" + baseAddr + "/publish"} {
		if err := waitPost(u); err != nil {
			return err
		}
	}
	targets := []*fanTarget{
		{name: "broadcaster", pid: basePID, addr: baseAddr, publish: "http://" + baseAddr + "/publish",
			request: []byte("GET /events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")},
		{name: "statehub SSE", pid: hubPID, addr: hubAddr, publish: "http://" + hubAddr + "/fanout/sse",
			request: []byte("GET /fanout/sse HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")},
		{name: "statehub WebSocket", pid: hubPID, addr: hubAddr, publish: "http://" + hubAddr + "/fanout/ws", ws: true,
			request: wsOpen(`{"op":"sub","id":1,"path":"/fanout/ws"}`)},
	}
	fmt.Printf("%d subscribers per target, %d rounds, phases of %v, window %d, paced at %g changes/s\n",
		*fanoutSubs, *fanoutRounds, *fanoutDuration, *fanoutWindow, *fanoutRate)
	results := make(map[string][]fanResult)
	for round := range *fanoutRounds {
		for _, t := range targets {
			if !strings.Contains(t.name, *fanoutOnly) {
				continue
			}
			r, err := fanRound(t)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			results[t.name] = append(results[t.name], r)
			fmt.Printf("round %d %-19s %9.0f deliveries/s, %5.2f µs CPU each; paced: p99 %v, %.2f µs CPU each, %d of %d lost\n",
				round+1, t.name, r.rate, r.cpu, r.p99.Round(100*time.Microsecond), r.pacedC, r.lost, r.paced+r.lost)
		}
	}
	if *fanoutOnly != "" {
		return nil
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
	p99 := func(a, _ fanResult) float64 { return float64(a.p99) / float64(time.Millisecond) }
	fmt.Printf("median ratio of deliveries/s to the broadcaster's: SSE %.2f, WebSocket %.2f\n",
		ratio("statehub SSE", thr, "broadcaster"), ratio("statehub WebSocket", thr, "broadcaster"))
	fmt.Printf("median ratio of CPU per delivery: SSE/broadcaster %.2f, WebSocket/broadcaster %.2f, WebSocket/SSE %.2f\n",
		ratio("statehub SSE", cpu, "broadcaster"), ratio("statehub WebSocket", cpu, "broadcaster"), ratio("statehub WebSocket", cpu, "statehub SSE"))
	fmt.Printf("median paced p99: broadcaster %.1f ms, SSE %.1f ms, WebSocket %.1f ms\n",
		ratio("broadcaster", p99, "broadcaster"), ratio("statehub SSE", p99, "broadcaster"), ratio("statehub WebSocket", p99, "broadcaster"))
	return nil
}

// fanClients are one target's subscribers.
type fanClients struct {
	delivered atomic.Int64
	started   atomic.Int64 // subscribers that have had a delivery
	latency   atomic.Bool  // record latencies
	hist      [100_000]atomic.Int64
	conns     []net.Conn
	wg        sync.WaitGroup
}

const fanBucket = 100 * time.Microsecond

func fanRound(t *fanTarget) (fanResult, error) {
	fc := &fanClients{}
	defer func() {
		for _, c := range fc.conns {
			c.Close()
		}
		fc.wg.Wait()
	}()
	if err := fc.connect(t); err != nil {
		return fanResult{}, err
	}
	pub := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	seq := 0
	publish := func() error {
		seq++
		body := `{"t":` + strconv.FormatInt(time.Now().UnixMicro(), 10) + `}`
		res, err := pub.Post(t.publish, "application/json", strings.NewReader(body))
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
	// Every subscriber has its first delivery before the phases start.
	deadline := time.Now().Add(time.Minute)
	for fc.started.Load() < int64(len(fc.conns)) {
		if time.Now().After(deadline) {
			return fanResult{}, fmt.Errorf("%d of %d subscribers had a delivery within a minute", fc.started.Load(), len(fc.conns))
		}
		if err := publish(); err != nil {
			return fanResult{}, err
		}
		time.Sleep(200 * time.Millisecond)
	}
	fc.settle()
	n := int64(len(fc.conns))
	var r fanResult

	// Throughput: -fanout-window changes in flight.
	base := fc.delivered.Load()
	c0, t0 := cpuTicks(t.pid), time.Now()
	for k := int64(1); time.Since(t0) < *fanoutDuration; k++ {
		for fc.delivered.Load()-base < (k-int64(*fanoutWindow))*n && time.Since(t0) < *fanoutDuration {
			time.Sleep(200 * time.Microsecond)
		}
		if err := publish(); err != nil {
			return r, err
		}
	}
	d, el, c1 := fc.delivered.Load()-base, time.Since(t0), cpuTicks(t.pid)
	r.rate = float64(d) / el.Seconds()
	r.cpu = ticksMicros(c1-c0) / float64(d)
	fc.settle()

	// Paced: -fanout-rate changes a second, each time from the start (no drift).
	base = fc.delivered.Load()
	for i := range fc.hist {
		fc.hist[i].Store(0)
	}
	fc.latency.Store(true)
	c0, t0 = cpuTicks(t.pid), time.Now()
	sent := int64(0)
	for time.Since(t0) < *fanoutDuration {
		time.Sleep(time.Until(t0.Add(time.Duration(float64(sent) / *fanoutRate * float64(time.Second)))))
		if err := publish(); err != nil {
			return r, err
		}
		sent++
	}
	fc.settle()
	c1 = cpuTicks(t.pid)
	fc.latency.Store(false)
	r.paced = fc.delivered.Load() - base
	r.lost = sent*n - r.paced
	r.pacedC = ticksMicros(c1-c0) / float64(max(r.paced, 1))
	r.p99 = fc.quantile(0.99)
	return r, nil
}

// settle waits until no delivery has arrived for half a second (at most 20 s).
func (fc *fanClients) settle() {
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

func (fc *fanClients) quantile(q float64) time.Duration {
	var total int64
	for i := range fc.hist {
		total += fc.hist[i].Load()
	}
	want, seen := int64(q*float64(total)), int64(0)
	for i := range fc.hist {
		seen += fc.hist[i].Load()
		if seen > want {
			return time.Duration(i+1) * fanBucket
		}
	}
	return time.Duration(len(fc.hist)) * fanBucket
}

// connect opens the subscribers, 64 at a time.
func (fc *fanClients) connect(t *fanTarget) error {
	fc.conns = make([]net.Conn, *fanoutSubs)
	sem := make(chan struct{}, 64)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for i := range fc.conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", t.addr)
			if err == nil {
				_, err = c.Write(t.request)
			}
			if err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
				return
			}
			fc.conns[i] = c
			fc.wg.Add(1)
			go fc.read(c, t.ws)
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

var marker = []byte(`{"t":`)

// read counts the deliveries of one subscriber until its connection closes.
func (fc *fanClients) read(c net.Conn, ws bool) {
	defer fc.wg.Done()
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
			if fc.latency.Load() {
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
