package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statehub/statehub/auth"
)

// TestAdminTokenFile: without an admin token of the operator's, the first start makes one in
// <data>/admin-token with mode 0600, the log names the file and never the token, the next start
// uses the same token, and it is the admin token of a server that stays protected.
func TestAdminTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, adminTokenFile)
	start := func() (auth.Config, string) {
		t.Helper()
		var logs, stderr bytes.Buffer
		var c auth.Config
		if err := setupAdminToken(&c, dir, slog.New(slog.NewTextHandler(&logs, nil)), &stderr); err != nil {
			t.Fatal(err)
		}
		if !c.AdminTokenGenerated || len(c.AdminToken) < minAdminToken {
			t.Fatalf("config %+v: no generated admin token", c)
		}
		if !strings.Contains(logs.String(), "file="+path) {
			t.Errorf("the log does not name %s:\n%s", path, logs.String())
		}
		if strings.Contains(logs.String(), c.AdminToken) || strings.Contains(stderr.String(), c.AdminToken) {
			t.Errorf("the token is in the log:\n%s%s", logs.String(), stderr.String())
		}
		return c, logs.String()
	}
	first, log1 := start()
	if !strings.Contains(log1, "made an admin token") {
		t.Errorf("first start: %s", log1)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != first.AdminToken+"\n" {
		t.Fatalf("%s holds %q", path, b)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left: %v", err)
	}
	second, log2 := start()
	if second.AdminToken != first.AdminToken {
		t.Fatal("the second start has another admin token")
	}
	if strings.Contains(log2, "made") || strings.Contains(log2, "WARN") {
		t.Errorf("second start: %s", log2)
	}

	a, err := auth.New(second)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode() != auth.ModeProtected {
		t.Fatalf("mode %v with the generated admin token, want protected", a.Mode())
	}
	if p, err := a.Principal(second.AdminToken); err != nil || p.Allow(auth.Admin, "/") != nil {
		t.Fatalf("the file's token is not admin: %v", err)
	}
}

// TestAdminTokenSetup: the cases where no file is made or read, and the files refused.
func TestAdminTokenSetup(t *testing.T) {
	t.Parallel()
	const operators = "the-operators-own-admin-token-0123"
	for _, tc := range []struct {
		name   string
		cfg    auth.Config
		file   string // the file's contents before the start; "" for none
		perm   os.FileMode
		memory bool
		check  func(t *testing.T, c auth.Config, logs, stderr string, err error)
	}{
		{name: "the operator's token", cfg: auth.Config{AdminToken: operators}, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err != nil || c.AdminToken != operators || c.AdminTokenGenerated || logs != "" {
				t.Fatalf("config %+v, err %v, logs %q", c, err, logs)
			}
		}},
		{name: "-open", cfg: auth.Config{Open: true}, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err != nil || c.AdminToken != "" {
				t.Fatalf("config %+v, err %v", c, err)
			}
		}},
		{name: "memory only: printed once to stderr, not logged", memory: true, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err != nil || !c.AdminTokenGenerated || strings.Count(stderr, c.AdminToken) != 1 || strings.Contains(logs, c.AdminToken) {
				t.Fatalf("config %+v, err %v, logs %q, stderr %q", c, err, logs, stderr)
			}
		}},
		{name: "a token written by the operator", file: "  written-by-the-operator-0123456789\n", perm: 0o600, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err != nil || c.AdminToken != "written-by-the-operator-0123456789" {
				t.Fatalf("config %+v, err %v", c, err)
			}
		}},
		{name: "a file others may read", file: "written-by-the-operator-0123456789", perm: 0o644, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err != nil || !strings.Contains(logs, "chmod 600") || strings.Contains(logs, c.AdminToken) {
				t.Fatalf("err %v, logs %q", err, logs)
			}
		}},
		{name: "an empty file", file: "\n", perm: 0o600, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err == nil || !strings.Contains(err.Error(), adminTokenFile) {
				t.Fatalf("err %v, want one naming the file", err)
			}
		}},
		{name: "a short token", file: "s3cr3t", perm: 0o600, check: func(t *testing.T, c auth.Config, logs, stderr string, err error) {
			if err == nil || strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("err %v, want one that does not repeat the file's contents", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, adminTokenFile), []byte(tc.file), tc.perm); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, adminTokenFile), tc.perm); err != nil { // whatever the umask
					t.Fatal(err)
				}
			}
			data := dir
			if tc.memory {
				data = ""
			}
			var logs, stderr bytes.Buffer
			c := tc.cfg
			err := setupAdminToken(&c, data, slog.New(slog.NewTextHandler(&logs, nil)), &stderr)
			tc.check(t, c, logs.String(), stderr.String(), err)
			if tc.file == "" && !tc.memory {
				if _, err := os.Stat(filepath.Join(dir, adminTokenFile)); !os.IsNotExist(err) {
					t.Fatalf("a token file was made: %v", err)
				}
			}
		})
	}
}

// TestAdminTokenMakesTheDirectory: a node that keeps only its admin token in -data (a cluster
// node) starts when the directory does not exist yet.
func TestAdminTokenMakesTheDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not", "yet")
	var c auth.Config
	if err := setupAdminToken(&c, dir, slog.New(slog.DiscardHandler), io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, adminTokenFile)); err != nil {
		t.Fatal(err)
	}
}
