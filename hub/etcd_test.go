package hub_test

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
)

// The store tests run against a real etcd too: one etcd process (Debian's etcd-server, or any
// etcd 3.4+ on PATH) for the whole package, started on first use on loopback ports, each test
// under a prefix of its own. TestMain stops it.

var (
	etcdOnce     sync.Once
	etcdEndpoint string
	etcdErr      error
	etcdCmd      *exec.Cmd
	etcdDir      string
	etcdPrefixes atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopEmbeddedEtcd()
	if etcdCmd != nil {
		etcdCmd.Process.Kill() // the process this package started, by its pid
		etcdCmd.Wait()
		os.RemoveAll(etcdDir)
	}
	os.Exit(code)
}

// etcdEndpoints starts the package's etcd on first use and returns its client URL.
func etcdEndpoints(tb testing.TB) []string {
	tb.Helper()
	etcdOnce.Do(func() { etcdCmd, etcdDir, etcdEndpoint, etcdErr = startEtcd() })
	if etcdErr != nil {
		tb.Fatalf("etcd is needed for the cluster store tests (apt-get install etcd-server): %v", etcdErr)
	}
	return []string{etcdEndpoint}
}

// startEtcd starts an etcd process of its own on loopback ports; the caller kills cmd (by its
// pid) and removes dir.
func startEtcd() (cmd *exec.Cmd, dir, url string, err error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, "", "", err
	}
	dir, err = os.MkdirTemp("", "statehub-etcd-")
	if err != nil {
		return nil, "", "", err
	}
	client, peer := freePort(), freePort()
	clientURL, peerURL := "http://127.0.0.1:"+client, "http://127.0.0.1:"+peer
	cmd = exec.Command(bin, "--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "t="+peerURL, "--log-level", "error")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, dir, "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd) // a test binary killed before TestMain's cleanup leaves no etcd behind
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+os.Getenv("ETCD_UNSUPPORTED_ARCH"))
	if err := cmd.Start(); err != nil {
		return nil, dir, "", err
	}
	// The deadline only guards against a hang; nothing is asserted about speed.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(clientURL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, dir, clientURL, nil
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
	return cmd, dir, "", fmt.Errorf("etcd did not become healthy: %s", b)
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// newEtcdHub returns a hub on the package's etcd, under a prefix no other test uses.
func newEtcdHub(tb testing.TB, cfg hub.Config) *hub.Hub {
	tb.Helper()
	prefix := fmt.Sprintf("/t%d/", etcdPrefixes.Add(1))
	return openEtcdHub(tb, cfg, hub.EtcdConfig{Endpoints: etcdEndpoints(tb), Prefix: prefix, BlobDir: tb.TempDir()})
}

// openEtcdHub opens a hub on the etcd store ec (a nil cfg.Logger discards), closed when the test ends.
func openEtcdHub(tb testing.TB, cfg hub.Config, ec hub.EtcdConfig) *hub.Hub {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := hub.OpenEtcd(cfg, ec)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// ownEtcd starts an etcd process for this test alone (one it may compact, or whose revisions are
// all its own) and returns its endpoints; the process is killed and its dir removed when the
// test ends, after the hubs opened on it are closed.
func ownEtcd(tb testing.TB) []string {
	tb.Helper()
	cmd, dir, url, err := startEtcd()
	if cmd != nil {
		tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) })
	}
	if err != nil {
		tb.Fatal(err)
	}
	return []string{url}
}
