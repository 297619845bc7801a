package web_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statehub/statehub/bench/counter"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// BenchmarkServeIncr runs POST ?incr through a real net/http server over in-memory connections
// (net.Pipe), so that it measures what a request costs in user space: net/http's parsing and
// writing plus the handler, without the kernel's sockets and their noise. "baseline" is the bare
// counter of bench/baseline on a plain http.Server, "like" the like-for-like counter (Statehub's
// headers, CORS and request metrics) on an http.Server with Statehub's limits, and "statehub" is
// the server. The difference between the last two in ns/op is Statehub's own cost per request,
// the part of the gap in bench/incr.sh that this code can change.
func BenchmarkServeIncr(b *testing.B) {
	b.Run("baseline", func(b *testing.B) { servePipes(b, &http.Server{Handler: counter.Handler()}) })
	b.Run("like", func(b *testing.B) {
		servePipes(b, web.NewHTTPServer(counter.Like(prometheus.NewRegistry()), web.Limits{}))
	})
	b.Run("statehub", func(b *testing.B) {
		h := hub.New(hub.Config{Logger: quiet})
		b.Cleanup(func() { h.Close() })
		servePipes(b, web.New(h, web.Config{Logger: quiet, Auth: openAuth(b)}).HTTPServer())
	})
}

// BenchmarkServeGet runs GETs of small keys, one of 100,000 at random for each request, through
// Statehub's server over in-memory connections, as BenchmarkServeIncr does: the user-space cost of
// a read (bench/keys measures it against redis over sockets).
func BenchmarkServeGet(b *testing.B) {
	const keys = 100_000
	h := hub.New(hub.Config{Logger: quiet})
	b.Cleanup(func() { h.Close() })
	for i := range keys {
		if _, err := h.Set(fmt.Sprintf("/k/%012d", i), []byte(`{"n":123}`), hub.Cond{}, hub.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([][]byte, 4096)
	for i := range reqs {
		reqs[i] = fmt.Appendf(nil, "GET /k/%012d HTTP/1.1\r\nHost: bench\r\n\r\n", rng.IntN(keys))
	}
	servePipes(b, web.New(h, web.Config{Logger: quiet, Auth: openAuth(b)}).HTTPServer(), reqs...)
}

// servePipes serves with srv over 8 in-memory connections, each sending b.N/8 keep-alive requests
// in turn, as wrk does with its connections: reqs in turn, or POST /bench/counter?incr.
func servePipes(b *testing.B, srv *http.Server, reqs ...[]byte) {
	const conns = 8
	l := &pipeListener{conns: make(chan net.Conn, conns), done: make(chan struct{})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	clients := make([]net.Conn, conns)
	for i := range clients {
		c, s := net.Pipe()
		clients[i] = c
		l.conns <- s
	}
	if len(reqs) == 0 {
		reqs = [][]byte{[]byte("POST /bench/counter?incr HTTP/1.1\r\nHost: bench\r\n\r\n")}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if _, err := c.Write(reqs[i%int64(len(reqs))]); err != nil {
					b.Error(err)
					return
				}
				if err := readAnswer(c, buf); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	for _, c := range clients {
		c.Close()
	}
}

// cpuTime is the CPU time the process has used, user and system: with both cores busy, the
// wall time per op says less than the CPU time per op, which other processes do not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readAnswer reads one HTTP answer with a Content-Length from c and checks its status is 200.
func readAnswer(c net.Conn, buf []byte) error {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
		end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
			return errors.New("not 200: " + string(buf[:n]))
		}
		_, after, ok := bytes.Cut(buf[:end], []byte("\r\nContent-Length: "))
		if !ok {
			return errors.New("no Content-Length")
		}
		length, _, _ := bytes.Cut(after, []byte("\r\n"))
		size, err := strconv.Atoi(string(length))
		if err != nil {
			return err
		}
		for n < end+4+size {
			m, err := c.Read(buf[n:])
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	}
}

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
