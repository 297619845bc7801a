package cli_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
)

func TestGetSetDel(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	c := ts.client(t)
	ctx := t.Context()

	must(t, e, "set", "/app/cfg", `{"colour": "blue", "n": 1.50}`)
	if out := must(t, e, "get", "/app/cfg"); out != `{"colour":"blue","n":1.50}`+"\n" {
		t.Errorf("get: %q", out)
	}
	// From stdin; flags after the key; -- before a value that starts with -.
	if r := run(t, e, "[1, 2]\n", "set", "/app/list"); r.code != 0 {
		t.Fatalf("set from stdin: %+v", r)
	}
	must(t, e, "set", "/app/n", "-ttl", "1h", "--", "-1")
	for key, want := range map[string]string{"/app/list": "[1,2]", "/app/n": "-1"} {
		if got, err := c.Get(ctx, key); err != nil || string(got.Value) != want {
			t.Errorf("%s: %s, %v; want %s", key, got.Value, err, want)
		}
	}
	// Strings.
	must(t, e, "set", "-string", "/app/sha", `a"b`)
	if r := run(t, e, "deadbeef\n", "set", "/app/sha2", "-string"); r.code != 0 {
		t.Fatalf("set -string from stdin: %+v", r)
	}
	if out := must(t, e, "get", "/app/sha"); out != `"a\"b"`+"\n" {
		t.Errorf("get of a string: %q", out)
	}
	if out := must(t, e, "get", "-raw", "/app/sha2"); out != "deadbeef\n" {
		t.Errorf("get -raw: %q", out)
	}
	if r := run(t, e, "", "set", "/app/x", "oops"); r.code != 1 || !strings.Contains(r.stderr, "-string") {
		t.Errorf("a value that is not JSON: %+v", r)
	}

	// Conditional writes.
	if r := run(t, e, "", "set", "-if-revision", "5", "/app/cfg", "1"); r.code != 1 || !strings.Contains(r.stderr, "revision_conflict") {
		t.Errorf("a stale -if-revision: %+v", r)
	}
	must(t, e, "set", "-if-revision", "-1", "/app/new", "1")
	must(t, e, "set", "-if-revision", "0", "/app/cfg", "2")

	// Delete.
	must(t, e, "del", "/app/cfg")
	if r := run(t, e, "", "get", "/app/cfg"); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("get of a deleted key: %+v", r)
	}
	if r := run(t, e, "", "del", "/app/cfg"); r.code != 1 {
		t.Errorf("del of an absent key: %+v", r)
	}
	must(t, e, "del", "-f", "/app/cfg")
	if r := run(t, e, "", "del", "/app/"); r.code != 2 || !strings.Contains(r.stderr, "-r") {
		t.Errorf("del of a prefix without -r: %+v", r)
	}
	if r := run(t, e, "", "del", "-r", "/app/"); r.code != 0 || !strings.Contains(r.stderr, "deleted 5 keys under /app/") {
		t.Errorf("del -r: %+v", r)
	}
	if _, err := c.Get(ctx, "/app/list"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("after del -r: %v", err)
	}
}

func TestIncr(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	for i, want := range []string{"1\n", "2\n", "3\n"} {
		if out := must(t, e, "incr", "/ci/app/main/build"); out != want {
			t.Fatalf("incr %d printed %q, want %q", i, out, want)
		}
	}
	if out := must(t, e, "incr", "-by", "-5", "/ci/app/main/build"); out != "-2\n" {
		t.Errorf("incr -by -5: %q", out)
	}
	must(t, e, "set", "/ci/app/name", `"app"`)
	if r := run(t, e, "", "incr", "/ci/app/name"); r.code != 1 || !strings.Contains(r.stderr, "not_integer") {
		t.Errorf("incr of a string: %+v", r)
	}
}

func TestLs(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	for _, k := range []string{"/ci/b", "/ci/a", "/ci/sub/x", "/other"} {
		must(t, e, "set", k, "1")
	}
	if out := must(t, e, "ls", "/ci/"); out != "/ci/a\n/ci/b\n/ci/sub/x\n" {
		t.Errorf("ls: %q", out)
	}
	if out := must(t, e, "ls", "/ci", "-children", "-page", "1"); out != "/ci/a\n/ci/b\n/ci/sub/\n" {
		t.Errorf("ls -children of a prefix without /: %q", out)
	}
	out := must(t, e, "ls", "-l", "-children", "/ci/")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[2] != `{"key":"/ci/sub/"}` {
		t.Fatalf("ls -l -children: %q", out)
	}
	var first struct {
		Key      string          `json:"key"`
		Value    json.RawMessage `json:"value"`
		Revision *int64          `json:"revision"`
		Seq      *uint64         `json:"seq"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Key != "/ci/a" || string(first.Value) != "1" || first.Revision == nil || *first.Revision != 0 || first.Seq == nil || *first.Seq != 2 {
		t.Errorf("ls -l line %q: %+v, %v", lines[0], first, err)
	}
	if r := run(t, e, "", "ls", "/"); r.code != 1 || !strings.Contains(r.stderr, "root") {
		t.Errorf("ls /: %+v", r)
	}
}

func TestFiles(t *testing.T) {
	ts := newServer(t, hub.Config{})
	e := env(ts.URL)
	svg := "<svg xmlns=\"http://www.w3.org/2000/svg\">\r\n— ✓</svg>"
	path := filepath.Join(t.TempDir(), "coverage.svg")
	if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, e, "set", "-file", path, "/ci/app/coverage")
	if out := must(t, e, "get", "/ci/app/coverage"); out != svg {
		t.Errorf("get of a file: %q", out)
	}
	f, err := ts.client(t).GetFile(t.Context(), "/ci/app/coverage")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.ContentType != "image/svg+xml" {
		t.Errorf("the type from the extension: %q", f.ContentType)
	}
	if r := run(t, e, "a,b\n", "set", "-file", "-", "-type", "text/csv", "/ci/app/table"); r.code != 0 {
		t.Fatalf("set -file -: %+v", r)
	}
	if out := must(t, e, "get", "/ci/app/table"); out != "a,b\n" {
		t.Errorf("a file from stdin: %q", out)
	}
}
