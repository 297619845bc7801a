package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/internal/fakeclock"
)

// opStep is one operation written for both transports: an HTTP request and a WebSocket message.
// "$token" in either is replaced by the token of the transport's last lock answer.
type opStep struct {
	method, path, body string
	hdr                []string // name, value pairs
	ws                 map[string]any
}

// opOutcome is what a step's answer says, in terms both transports share.
type opOutcome struct {
	Status   int
	Code     string
	Key      string
	Value    string
	Revision *int64
	Seq      *uint64
	Deleted  *int
	Entries  int
	Cursor   bool
	Fence    uint64
	Owner    string
	Expires  string
	Results  string
}

func (o opOutcome) String() string {
	b, _ := json.Marshal(o)
	return string(b)
}

// TestOperationsAgreeAcrossTransports runs every operation over HTTP and over the WebSocket,
// each against a fresh server given the same steps, and requires the same answer and the same
// error (status and code) from both: the operation layer is the one implementation.
func TestOperationsAgreeAcrossTransports(t *testing.T) {
	t.Parallel()
	set := func(key, v string) opStep {
		return opStep{method: "POST", path: key, body: v, ws: map[string]any{"op": "set", "key": key, "value": json.RawMessage(v)}}
	}
	get := func(key string) opStep {
		return opStep{method: "GET", path: key, ws: map[string]any{"op": "get", "key": key}}
	}
	cases := []struct {
		name  string
		steps []opStep
	}{
		{"get", []opStep{get("/a"), set("/a", `{"x": 1}`), get("/a"), get("/bad//key")}},
		{"set", []opStep{set("/a", `1`), set("/a", `[1, 2]`), set("/a", strings.Repeat("[", 65)+strings.Repeat("]", 65)), set("/a//b", `1`),
			{method: "POST", path: "/a?ttl=nope", body: `1`, ws: map[string]any{"op": "set", "key": "/a", "value": 1, "ttl": "nope"}},
			{method: "POST", path: "/a?ttl=1h", body: `1`, ws: map[string]any{"op": "set", "key": "/a", "value": 1, "ttl": "1h"}},
		}},
		{"compare-and-swap", []opStep{
			{method: "PUT", path: "/c", body: `1`, hdr: []string{"X-Revision", "0"}, ws: map[string]any{"op": "cas", "key": "/c", "value": 1, "revision": 0}},
			{method: "PUT", path: "/c", body: `2`, hdr: []string{"X-Revision", "0"}, ws: map[string]any{"op": "cas", "key": "/c", "value": 2, "revision": 0}},
			{method: "PUT", path: "/c", body: `2`, hdr: []string{"X-Revision", "1"}, ws: map[string]any{"op": "cas", "key": "/c", "value": 2, "revision": 1}},
		}},
		{"delete", []opStep{
			{method: "DELETE", path: "/d", ws: map[string]any{"op": "delete", "key": "/d"}},
			set("/d", `1`),
			{method: "DELETE", path: "/d", hdr: []string{"X-Revision", "3"}, ws: map[string]any{"op": "delete", "key": "/d", "revision": 3}},
			{method: "DELETE", path: "/d", hdr: []string{"X-Revision", "0"}, ws: map[string]any{"op": "delete", "key": "/d", "revision": 0}},
		}},
		{"subtree delete", []opStep{set("/p/a", `1`), set("/p/b/c", `2`),
			{method: "DELETE", path: "/p/", ws: map[string]any{"op": "delete", "path": "/p/"}}, get("/p/a")}},
		{"incr", []opStep{
			{method: "POST", path: "/n?incr=5", ws: map[string]any{"op": "incr", "key": "/n", "by": 5}},
			{method: "POST", path: "/n?incr=9223372036854775807", ws: map[string]any{"op": "incr", "key": "/n", "by": int64(9223372036854775807)}},
			set("/s", `"text"`),
			{method: "POST", path: "/s?incr", ws: map[string]any{"op": "incr", "key": "/s"}},
		}},
		{"list", []opStep{set("/l/a", `1`), set("/l/b", `2`), set("/l/c/d", `3`),
			{method: "GET", path: "/l/?limit=2", ws: map[string]any{"op": "list", "path": "/l/", "limit": 2}},
			{method: "GET", path: "/l/?children", ws: map[string]any{"op": "list", "path": "/l/", "children": true}},
			{method: "GET", path: "/l/?cursor=!!", ws: map[string]any{"op": "list", "path": "/l/", "cursor": "!!"}},
		}},
		{"locks", []opStep{
			{method: "POST", path: "/lk?lock&owner=ci&ttl=1m", ws: map[string]any{"op": "lock", "key": "/lk", "owner": "ci", "ttl": "1m"}},
			{method: "POST", path: "/lk?lock&owner=other", ws: map[string]any{"op": "lock", "key": "/lk", "owner": "other"}},
			set("/lk", `1`),
			{method: "POST", path: "/lk?lock&renew&ttl=2m", hdr: []string{"X-Lock-Token", "$token"}, ws: map[string]any{"op": "renew", "key": "/lk", "token": "$token", "ttl": "2m"}},
			{method: "POST", path: "/lk?lock&renew", hdr: []string{"X-Lock-Token", "wrong"}, ws: map[string]any{"op": "renew", "key": "/lk", "token": "wrong"}},
			{method: "DELETE", path: "/lk?lock", ws: map[string]any{"op": "unlock", "key": "/lk"}},
			{method: "DELETE", path: "/lk?lock", hdr: []string{"X-Lock-Token", "$token"}, ws: map[string]any{"op": "unlock", "key": "/lk", "token": "$token"}},
			{method: "POST", path: "/lk?lock&wait=nope", ws: map[string]any{"op": "lock", "key": "/lk", "wait": "nope"}},
		}},
		{"transactions", []opStep{set("/t/a", `1`),
			{method: "POST", path: "/.tx", body: `{"checks":[{"key":"/t/a","revision":0}],"ops":[{"op":"set","key":"/t/b","value":2},{"op":"incr","key":"/t/n"}]}`,
				ws: map[string]any{"op": "tx", "checks": []map[string]any{{"key": "/t/a", "revision": 0}}, "ops": []map[string]any{{"op": "set", "key": "/t/b", "value": 2}, {"op": "incr", "key": "/t/n"}}}},
			{method: "POST", path: "/.tx", body: `{"checks":[{"key":"/t/a","revision":5}],"ops":[{"op":"delete","key":"/t/a"}]}`,
				ws: map[string]any{"op": "tx", "checks": []map[string]any{{"key": "/t/a", "revision": 5}}, "ops": []map[string]any{{"op": "delete", "key": "/t/a"}}}},
			{method: "POST", path: "/.tx", body: `{"ops":[{"op":"jump","key":"/t/a"}]}`,
				ws: map[string]any{"op": "tx", "ops": []map[string]any{{"op": "jump", "key": "/t/a"}}}},
		}},
		{"broadcast", []opStep{
			{method: "POST", path: "/b/c?broadcast", body: `{"x": 1}`, ws: map[string]any{"op": "broadcast", "path": "/b/c", "msg": json.RawMessage(`{"x": 1}`)}},
			{method: "POST", path: "/b/?broadcast", body: `"all"`, ws: map[string]any{"op": "broadcast", "path": "/b/", "msg": "all"}},
			{method: "POST", path: "/b/c?broadcast", body: strings.Repeat("[", 65) + strings.Repeat("]", 65), ws: map[string]any{"op": "broadcast", "path": "/b/c", "msg": json.RawMessage(strings.Repeat("[", 65) + strings.Repeat("]", 65))}},
			{method: "POST", path: "/b/c?broadcast", ws: map[string]any{"op": "broadcast", "path": "/b/c"}},
			{method: "POST", path: "/b/c?broadcast", body: strings.Repeat("1", 64<<10+1), ws: map[string]any{"op": "broadcast", "path": "/b/c", "msg": json.RawMessage(strings.Repeat("1", 64<<10+1))}},
			{method: "POST", path: "/b//c?broadcast", body: `1`, ws: map[string]any{"op": "broadcast", "path": "/b//c", "msg": 1}},
			{method: "POST", path: "/?broadcast", body: `1`, ws: map[string]any{"op": "broadcast", "path": "/", "msg": 1}},
			get("/b/c"),
		}},
		{"idempotency", []opStep{
			{method: "POST", path: "/i", body: `1`, hdr: []string{"Idempotency-Key", "k"}, ws: map[string]any{"op": "set", "key": "/i", "value": 1, "idem": "k"}},
			{method: "POST", path: "/i", body: `1`, hdr: []string{"Idempotency-Key", "k"}, ws: map[string]any{"op": "set", "key": "/i", "value": 1, "idem": "k"}},
			{method: "POST", path: "/i", body: `2`, hdr: []string{"Idempotency-Key", "k"}, ws: map[string]any{"op": "set", "key": "/i", "value": 2, "idem": "k"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			httpOut := runOverHTTP(t, tc.steps)
			wsOut := runOverWS(t, tc.steps)
			for i := range tc.steps {
				if httpOut[i].String() != wsOut[i].String() {
					t.Errorf("step %d (%s %s):\n HTTP      %s\n WebSocket %s", i, tc.steps[i].method, tc.steps[i].path, httpOut[i], wsOut[i])
				}
			}
		})
	}
}

func newOpsServer(t *testing.T) *wsServer {
	return newWSServer(t, hub.Config{Clock: fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}, Config{}, false)
}

func runOverHTTP(t *testing.T, steps []opStep) []opOutcome {
	ts := newOpsServer(t)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws"), "/.ws")
	var token string
	var out []opOutcome
	for _, st := range steps {
		req, err := http.NewRequest(st.method, base+st.path, strings.NewReader(st.body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(st.hdr); i += 2 {
			req.Header.Set(st.hdr[i], strings.ReplaceAll(st.hdr[i+1], "$token", token))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			resp.StatusCode = http.StatusOK // a broadcast's 202 is the WebSocket's ok
		}
		o := opOutcome{Status: resp.StatusCode}
		var a struct {
			Code     string          `json:"code"`
			Key      string          `json:"key"`
			Revision *int64          `json:"revision"`
			Seq      *uint64         `json:"seq"`
			Deleted  *int            `json:"deleted"`
			Entries  []any           `json:"entries"`
			Cursor   string          `json:"cursor"`
			Token    string          `json:"token"`
			Fence    uint64          `json:"fence"`
			Owner    string          `json:"owner"`
			Expires  string          `json:"expires"`
			Results  json.RawMessage `json:"results"`
		}
		if resp.StatusCode != http.StatusOK {
			json.Unmarshal(body, &a)
			o.Code, o.Revision, o.Key, o.Owner, o.Expires = a.Code, a.Revision, a.Key, a.Owner, a.Expires
			out = append(out, o)
			continue
		}
		revision := func() *int64 {
			n, err := strconv.ParseInt(resp.Header.Get("X-Revision"), 10, 64)
			if err != nil {
				return nil
			}
			return &n
		}
		seq := func() *uint64 {
			n, err := strconv.ParseUint(resp.Header.Get("X-Seq"), 10, 64)
			if err != nil {
				return nil
			}
			return &n
		}
		switch {
		case st.method == "GET" && !strings.HasSuffix(strings.SplitN(st.path, "?", 2)[0], "/"), strings.Contains(st.path, "incr"):
			o.Key, o.Value, o.Revision, o.Seq = strings.SplitN(st.path, "?", 2)[0], compactText(body), revision(), seq()
		default:
			json.Unmarshal(body, &a)
			o.Key, o.Revision, o.Seq, o.Deleted = a.Key, a.Revision, a.Seq, a.Deleted
			o.Entries, o.Cursor, o.Fence, o.Owner, o.Expires = len(a.Entries), a.Cursor != "", a.Fence, a.Owner, a.Expires
			if len(a.Results) > 0 {
				o.Results = compactText(a.Results)
			}
			if a.Token != "" {
				token = a.Token
				o.Revision, o.Seq = revision(), seq()
			}
		}
		out = append(out, o)
	}
	return out
}

func runOverWS(t *testing.T, steps []opStep) []opOutcome {
	ts := newOpsServer(t)
	c := ts.dial(t)
	var token string
	var out []opOutcome
	for _, st := range steps {
		req := map[string]any{}
		for k, v := range st.ws {
			if s, ok := v.(string); ok {
				v = strings.ReplaceAll(s, "$token", token)
			}
			req[k] = v
		}
		m := c.call(req)
		var a struct {
			Code     string          `json:"code"`
			Status   int             `json:"status"`
			Key      string          `json:"key"`
			Value    json.RawMessage `json:"value"`
			Revision *int64          `json:"revision"`
			Seq      *uint64         `json:"seq"`
			Deleted  *int            `json:"deleted"`
			Entries  []any           `json:"entries"`
			Cursor   string          `json:"cursor"`
			Token    string          `json:"token"`
			Fence    uint64          `json:"fence"`
			Owner    *string         `json:"owner"`
			Expires  string          `json:"expires"`
			Results  json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal([]byte(m.raw), &a); err != nil {
			t.Fatal(err)
		}
		o := opOutcome{Status: http.StatusOK, Key: a.Key, Revision: a.Revision, Seq: a.Seq, Deleted: a.Deleted,
			Entries: len(a.Entries), Cursor: a.Cursor != "", Fence: a.Fence, Expires: a.Expires}
		if a.Owner != nil {
			o.Owner = *a.Owner
		}
		if !m.OK {
			out = append(out, opOutcome{Status: a.Status, Code: a.Code, Revision: a.Revision, Key: a.Key, Owner: o.Owner, Expires: a.Expires})
			continue
		}
		if len(a.Value) > 0 {
			o.Value = compactText(a.Value)
		}
		if len(a.Results) > 0 {
			o.Results = compactText(a.Results)
		}
		if a.Token != "" {
			token = a.Token
		}
		out = append(out, o)
	}
	return out
}

func compactText(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Sprintf("%q", b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
