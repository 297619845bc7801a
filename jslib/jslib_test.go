package jslib

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustBuild(t *testing.T) *Bundle {
	t.Helper()
	b, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuild(t *testing.T) {
	b := mustBuild(t)
	for name, a := range map[string]Asset{"script": b.Script, "module": b.Module, "types": b.Types} {
		if len(a.Body) == 0 || a.ContentType == "" || !strings.HasPrefix(a.ETag, `"`) || !strings.HasSuffix(a.ETag, `"`) {
			t.Errorf("%s: empty or incomplete asset: %d bytes, %q, %q", name, len(a.Body), a.ContentType, a.ETag)
		}
	}
	if !strings.Contains(string(b.Types.Body), "export declare class Client") {
		t.Error("statehub.d.ts does not declare Client")
	}
	if b.Script.ETag == b.Module.ETag {
		t.Error("script and module share an ETag")
	}
	if c := mustBuild(t); c.Script.ETag != b.Script.ETag || c.Module.ETag != b.Module.ETag {
		t.Error("bundling is not deterministic")
	}
}

// TestSizeBudget keeps the gzipped script tag within 10 KB.
func TestSizeBudget(t *testing.T) {
	const budget = 10 * 1024
	b := mustBuild(t)
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b.Script.Body)
	w.Close()
	t.Logf("script: %d bytes minified, %d bytes gzipped (budget %d); module: %d bytes", len(b.Script.Body), buf.Len(), budget, len(b.Module.Body))
	if buf.Len() > budget {
		t.Errorf("gzipped script is %d bytes, over the budget of %d", buf.Len(), budget)
	}
}

// node runs a script with Node.js, skipping the test when node is not installed.
func node(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func writeBundle(t *testing.T) string {
	t.Helper()
	b := mustBuild(t)
	dir := t.TempDir()
	for name, body := range map[string][]byte{"statehub.mjs": b.Module.Body, "statehub.js": b.Script.Body} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestModuleExports imports the ES module in Node.js and lists its exports.
func TestModuleExports(t *testing.T) {
	b := mustBuild(t)
	if !bytes.Contains(b.Module.Body, []byte("export{")) {
		t.Fatal("module has no export statement")
	}
	dir := writeBundle(t)
	out := node(t, dir, "--input-type=module", "-e",
		`const m = await import("./statehub.mjs"); console.log(Object.keys(m).sort().join(","))`)
	if got, want := strings.TrimSpace(out), "AtomKV,Client,Statehub,StatehubError,bind,connect,default"; got != want {
		t.Errorf("module exports %s, want %s", got, want)
	}
}

// TestBehaviour runs testdata/client.test.mjs: the client against a fake WebSocket server in Node.js.
func TestBehaviour(t *testing.T) {
	dir := writeBundle(t)
	src, err := os.ReadFile("testdata/client.test.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.test.mjs"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(node(t, dir, "--test", "--test-timeout=20000", "client.test.mjs"))
}
