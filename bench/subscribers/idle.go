package main

// The idle-socket benchmark (-idle): what an idle WebSocket with one subscription costs Statehub,
// against a bare coder/websocket server (bench/baseline -ws) holding as many sockets, in one
// alternating run. It builds both, and for each round and target starts a fresh server on
// loopback, opens -idle-sockets sockets, reads the server's /.metrics before and after, and kills
// the server by its PID:
//
//	go run ./bench/subscribers -idle                        # from the repository's root
//	go run ./bench/subscribers -idle -idle-sockets 1000 -idle-rounds 3
//
// Each socket sends one message, {"op":"sub","id":1,"path":"/bench/idle/"}, in the upgrade
// request's first packet (with the admin token in its Authorization header). Statehub answers it
// and starts the subscription; the bare server answers with the message's copy. Once every socket
// has its answer (Statehub's "ready" event) and a second has passed, the figures are the growth
// per socket of the server's process_resident_memory_bytes, go_memstats_heap_inuse_bytes,
// go_memstats_stack_inuse_bytes and go_goroutines; the ratio is Statehub's over the bare server's
// in the same round. The heap counts garbage not yet collected, so its figure moves between rounds
// more than the resident set's. The process's open-file limit is raised to its hard limit (the
// servers inherit it); -idle-sockets must stay below it.

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/statehub/statehub/bench/scrape"
)

var (
	idleMode    = flag.Bool("idle", false, "run the idle-socket benchmark against a bare coder/websocket server (starts its own servers; see idle.go)")
	idleSockets = flag.Int("idle-sockets", 10000, "sockets per target (-idle)")
	idleRounds  = flag.Int("idle-rounds", 3, "alternating rounds (-idle)")
)

const idleToken = "bench-idle-admin-token-0123456789"

// idleTarget is one server of the idle-socket benchmark.
type idleTarget struct {
	name   string
	args   []string // the command line; -addr is added
	token  string   // for /.metrics
	answer []byte   // a socket is set up once a message holding this arrives
}

// idleFigures is the growth per socket of one target in one round.
type idleFigures struct {
	rss, heap, stack, goroutines float64
}

var idleMetrics = []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines"}

func runIdle() error {
	if err := raiseOpenFiles(*idleSockets); err != nil {
		return err
	}
	dir, statehub, baseline, err := buildBench()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	targets := []idleTarget{
		{name: "bare coder/websocket", args: []string{baseline, "-ws"}, answer: []byte(`"op":"sub"`)},
		{name: "statehub", args: []string{statehub, "-data", "", "-max-conns", "0", "-admin-token", idleToken, "-log-level", "error"},
			token: idleToken, answer: []byte(`"type":"ready"`)},
	}
	fmt.Printf("%d idle WebSockets with one subscription per target, %d alternating rounds; growth per socket:\n", *idleSockets, *idleRounds)
	var ratios [4][]float64
	for round := range *idleRounds {
		var figs [2]idleFigures
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			f, err := idleRound(targets[i])
			if err != nil {
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
			figs[i] = f
			fmt.Printf("round %d %-21s RSS %6.1f KiB, heap %6.1f KiB, stacks %5.1f KiB, %4.2f goroutines\n",
				round+1, targets[i].name, f.rss/1024, f.heap/1024, f.stack/1024, f.goroutines)
		}
		ratios[0] = append(ratios[0], figs[1].rss/figs[0].rss)
		ratios[1] = append(ratios[1], figs[1].heap/figs[0].heap)
		ratios[2] = append(ratios[2], figs[1].stack/figs[0].stack)
		ratios[3] = append(ratios[3], figs[1].goroutines/figs[0].goroutines)
	}
	med := func(rs []float64) float64 {
		slices.Sort(rs)
		return rs[(len(rs)-1)/2]
	}
	fmt.Printf("median ratio statehub / bare per socket: RSS %.2f, heap %.2f, stacks %.2f, goroutines %.2f\n",
		med(ratios[0]), med(ratios[1]), med(ratios[2]), med(ratios[3]))
	return nil
}

// idleRound starts t's server, opens the sockets, and returns the growth per socket.
func idleRound(t idleTarget) (idleFigures, error) {
	addr := freeAddr()
	cmd := exec.Command(t.args[0], append(t.args[1:], "-addr", addr)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return idleFigures{}, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	base := "http://" + addr
	var before map[string]float64
	var err error
	for range 100 {
		if before, err = scrape.Metrics(base, t.token); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return idleFigures{}, err
	}

	req := []byte("GET /.ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + idleToken + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	req = append(req, wsFrame(0x1, []byte(`{"op":"sub","id":1,"path":"/bench/idle/"}`))...)
	conns := make([]net.Conn, *idleSockets)
	var ready atomic.Int64
	var wg sync.WaitGroup
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		wg.Wait()
	}()
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_, err = c.Write(req)
		}
		if err != nil {
			return idleFigures{}, fmt.Errorf("socket %d: %w", i, err)
		}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			idleRead(c, t.answer, &ready)
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for ready.Load() < int64(len(conns)) {
		if time.Now().After(deadline) {
			return idleFigures{}, fmt.Errorf("%d of %d sockets were answered within 2 minutes", ready.Load(), len(conns))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	after, err := scrape.Metrics(base, t.token)
	if err != nil {
		return idleFigures{}, err
	}
	per := func(m string) float64 { return (after[m] - before[m]) / float64(len(conns)) }
	return idleFigures{rss: per(idleMetrics[0]), heap: per(idleMetrics[1]), stack: per(idleMetrics[2]), goroutines: per(idleMetrics[3])}, nil
}

// idleRead reads a socket until it closes, counting it in ready once a message holding answer
// arrives, and answers pings.
func idleRead(c net.Conn, answer []byte, ready *atomic.Int64) {
	br := bufio.NewReader(c)
	for { // the upgrade's answer, up to its blank line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	answered := false
	var payload []byte
	for {
		op, p, err := readFrame(br, payload[:0])
		if err != nil {
			return
		}
		payload = p
		switch {
		case op == 0x1 && !answered && bytes.Contains(p, answer):
			answered = true
			ready.Add(1)
		case op == 0x9:
			if _, err := c.Write(wsFrame(0xA, p)); err != nil {
				return
			}
		case op == 0x8:
			return
		}
	}
}

// buildBench builds Statehub and bench/baseline into a new temporary directory; the caller removes
// it. -statehub names a binary to use instead of this tree's.
func buildBench() (dir, statehub, baseline string, err error) {
	dir, err = os.MkdirTemp("", "statehub-bench-")
	if err != nil {
		return "", "", "", err
	}
	for _, b := range []struct{ out, pkg string }{{"statehub", "github.com/statehub/statehub"}, {"baseline", "github.com/statehub/statehub/bench/baseline"}} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return "", "", "", fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	statehub = filepath.Join(dir, "statehub")
	if *fanoutBin != "" {
		statehub = *fanoutBin
	}
	return dir, statehub, filepath.Join(dir, "baseline"), nil
}

// raiseOpenFiles raises the process's open-file limit (the servers it starts inherit it) to hold
// n sockets and a thousand more files: to its hard limit, or past it when that is too low, which
// takes CAP_SYS_RESOURCE.
func raiseOpenFiles(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	need, hard := uint64(n+1000), lim.Max
	lim.Cur, lim.Max = max(hard, need), max(hard, need)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		lim.Cur, lim.Max = hard, hard
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < need {
		return fmt.Errorf("the open-file limit is at most %d: too low for %d sockets (ulimit -n)", hard, n)
	}
	return nil
}
