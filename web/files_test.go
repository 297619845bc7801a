package web_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

func TestFilesHTTP(t *testing.T) {
	t.Parallel()
	ts := newServer(t, hub.Config{MaxFileBytes: 4096}, web.Config{})
	svg := "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>92%</text></svg>\n"
	ts.must(t, "POST", "/ci/main/coverage", svg, "Content-Type", "image/svg+xml")
	r := ts.must(t, "GET", "/ci/main/coverage", "")
	if r.body != svg || r.header.Get("Content-Type") != "image/svg+xml" || r.header.Get("X-Revision") != "0" {
		t.Fatalf("file: %q %v", r.body, r.header)
	}
	sum := sha256.Sum256([]byte(svg))
	desc := `{"type":"image/svg+xml","size":` + strconv.Itoa(len(svg)) + `,"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	var list web.ListAnswer
	if err := json.Unmarshal([]byte(ts.must(t, "GET", "/ci/main/", "").body), &list); err != nil || len(list.Entries) != 1 || string(list.Entries[0].Value) != desc {
		t.Fatalf("listing %+v (%v), want value %s", list, err, desc)
	}
	// 304 on the ETag, ranges, HEAD.
	if r := ts.do(t, "GET", "/ci/main/coverage", "", "If-None-Match", r.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", r.status)
	}
	if r := ts.do(t, "GET", "/ci/main/coverage", "", "Range", "bytes=0-3"); r.status != http.StatusPartialContent || r.body != "<svg" {
		t.Fatalf("range: %d %q", r.status, r.body)
	}
	// Binary bytes, byte for byte.
	bin := string([]byte{0, 1, 2, 0xff, 0xfe, '\n', '\r'})
	ts.must(t, "PUT", "/blob", bin, "Content-Type", "application/octet-stream")
	if r := ts.must(t, "GET", "/blob", ""); r.body != bin || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("binary: %q %q", r.body, r.header.Get("Content-Type"))
	}
	// JSON content types stay JSON.
	for _, ct := range []string{"", "application/json", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "application/merge-patch+json"} {
		ts.must(t, "POST", "/j", `{"a": 1}`, "Content-Type", ct)
		if r := ts.must(t, "GET", "/j", ""); r.body != `{"a":1}` || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Fatalf("%q: %q %q", ct, r.body, r.header.Get("Content-Type"))
		}
	}
	for _, s := range []step{
		fail("POST", "/big", strings.Repeat("x", 4097), http.StatusRequestEntityTooLarge, "too_large", "Content-Type", "text/csv"),
		fail("POST", "/bad", "x", http.StatusBadRequest, "invalid_json", "Content-Type", "no type"),
		fail("PUT", "/blob", "y", http.StatusConflict, "revision_conflict", "Content-Type", "text/csv", "X-Revision", "0"),
		fail("POST", "/blob?incr", "", http.StatusConflict, "not_integer"),
	} {
		s.run(t, ts)
	}
	// Too large without a Content-Length (chunked).
	req, _ := http.NewRequest("POST", ts.srv.URL+"/big", io.MultiReader(strings.NewReader(strings.Repeat("x", 5000)))) // length unknown
	req.Header.Set("Content-Type", "text/csv")
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked too large: %d", res.StatusCode)
	}
	fail("GET", "/big", "", http.StatusNotFound, "not_found").run(t, ts)
	ts.must(t, "POST", "/ci/main/coverage", `"gone"`)
	if r := ts.must(t, "GET", "/ci/main/coverage", ""); r.body != `"gone"` {
		t.Fatalf("overwritten by JSON: %q", r.body)
	}
}

// pattern is the block patternReader repeats; its length is prime, so the file does not repeat
// on any power-of-two boundary.
var pattern = func() []byte {
	b := make([]byte, 65521)
	for i := range b {
		b[i] = byte(i * 7 % 251)
	}
	return b
}()

// patternReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	k := copy(b, pattern[p.off%int64(len(pattern)):])
	p.off += int64(k)
	return k, nil
}

// TestFileMemoryBound stores and reads back a 60 MB file and checks that the process allocated
// only a few MB meanwhile: the bytes stream to and from disk (a hub from Open; a memory-only hub
// keeps them in memory). Not parallel, so other tests' allocations do not count.
func TestFileMemoryBound(t *testing.T) {
	const size = 60 << 20
	h, err := hub.Open(hub.Config{Logger: quiet}, hub.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(h, web.Config{Logger: quiet, Auth: protectedAuth(t)}).Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.Close() })
	ts := &testServer{hub: h, srv: srv, client: srv.Client()}
	ts.must(t, "POST", "/warm", "x", "Content-Type", "text/csv") // first-use allocations

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	req, _ := http.NewRequest("PUT", ts.srv.URL+"/big", &patternReader{n: size})
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	res, err = ts.client.Get(ts.srv.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, res.Body)
	res.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	want := sha256.New()
	io.Copy(want, &patternReader{n: size})
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("the file came back different")
	}

	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	const bound = 16 << 20
	t.Logf("allocated %d KB, heap in use %+d KB", (after.TotalAlloc-before.TotalAlloc)>>10, (int64(after.HeapInuse)-int64(before.HeapInuse))>>10)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
		t.Fatalf("storing and reading a %d MB file allocated %d MB", size>>20, alloc>>20)
	}
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > bound {
		t.Fatalf("the heap grew by %d MB", grow>>20)
	}
}
