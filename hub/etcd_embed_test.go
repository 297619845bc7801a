package hub_test

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/statehub/statehub/hub"
)

// The conformance suite also runs against etcd 3.6, started inside the test process with etcd's
// embed package, beside Debian's etcd 3.4 as a process (etcd_test.go): the cluster store must
// work with both. One member serves the whole package; TestMain closes it.

var (
	embedOnce sync.Once
	embedURL  string
	embedErr  error
	embedSrv  *embed.Etcd
	embedDir  string
)

func embeddedEtcdEndpoints(tb testing.TB) []string {
	tb.Helper()
	embedOnce.Do(func() { embedURL, embedErr = startEmbeddedEtcd() })
	if embedErr != nil {
		tb.Fatalf("embedded etcd: %v", embedErr)
	}
	return []string{embedURL}
}

func startEmbeddedEtcd() (string, error) {
	dir, err := os.MkdirTemp("", "statehub-embed-")
	if err != nil {
		return "", err
	}
	embedDir = dir
	cfg := embed.NewConfig()
	cfg.Dir, cfg.Name, cfg.LogLevel = dir, "e", "error"
	cu, _ := url.Parse("http://127.0.0.1:" + freePort())
	pu, _ := url.Parse("http://127.0.0.1:" + freePort())
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", err
	}
	embedSrv = e
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second): // only guards against a hang
		e.Close()
		return "", fmt.Errorf("not ready within a minute")
	}
	return cu.String(), nil
}

// stopEmbeddedEtcd runs after the package's tests (TestMain).
func stopEmbeddedEtcd() {
	if embedSrv != nil {
		embedSrv.Close()
		os.RemoveAll(embedDir)
	}
}

// newEmbeddedEtcdHub returns a hub on the embedded etcd, under a prefix of its own.
func newEmbeddedEtcdHub(tb testing.TB, cfg hub.Config) *hub.Hub {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	prefix := fmt.Sprintf("/e%d/", etcdPrefixes.Add(1))
	h, err := hub.OpenEtcd(cfg, hub.EtcdConfig{Endpoints: embeddedEtcdEndpoints(tb), Prefix: prefix, BlobDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}
