package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
)

// TestBackupRestore: backup writes a checked backup; restore -check accepts it and refuses a
// truncated one; restore starts a data directory from it that a server then opens.
func TestBackupRestore(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	must(t, e, "set", "/a", `{"x":1}`)
	must(t, e, "incr", "/n")
	dir := t.TempDir()
	svg := filepath.Join(dir, "c.svg")
	os.WriteFile(svg, []byte("<svg/>"), 0o644)
	must(t, e, "set", "-file", svg, "/f")

	file := filepath.Join(dir, "statehub.backup")
	r := run(t, e, "", "backup", file)
	if r.code != 0 || !strings.Contains(r.stderr, "checked: seq 3") {
		t.Fatalf("backup: %+v", r)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("backup left files beside the backup: %v", entries)
	}
	if out := must(t, nil, "restore", "-check", file); !strings.Contains(out, "good backup (seq 3)") {
		t.Errorf("restore -check: %q", out)
	}
	b, _ := os.ReadFile(file)
	broken := filepath.Join(dir, "broken.backup")
	os.WriteFile(broken, b[:len(b)-3], 0o644)
	if r := run(t, nil, "", "restore", "-check", broken); r.code != 1 || !strings.Contains(r.stderr, "not a good backup") {
		t.Errorf("restore -check of a truncated backup: %+v", r)
	}

	data := filepath.Join(dir, "data")
	if out := must(t, []string{"STATEHUB_DATA=" + data}, "restore", file); !strings.Contains(out, "statehub -data "+data) {
		t.Errorf("restore: %q", out)
	}
	if r := run(t, nil, "", "restore", "-data", data, file); r.code != 1 || !strings.Contains(r.stderr, "empty") {
		t.Errorf("restore into a used directory: %+v", r)
	}
	h, err := hub.Open(hub.Config{Logger: quiet}, hub.StoreConfig{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	restored := serveHub(t, h)
	if out := must(t, env(restored.URL), "get", "/a"); out != `{"x":1}`+"\n" {
		t.Errorf("the restored server's /a: %q", out)
	}
	if out := must(t, env(restored.URL), "get", "/f"); out != "<svg/>" {
		t.Errorf("the restored server's file: %q", out)
	}

	// To stdout; and without the admin token, refused.
	if out := must(t, e, "backup", "-"); len(out) != len(b) {
		t.Errorf("backup -: %d bytes, the file has %d", len(out), len(b))
	}
	if r := run(t, []string{"STATEHUB_URL=" + ts.URL}, "", "backup", filepath.Join(dir, "x")); r.code != 1 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("backup without a token: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Errorf("a refused backup left a file: %v", err)
	}
}
