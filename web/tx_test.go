package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/statehub/statehub/hub"
)

// txServer is a server over a fresh hub, driven without a network.
func txServer(t *testing.T) (*hub.Hub, func(method, path, body string) *httptest.ResponseRecorder) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	h := hub.New(hub.Config{Logger: quiet})
	t.Cleanup(func() { h.Close() })
	srv := New(h, Config{Logger: quiet}).Handler()
	return h, func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:1234" // a client on loopback, which a protected server serves
		srv.ServeHTTP(rec, req)
		return rec
	}
}

func TestTxHTTP(t *testing.T) {
	t.Parallel()
	h, do := txServer(t)
	do("POST", "/a", `1`)
	do("POST", "/b", `"x"`)
	before := h.Seq()

	// A failed check: 409 naming the key and its revision; nothing changes.
	rec := do("POST", "/.tx", `{"checks":[{"key":"/a","revision":0},{"key":"/b","revision":3}],"ops":[{"op":"set","key":"/a","value":2}]}`)
	var eb ErrorBody
	json.Unmarshal(rec.Body.Bytes(), &eb)
	if rec.Code != http.StatusConflict || eb.Code != "revision_conflict" || eb.Key != "/b" || eb.Revision == nil || *eb.Revision != 0 {
		t.Fatalf("failed check: %d %s", rec.Code, rec.Body)
	}
	if h.Seq() != before {
		t.Fatal("a failed transaction changed something")
	}

	rec = do("POST", "/.tx", `{"checks":[{"key":"/a","revision":0},{"key":"/c","revision":-1}],
		"ops":[{"op":"set","key":"/c","value":{ "n" : 1 }},{"op":"incr","key":"/a","by":9},{"op":"delete","key":"/b"},{"op":"incr","key":"/d"}]}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("tx: %d %s", rec.Code, rec.Body)
	}
	var ans TxAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || ans.Seq != before+1 || len(ans.Results) != 4 {
		t.Fatalf("answer %s (%v)", rec.Body, err)
	}
	if string(ans.Results[1].Value) != "10" || string(ans.Results[3].Value) != "1" || ans.Results[2].Revision != 1 {
		t.Fatalf("results %s", rec.Body)
	}
	for key, want := range map[string]string{"/a": "10", "/c": `{"n":1}`, "/d": "1"} {
		e, err := h.Get(key)
		if err != nil || string(e.Value) != want || e.Seq != ans.Seq {
			t.Errorf("%s: %s at seq %d (%v), want %s at %d", key, e.Value, e.Seq, err, want, ans.Seq)
		}
	}
	if _, err := h.Get("/b"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("/b not deleted: %v", err)
	}

	for _, tc := range []struct{ name, body, code string }{
		{"repeated key", `{"ops":[{"op":"set","key":"/x","value":1},{"op":"delete","key":"/x"}]}`, "invalid_tx"},
		{"unknown op", `{"ops":[{"op":"append","key":"/x"}]}`, "invalid_tx"},
		{"unknown field", `{"ops":[],"when":1}`, "invalid_tx"},
		{"check without revision", `{"checks":[{"key":"/x"}]}`, "invalid_tx"},
		{"value on delete", `{"ops":[{"op":"delete","key":"/x","value":1}]}`, "invalid_tx"},
		{"bad json value", `{"ops":[{"op":"set","key":"/x","value":"a"x}]}`, "invalid_tx"},
		{"bad key", `{"ops":[{"op":"set","key":"x","value":1}]}`, "invalid_key"},
		{"not json", `hello`, "invalid_tx"},
		{"two values", `{} {}`, "invalid_tx"},
	} {
		rec := do("POST", "/.tx", tc.body)
		var eb ErrorBody
		json.Unmarshal(rec.Body.Bytes(), &eb)
		if rec.Code != http.StatusBadRequest || eb.Code != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, rec.Code, rec.Body, tc.code)
		}
	}
}

// FuzzDecodeTx: the transaction body decoder never panics, and what it accepts has only known ops,
// valid JSON values within the limits on sets and no value elsewhere. (Keys are the hub's to check.)
func FuzzDecodeTx(f *testing.F) {
	for _, s := range []string{
		`{"checks":[{"key":"/a","revision":-1}],"ops":[{"op":"set","key":"/a","value":{"x":[1,2]}}]}`,
		`{"ops":[{"op":"incr","key":"/n","by":-9223372036854775808},{"op":"delete","key":"/d"}]}`,
		`{"ops":[{"op":"set","key":"/a","value":12345678901234567890}]}`,
		`{"ops":[{"op":"incr","key":"/n","by":1.5}]}`,
		`{"checks":null,"ops":null}`,
		`{"ops":[{"op":"set","key":"/a"}]}`,
		`[]`, `{`, ``, `{"ops":[{"op":"set","key":"/a","value":[[[[[[[[[[]]]]]]]]]]}]}`,
		"{\"ops\":[{\"op\":\"set\",\"key\":\"/a\",\"value\":\"\xff\xfe\"}]}",
		"{\"ops\":[{\"op\":\"set\",\"key\":\"/a\",\"value\":{\"\xed\xa0\x80\":1}}]}",
		"{\"checks\":[{\"key\":\"/\xc0\xaf\",\"revision\":-1}],\"ops\":[{\"op\":\"delete\",\"key\":\"/\xe2\x82\"}]}",
	} {
		f.Add([]byte(s))
	}
	limits := hub.Limits{MaxJSONDepth: 8}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeTx(body)
		if err != nil {
			return
		}
		checks, ops, err := req.compile(limits)
		if err != nil {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		for _, c := range checks {
			if !utf8.ValidString(c.Key) {
				t.Fatalf("accepted check key %q", c.Key)
			}
		}
		for _, op := range ops {
			switch op.Op {
			case hub.TxSet:
				if _, err := limits.CompactJSON(op.Value); err != nil {
					t.Fatalf("accepted value %q: %v", op.Value, err)
				}
			case hub.TxIncr, hub.TxDelete:
				if op.Value != nil {
					t.Fatalf("%s with a value", op.Op)
				}
			default:
				t.Fatalf("accepted op %q", op.Op)
			}
		}
	})
}
