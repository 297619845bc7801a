package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
	"github.com/statehub/statehub/web"
)

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8000", "ftp://host", "http://", "http://host/?x=1", "http://host/#f"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) = nil error, want one", u)
		}
	}
	if _, err := client.New("https://statehub.example/under/a/path/"); err != nil {
		t.Errorf("a URL with a path: %v", err)
	}
}

func TestGetSetDelete(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)

	r, err := c.Set(ctx, "/app/cfg", map[string]any{"colour": "blue", "n": 1})
	if err != nil || r.Key != "/app/cfg" || r.Revision != 0 || r.Seq == 0 {
		t.Fatalf("Set: %+v, %v", r, err)
	}
	e, err := c.Get(ctx, "/app/cfg")
	if err != nil || string(e.Value) != `{"colour":"blue","n":1}` || e.Revision != 0 || e.Seq != r.Seq || e.Key != "/app/cfg" {
		t.Fatalf("Get: %+v, %v", e, err)
	}
	// Number literals and raw JSON go through unchanged.
	if _, err := c.Set(ctx, "/app/cfg", json.RawMessage(`{"n": 12345678901234567890, "f": 1.50}`)); err != nil {
		t.Fatal(err)
	}
	if e, _ = c.Get(ctx, "/app/cfg"); string(e.Value) != `{"n":12345678901234567890,"f":1.50}` || e.Revision != 1 {
		t.Fatalf("after a raw set: %s rev %d", e.Value, e.Revision)
	}

	// Compare-and-set on the current revision.
	_, err = c.Set(ctx, "/app/cfg", "stale", client.IfRevision(0))
	var ce *client.Error
	if !errors.Is(err, client.ErrConflict) || !errors.As(err, &ce) || ce.Status != http.StatusConflict || ce.Code != "revision_conflict" || ce.Revision != 1 || ce.Key != "/app/cfg" {
		t.Fatalf("a stale IfRevision: %#v", err)
	}
	if r, err = c.Set(ctx, "/app/cfg", "fresh", client.IfRevision(1)); err != nil || r.Revision != 2 {
		t.Fatalf("IfRevision(1): %+v, %v", r, err)
	}
	if _, err = c.Set(ctx, "/app/cfg", "again", client.IfRevision(-1)); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("IfRevision(-1) on a present key: %v", err)
	}
	if r, err = c.Set(ctx, "/app/new", true, client.IfRevision(-1)); err != nil || r.Revision != 0 {
		t.Fatalf("IfRevision(-1) on an absent key: %+v, %v", r, err)
	}

	// Delete, conditional and not.
	if _, err = c.Delete(ctx, "/app/cfg", client.IfRevision(1)); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("Delete with a stale revision: %v", err)
	}
	if r, err = c.Delete(ctx, "/app/cfg", client.IfRevision(2)); err != nil || r.Revision != 3 {
		t.Fatalf("Delete: %+v, %v", r, err)
	}
	if _, err = c.Get(ctx, "/app/cfg"); !errors.Is(err, client.ErrNotFound) || !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("Get after Delete: %v", err)
	}
	if _, err = c.Delete(ctx, "/app/cfg"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Delete of an absent key: %v", err)
	}

	// Arguments the client refuses before asking.
	for _, key := range []string{"app", "/app/"} {
		if _, err := c.Get(ctx, key); !errors.Is(err, client.ErrNotKey) {
			t.Errorf("Get(%q): %v, want ErrNotKey", key, err)
		}
	}
	if _, err := c.Delete(ctx, "/app/new", client.TTL(time.Second)); err == nil {
		t.Errorf("Delete took a TTL")
	}
}

func TestUnicodeKeys(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	if _, err := c.Set(ctx, "/rooms/café/ünïcode", "x"); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Get(ctx, "/rooms/café/ünïcode"); err != nil || string(e.Value) != `"x"` {
		t.Fatalf("Get: %+v, %v", e, err)
	}
	if _, err := c.Get(ctx, "/rooms/a?b"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a key with ?: %v, want a 400 (the ? is part of the key, not a query)", err)
	}
}

