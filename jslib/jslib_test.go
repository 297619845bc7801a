package jslib

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
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

// declaredMembers lists the members that statehub.d.ts declares in the block that starts with open.
func declaredMembers(t *testing.T, open string) []string {
	t.Helper()
	src, err := os.ReadFile("statehub.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(src), open)
	if block, _, ok = strings.Cut(block, "\n}"); !ok {
		t.Fatalf("statehub.d.ts has no block %q", open)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  (?:readonly )?(\w+)[<(:?]`).FindAllStringSubmatch(block, -1) {
		if m[1] != "constructor" {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		t.Fatalf("statehub.d.ts declares no members in %q", open)
	}
	return names
}

// TestPublicNames checks that property mangling (names ending in "_") leaves the public API alone:
// every member statehub.d.ts declares on Client and AtomKV exists in the bundle under its name, and
// no internal name of the sources reaches the bundle unshortened.
func TestPublicNames(t *testing.T) {
	b := mustBuild(t)
	var internal []string
	srcs, err := fs.Glob(files, "src/*.ts")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range srcs {
		src, _ := fs.ReadFile(files, name)
		internal = append(internal, regexp.MustCompile(`\b[A-Za-z]\w*_\b`).FindAllString(string(src), -1)...)
	}
	slices.Sort(internal)
	internal = slices.Compact(internal)
	if len(internal) < 10 {
		t.Fatalf("only %d internal names in the sources: %v", len(internal), internal)
	}
	for _, a := range []Asset{b.Script, b.Module} {
		for _, name := range internal {
			if regexp.MustCompile(`\b` + name + `\b`).Match(a.Body) {
				t.Errorf("%s is not mangled in the bundle", name)
			}
		}
	}

	client := declaredMembers(t, "export declare class Client {")
	atomkv := declaredMembers(t, "export interface AtomKVApi {")
	dir := writeBundle(t)
	script := `
		const { Client, AtomKV } = await import("./statehub.mjs");
		const c = new Client("http://localhost/");
		const missing = process.argv.slice(1).filter((name) => !(name in c));
		const keys = Object.keys(AtomKV).sort().join(",");
		console.log(JSON.stringify({ missing, keys }));`
	out := node(t, dir, append([]string{"--input-type=module", "-e", script}, client...)...)
	var got struct {
		Missing []string
		Keys    string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got.Missing) > 0 {
		t.Errorf("Client lacks the declared members %v", got.Missing)
	}
	slices.Sort(atomkv)
	if want := strings.Join(atomkv, ","); got.Keys != want {
		t.Errorf("AtomKV has %s, want %s", got.Keys, want)
	}
}

// TestBehaviour runs testdata/client.test.mjs: the client against a fake server (testdata/fakeserver.mjs)
// in Node.js, over the WebSocket and over HTTP + SSE.
func TestBehaviour(t *testing.T) {
	dir := writeBundle(t)
	for _, name := range []string{"client.test.mjs", "fakeserver.mjs"} {
		src, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Log(node(t, dir, "--test", "--test-timeout=60000", "client.test.mjs"))
}

// TestPackage checks the npm package's files (Bundle.Package): the manifest's entry points exist,
// the bundles are the served ones, and the module's declarations declare no globals.
func TestPackage(t *testing.T) {
	b := mustBuild(t)
	files, err := b.Package()
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Name, Version, License, Type, Main, Module, Types, Unpkg string
		Files                                                    []string
		Exports                                                  map[string]any
	}
	if err := json.Unmarshal(files["package.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.Name != "statehub" || manifest.Version != "0.1.0" || manifest.License != "Apache-2.0" || manifest.Type != "module" {
		t.Errorf("manifest: %+v", manifest)
	}
	if !slices.Equal(manifest.Files, []string{"dist"}) {
		t.Errorf("files %v, want [dist]", manifest.Files)
	}
	exists := func(what, p string) {
		if _, ok := files[strings.TrimPrefix(p, "./")]; !ok && p != "./package.json" {
			t.Errorf("%s names %s, which the package lacks", what, p)
		}
	}
	for _, p := range []string{manifest.Main, manifest.Module, manifest.Types, manifest.Unpkg} {
		exists("package.json", p)
	}
	root, _ := manifest.Exports["."].(map[string]any)
	var conditions []string
	for name, target := range root {
		conditions = append(conditions, name)
		exists(`exports["."].`+name, target.(string))
	}
	slices.Sort(conditions)
	if !slices.Equal(conditions, []string{"default", "import", "types"}) {
		t.Errorf(`exports["."] has the conditions %v, want types, import, default`, conditions)
	}
	if root["types"] != "./dist/statehub.d.mts" || root["import"] != "./dist/statehub.mjs" {
		t.Errorf(`exports["."] = %v`, root)
	}
	for sub, target := range manifest.Exports {
		if m, ok := target.(map[string]any); ok {
			for name, p := range m {
				exists("exports["+sub+"]."+name, p.(string))
			}
		} else {
			exists("exports["+sub+"]", target.(string))
		}
	}
	if !bytes.Equal(files["dist/statehub.mjs"], b.Module.Body) || !bytes.Equal(files["dist/statehub.js"], b.Script.Body) {
		t.Error("the package's bundles are not the served ones")
	}
	if bytes.Contains(files["dist/statehub.d.mts"], []byte("declare global")) {
		t.Error("the module's declarations declare globals")
	}
	if g := string(files["dist/global.d.ts"]); !strings.Contains(g, `from "./statehub.mjs"`) || !strings.Contains(g, "var Statehub: Client") {
		t.Errorf("dist/global.d.ts:\n%s", g)
	}
	if !bytes.Contains(b.Types.Body, []byte("declare global {")) {
		t.Error("the served statehub.d.ts does not declare the script tag's globals")
	}
}
