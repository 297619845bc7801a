package main

// The snapshot benchmark (-snapshot): what ?snapshot subscribers of a large subtree cost the server
// while a writer runs. It builds a backup of -snapshot-keys small keys, then, for 0, 1 and 4
// readers, starts a fresh server restored from it (-sync none) and runs a writer for
// -snapshot-duration (on keys beside the subtree, or with -snapshot-inside in it) while the
// readers read `GET /bench/snap/?snapshot` slowly (a small socket
// buffer, 16 KiB every 5 ms: they are still in the snapshot when the phase ends). It prints the
// writer's rate against the run without readers, and the resident memory the readers added: the
// peak (VmHWM of /proc/PID/status, reset through /proc/PID/clear_refs as the readers start) less
// the resident set (VmRSS) just before. It kills each server by its PID.
//
//	go run ./bench/subscribers -snapshot                      # from the repository's root
//	go run ./bench/subscribers -snapshot -snapshot-keys 1000000 -snapshot-duration 10s

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/statehub/statehub/hub"
)

var (
	snapshotMode     = flag.Bool("snapshot", false, "run the snapshot benchmark (starts its own servers; see snapshot.go)")
	snapshotKeys     = flag.Int("snapshot-keys", 1_000_000, "keys in the subtree")
	snapshotDuration = flag.Duration("snapshot-duration", 10*time.Second, "length of each phase")
	snapshotWriters  = flag.Int("snapshot-writers", 4, "writer connections")
	snapshotHot      = flag.Int("snapshot-hot", 1000, "the writer sets random keys among this many")
	snapshotInside   = flag.Bool("snapshot-inside", false, "the writer's keys are the subtree's first ones (their changes queue up for each reader, up to -queue and -queue-bytes) instead of keys beside it")
)

func runSnapshot() error {
	tmp, err := os.MkdirTemp("", "statehub-bench-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "statehub")
	if *fanoutBin != "" {
		bin = *fanoutBin
	} else if out, err := exec.Command("go", "build", "-o", bin, "github.com/statehub/statehub").CombinedOutput(); err != nil {
		return fmt.Errorf("building statehub: %v\n%s", err, out)
	}
	backup := filepath.Join(tmp, "backup")
	if err := writeSnapshotBackup(backup); err != nil {
		return err
	}
	where := "beside the subtree"
	if *snapshotInside {
		where = "in the subtree"
	}
	fmt.Printf("%d keys, phases of %v, %d writer connections on %d keys %s, readers of /bench/snap/?snapshot\n",
		*snapshotKeys, *snapshotDuration, *snapshotWriters, *snapshotHot, where)
	var base float64
	for i, readers := range []int{0, 1, 4} {
		rate, added, read, err := snapshotPhase(bin, backup, filepath.Join(tmp, "data"+strconv.Itoa(i)), readers)
		if err != nil {
			return err
		}
		if readers == 0 {
			base = rate
		}
		fmt.Printf("%d readers: writer %8.0f writes/s (%.2f of none), resident memory %+7.1f MiB at the peak; the readers read %d entries\n",
			readers, rate, rate/base, float64(added)/(1<<20), read)
	}
	return nil
}

// writeSnapshotBackup writes a backup of the subtree's keys, made in memory.
func writeSnapshotBackup(path string) error {
	h := hub.New(hub.Config{Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	for i := range *snapshotKeys {
		v := `{"n":` + strconv.Itoa(i) + `}`
		if _, err := h.Set(fmt.Sprintf("/bench/snap/%07d", i), []byte(v), hub.Cond{}, hub.WriteOptions{}); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := h.WriteBackup(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// snapshotPhase starts a server restored from backup and measures one phase with readers.
func snapshotPhase(bin, backup, dir string, readers int) (rate float64, added int64, read int64, err error) {
	addr := freeAddr()
	cmd := exec.Command(bin, "-addr", addr, "-data", dir, "-restore", backup, "-sync", "none", "-max-conns", "0", "-log-level", "error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	if err := waitPost("http://" + addr + "/bench/w"); err != nil {
		return 0, 0, 0, err
	}
	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range *snapshotWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				url := fmt.Sprintf("http://%s/bench/w/%07d", addr, rand.IntN(*snapshotHot))
				if *snapshotInside {
					url = fmt.Sprintf("http://%s/bench/snap/%07d", addr, rand.IntN(*snapshotHot))
				}
				res, err := c.Post(url, "application/json", strings.NewReader(`{"w":`+strconv.Itoa(i)+`}`))
				if err != nil {
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				writes.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)                                           // the writer warms up
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) // VmHWM starts again from VmRSS
	rss0 := procStatus(pid, "VmRSS")
	var got atomic.Int64
	var conns []net.Conn
	for range readers {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, 0, 0, err
		}
		conns = append(conns, c)
		c.(*net.TCPConn).SetReadBuffer(32 << 10)
		c.Write([]byte("GET /bench/snap/?snapshot HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"))
		go func() {
			buf := make([]byte, 16<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				got.Add(int64(bytes.Count(buf[:n], []byte("\ndata: "))))
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	w0, t0 := writes.Load(), time.Now()
	time.Sleep(*snapshotDuration)
	rate = float64(writes.Load()-w0) / time.Since(t0).Seconds()
	peak := procStatus(pid, "VmHWM")
	close(stop)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return rate, peak - rss0, got.Load(), nil
}

// procStatus reads a field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