func TestTTL(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newServer(t, hub.Config{Clock: clock}, web.Config{Clock: clock})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	if _, err := c.Set(ctx, "/tmp/a", 1, client.TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Incr(ctx, "/tmp/n", 1, client.TTL(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := c.Get(ctx, "/tmp/a"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("after its TTL: %v, want ErrNotFound", err)
	}
	if _, err := c.Get(ctx, "/tmp/n"); err != nil {
		t.Errorf("before its TTL: %v", err)
	}
}

func TestIncr(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	for i, tc := range []struct {
		by, want int64
	}{{1, 1}, {1, 2}, {5, 7}, {-10, -3}} {
		if n, err := c.Incr(ctx, "/ci/app/main/build", tc.by); err != nil || n != tc.want {
			t.Fatalf("incr %d by %d: %d, %v; want %d", i, tc.by, n, err, tc.want)
		}
	}
	c.Set(ctx, "/ci/app/name", "app")
	if _, err := c.Incr(ctx, "/ci/app/name", 1); !errors.Is(err, client.ErrNotInteger) {
		t.Errorf("incr of a string: %v, want ErrNotInteger", err)
	}
	c.Set(ctx, "/ci/app/big", json.RawMessage("9223372036854775807"))
	if _, err := c.Incr(ctx, "/ci/app/big", 1); !errors.Is(err, client.ErrOverflow) {
		t.Errorf("incr past int64: %v, want ErrOverflow", err)
	}
	// An idempotent retry counts once.
	for range 2 {
		if n, err := c.Incr(ctx, "/ci/app/retried", 1, client.IdempotencyKey("job-7")); err != nil || n != 1 {
			t.Fatalf("idempotent incr: %d, %v; want 1", n, err)
		}
	}
	if _, err := c.Incr(ctx, "/ci/app/other", 1, client.IdempotencyKey("job-7")); !errors.Is(err, client.ErrIdempotencyMismatch) {
		t.Errorf("the key reused for another request: %v", err)
	}
}

// TestUpdateRetriesConflicts: concurrent read-modify-writes of one value lose no update.
func TestUpdateRetriesConflicts(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := c.Update(ctx, "/board/1", func(cur json.RawMessage) (any, error) {
					var v struct {
						Edits int `json:"edits"`
					}
					if cur != nil {
						if err := json.Unmarshal(cur, &v); err != nil {
							return nil, err
						}
					}
					v.Edits++
					return v, nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, "/board/1")
	if err != nil || string(e.Value) != fmt.Sprintf(`{"edits":%d}`, writers*each) || e.Revision != writers*each-1 {
		t.Fatalf("after %d updates: %s rev %d, %v", writers*each, e.Value, e.Revision, err)
	}

	// fn's error ends the update; fn sees nil for an absent key.
	stop := errors.New("stop")
	_, err = c.Update(ctx, "/board/absent", func(cur json.RawMessage) (any, error) {
		if cur != nil {
			t.Errorf("an absent key's current value is %s, want nil", cur)
		}
		return nil, stop
	})
	if err != stop {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
}

func TestList(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	var want []string
	for i := range 250 {
		key := fmt.Sprintf("/l/k%03d", i)
		want = append(want, key)
		if _, err := c.Set(ctx, key, i); err != nil {
			t.Fatal(err)
		}
	}
	c.Set(ctx, "/l/sub/x", 1)
	c.Set(ctx, "/other", 1)

	var got []string
	for e, err := range c.List(ctx, "/l/", client.ListOptions{Limit: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Key != "/l/sub/x" && (e.Value == nil || string(e.Value) != fmt.Sprint(len(got))) {
			t.Fatalf("entry %s has value %s, want %d", e.Key, e.Value, len(got))
		}
		got = append(got, e.Key)
	}
	if len(got) != 251 || strings.Join(got[:250], ",") != strings.Join(want, ",") || got[250] != "/l/sub/x" {
		t.Fatalf("listed %d keys, want 251 in order: %v...", len(got), got[:min(len(got), 3)])
	}

	// Children: a subtree shows as its prefix; keys only: no values. Stop early.
	var kids []string
	for e, err := range c.List(ctx, "/l/", client.ListOptions{Children: true, KeysOnly: true, Limit: 7}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Value != nil {
			t.Fatalf("%s has a value in a keys-only listing", e.Key)
		}
		kids = append(kids, e.Key)
		if len(kids) == 10 {
			break
		}
	}
	if len(kids) != 10 || kids[9] != "/l/k009" {
		t.Fatalf("children: %v", kids)
	}

	for _, err := range c.List(ctx, "/l", client.ListOptions{}) {
		if err == nil {
			t.Fatal("a prefix without / listed")
		}
	}
}

func TestDeleteTree(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	for _, k := range []string{"/t/a", "/t/b/c", "/u"} {
		c.Set(ctx, k, 1)
	}
	n, seq, err := c.DeleteTree(ctx, "/t/")
	if err != nil || n != 2 || seq == 0 {
		t.Fatalf("DeleteTree: %d, %d, %v", n, seq, err)
	}
	if _, err := c.Get(ctx, "/u"); err != nil {
		t.Fatalf("a key outside the prefix: %v", err)
	}
}

func TestTx(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	c.Set(ctx, "/board/1/title", "draft")
	res, err := c.Tx(ctx, client.Tx{
		Checks: []client.Check{{Key: "/board/1/title", Revision: 0}, {Key: "/board/1/lock", Revision: -1}},
		Ops: []client.Op{
			client.SetOp("/board/1/title", "final"),
			client.IncrOp("/board/1/edits", 3),
			client.DeleteOp("/board/1/draft"),
			client.SetOp("/board/1/nothing", nil),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 4 || res.Results[0].Revision != 1 || string(res.Results[1].Value) != "3" || res.Results[2].Revision != -1 || res.Seq == 0 {
		t.Fatalf("Tx: %+v", res)
	}
	if e, _ := c.Get(ctx, "/board/1/nothing"); string(e.Value) != "null" || e.Seq != res.Seq {
		t.Fatalf("a nil SetOp stored %s at seq %d, want null at %d", e.Value, e.Seq, res.Seq)
	}

	// A failed check names its key and current revision; nothing is applied.
	_, err = c.Tx(ctx, client.Tx{
		Checks: []client.Check{{Key: "/board/1/title", Revision: 0}},
		Ops:    []client.Op{client.IncrOp("/board/1/edits", 1)},
	})
	var ce *client.Error
	if !errors.Is(err, client.ErrConflict) || !errors.As(err, &ce) || ce.Key != "/board/1/title" || ce.Revision != 1 {
		t.Fatalf("a failed check: %#v", err)
	}
	if e, _ := c.Get(ctx, "/board/1/edits"); string(e.Value) != "3" {
		t.Fatalf("a failed transaction changed edits to %s", e.Value)
	}
	if _, err := c.Tx(ctx, client.Tx{Ops: []client.Op{client.IncrOp("/a", 1), client.DeleteOp("/a")}}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a key in two ops: %v, want a 400", err)
	}
}

func TestFiles(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	svg := []byte("<svg xmlns=\"http://www.w3.org/2000/svg\">\r\n— ✓</svg>")
	r, err := c.PutFile(ctx, "/ci/app/coverage", "image/svg+xml", bytes.NewReader(svg))
	if err != nil || r.Revision != 0 {
		t.Fatalf("PutFile: %+v, %v", r, err)
	}
	f, err := c.GetFile(ctx, "/ci/app/coverage")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, svg) || f.ContentType != "image/svg+xml" || f.Revision != 0 || f.Seq != r.Seq {
		t.Fatalf("GetFile: %q %q rev %d seq %d, %v", got, f.ContentType, f.Revision, f.Seq, err)
	}
	if _, err := c.Get(ctx, "/ci/app/coverage"); !errors.Is(err, client.ErrFile) {
		t.Fatalf("Get of a file: %v, want ErrFile", err)
	}
	for e, err := range c.List(ctx, "/ci/app/", client.ListOptions{}) {
		if err != nil || !strings.HasPrefix(string(e.Value), `{"type":"image/svg+xml","size":`) {
			t.Fatalf("the file's listed value: %s, %v", e.Value, err)
		}
	}
	if _, err := c.PutFile(ctx, "/ci/app/x", "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("PutFile took a JSON type")
	}
}

// TestErrors: the server's refusals arrive as *Error with status, code and message, and match
// their sentinels.
func TestErrors(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	ctx := testContext(t)
	anon, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	reader := newClient(t, ts.URL, client.WithToken(client.StaticToken(jwtToken(t, "ann", map[string][]string{"read": {"/public/"}}))))
	admin := newClient(t, ts.URL)
	admin.Set(ctx, "/public/a", 1)

	for _, tc := range []struct {
		name   string
		err    error
		want   error
		status int
		code   string
	}{
		{"no token", func() error { _, err := anon.Get(ctx, "/public/a"); return err }(), client.ErrUnauthorized, 401, "unauthorized"},
		{"bad token", func() error {
			_, err := newClient(t, ts.URL, client.WithToken(client.StaticToken("not-a-token"))).Get(ctx, "/public/a")
			return err
		}(), client.ErrUnauthorized, 401, "unauthorized"},
		{"no grant", func() error { _, err := reader.Set(ctx, "/public/a", 2); return err }(), client.ErrForbidden, 403, "forbidden"},
		{"bad ttl", func() error { _, err := admin.Set(ctx, "/x", 1, client.TTL(-time.Second)); return err }(), client.ErrBadRequest, 400, "invalid_ttl"},
		{"bad json", func() error { _, err := admin.Set(ctx, "/x", json.RawMessage("{")); return err }(), client.ErrBadRequest, 400, "invalid_json"},
		{"not found", func() error { _, err := reader.Get(ctx, "/public/b"); return err }(), client.ErrNotFound, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *client.Error
			if !errors.Is(tc.err, tc.want) || !errors.As(tc.err, &e) || e.Status != tc.status || e.Code != tc.code || e.Message == "" {
				t.Fatalf("got %#v, want %v (%d %s)", tc.err, tc.want, tc.status, tc.code)
			}
			if errors.Is(tc.err, client.ErrConflict) {
				t.Errorf("%v matches ErrConflict too", tc.err)
			}
		})
	}
	if e, err := reader.Get(ctx, "/public/a"); err != nil || string(e.Value) != "1" {
		t.Fatalf("the reader reads: %v", err)
	}
}

// TestTokenFunction: the token function is asked for every request, so a refreshed token is used
// at once.
func TestTokenFunction(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	ctx := testContext(t)
	var mu sync.Mutex
	calls := 0
	c := newClient(t, ts.URL, client.WithToken(func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return jwtToken(t, fmt.Sprintf("user%d", calls), map[string][]string{"write": {"/users/{sub}/"}}), nil
	}))
	for i := 1; i <= 3; i++ {
		if _, err := c.Set(ctx, fmt.Sprintf("/users/user%d/seen", i), true); err != nil {
			t.Fatalf("request %d with the token of user%d: %v", i, i, err)
		}
	}
	failing := newClient(t, ts.URL, client.WithToken(func(context.Context) (string, error) { return "", errors.New("vault sealed") }))
	if _, err := failing.Get(ctx, "/a"); err == nil || !strings.Contains(err.Error(), "vault sealed") {
		t.Fatalf("a failing token function: %v", err)
	}
}

func TestBackup(t *testing.T) {
	ts := newServer(t, hub.Config{}, web.Config{})
	c := newClient(t, ts.URL)
	ctx := testContext(t)
	c.Set(ctx, "/a", 1)
	c.PutFile(ctx, "/f", "text/csv", strings.NewReader("a,b\n"))
	var buf bytes.Buffer
	n, err := c.Backup(ctx, &buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup: %d bytes, %v", n, err)
	}
	seq, err := hub.Restore(hub.StoreConfig{Dir: t.TempDir()}, &buf)
	if err != nil || seq != 2 {
		t.Fatalf("restoring the backup: seq %d, %v", seq, err)
	}
	reader := newClient(t, ts.URL, client.WithToken(client.StaticToken(jwtToken(t, "ann", map[string][]string{"write": {"/"}}))))
	if _, err := reader.Backup(ctx, io.Discard); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("a backup without admin: %v, want ErrForbidden", err)
	}
}

// TestErrorOfAProxy: an answer that is not Statehub's JSON still gives an *Error with its status.
func TestErrorOfAProxy(t *testing.T) {
	srv := newPlainServer(t, http.StatusBadGateway, "<html>bad gateway</html>")
	c := newClient(t, srv)
	_, err := c.Get(testContext(t), "/a")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Code != "" || !strings.Contains(e.Message, "bad gateway") {
		t.Fatalf("got %#v", err)
	}
}
