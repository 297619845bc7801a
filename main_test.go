package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/hub/wal"
	"github.com/statehub/statehub/web"
)

// The tests here set STATEHUB_* variables with t.Setenv, so they do not run in parallel.

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // a substring of the error; "" for success
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.addr != ":8000" || c.data != "./data" || c.sync != wal.SyncAlways || c.logFormat != "text" {
				t.Errorf("addr %q data %q sync %q log-format %q", c.addr, c.data, c.sync, c.logFormat)
			}
			if c.historySize != hub.DefaultHistorySize || c.queueSize != hub.DefaultQueueSize {
				t.Errorf("history %d queue %d", c.historySize, c.queueSize)
			}
			want := hub.Limits{MaxKeyBytes: hub.DefaultMaxKeyBytes, MaxKeyDepth: hub.DefaultMaxKeyDepth,
				MaxValueBytes: hub.DefaultMaxValueBytes, MaxJSONDepth: hub.DefaultMaxJSONDepth, MaxBroadcastBytes: hub.DefaultMaxBroadcastBytes}
			if c.limits != want {
				t.Errorf("limits %+v, want %+v", c.limits, want)
			}
			if c.web.BroadcastRate != web.DefaultBroadcastRate || c.web.BroadcastBurst != 0 {
				t.Errorf("broadcast rate %v burst %d, want %v and the default burst", c.web.BroadcastRate, c.web.BroadcastBurst, float64(web.DefaultBroadcastRate))
			}
			if c.auth.Open || c.allowPrivateNetwork || c.auth.MetricsToken != "" || c.auth.AdminToken != "" {
				t.Errorf("not safe by default: open %v, allow-private-network %v, tokens set", c.auth.Open, c.allowPrivateNetwork)
			}
		}},
		{name: "opening flags", env: map[string]string{"STATEHUB_METRICS_TOKEN": "metrics-token-0123456789", "STATEHUB_ALLOW_PRIVATE_NETWORK": "true"},
			args: []string{"-open"}, check: func(t *testing.T, c config) {
				if !c.auth.Open || c.auth.MetricsToken != "metrics-token-0123456789" || !c.allowPrivateNetwork {
					t.Errorf("open %v, metrics token %v, allow-private-network %v", c.auth.Open, c.auth.MetricsToken != "", c.allowPrivateNetwork)
				}
			}},
		{name: "flags", args: []string{"-addr", "127.0.0.1:9", "-data", "", "-sync=none", "-history", "5",
			"-queue", "7", "-log-format", "json", "-max-value-bytes", "100"}, check: func(t *testing.T, c config) {
			if c.addr != "127.0.0.1:9" || c.data != "" || c.sync != wal.SyncNone || c.historySize != 5 || c.queueSize != 7 ||
				c.logFormat != "json" || c.limits.MaxValueBytes != 100 {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "snapshot thresholds", args: []string{"-snapshot-records", "10", "-snapshot-bytes", "4096"}, check: func(t *testing.T, c config) {
			if c.snapshotRecords != 10 || c.snapshotBytes != 4096 {
				t.Errorf("snapshot-records %d snapshot-bytes %d", c.snapshotRecords, c.snapshotBytes)
			}
		}},
		{name: "environment", env: map[string]string{"STATEHUB_ADDR": ":9000", "STATEHUB_DATA": "", "STATEHUB_SYNC": "interval",
			"STATEHUB_MAX_JSON_DEPTH": "9", "STATEHUB_LOG_FORMAT": "json"}, check: func(t *testing.T, c config) {
			if c.addr != ":9000" || c.data != "" || c.sync != wal.SyncInterval || c.limits.MaxJSONDepth != 9 || c.logFormat != "json" {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "flag wins over environment", env: map[string]string{"STATEHUB_ADDR": ":9000", "STATEHUB_SYNC": "none"},
			args: []string{"-addr", ":9001"}, check: func(t *testing.T, c config) {
				if c.addr != ":9001" || c.sync != wal.SyncNone {
					t.Errorf("addr %q sync %q, want :9001 none", c.addr, c.sync)
				}
			}},
		{name: "auth from the environment", env: map[string]string{"STATEHUB_JWT_JWKS_URL": "https://example.test/.well-known/jwks.json",
			"STATEHUB_JWT_KEYS": "keys.pem", "STATEHUB_ANON": `{"read": ["/public/"]}`}, check: func(t *testing.T, c config) {
			if c.auth.JWKSURL != "https://example.test/.well-known/jwks.json" || c.auth.JWTKeys != "keys.pem" ||
				c.auth.Anonymous == nil || len(c.auth.Anonymous.Read) != 1 {
				t.Errorf("auth config %+v", c.auth)
			}
		}},
		{name: "bad sync flag", args: []string{"-sync", "sometimes"}, wantErr: "-sync"},
		{name: "bad sync variable", env: map[string]string{"STATEHUB_SYNC": "never"}, wantErr: "STATEHUB_SYNC"},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: "-log-format"},
		{name: "bad log format variable", env: map[string]string{"STATEHUB_LOG_FORMAT": "yaml"}, wantErr: "-log-format"},
		{name: "bad number variable", env: map[string]string{"STATEHUB_HISTORY": "lots"}, wantErr: "STATEHUB_HISTORY"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "nope"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "serve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			c, err := parseFlags(tc.args, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("parseFlags(%q) succeeded, want an error about %s", tc.args, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("parseFlags(%q): %v, want an error about %s", tc.args, err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h): %v, want flag.ErrHelp", err)
	}
	out := stderr.String()
	for _, want := range []string{
		"STATEHUB_", "-addr", `(default ":8000")`, "-data", `(default "./data")`, "-sync", `(default always)`,
		"-history", "-queue", "-log-format", `(default "text")`, "-max-key-bytes", "(default 1024)",
		"-max-key-depth", "-max-value-bytes", "-max-json-depth", "(default 64)",
		"-max-broadcast-bytes", "(default 65536)", "-broadcast-rate", "(default 30)", "-broadcast-burst",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-h output lacks %q:\n%s", want, out)
		}
	}
	if err := run([]string{"-h"}, &stderr); err != nil {
		t.Errorf("run(-h) = %v, want nil (exit 0)", err)
	}
}
