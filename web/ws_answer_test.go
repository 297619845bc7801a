package web

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestWSAnswerJSON: an answer's own encoder (appendJSON) says what json.Marshal says: the same
// fields with the same values, in the same order. Its strings and values may keep <, > and &
// where json.Marshal escapes them; otherwise the bytes are the same.
func TestWSAnswerJSON(t *testing.T) {
	t.Parallel()
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	num := func(v int) *int { return &v }
	str := func(v string) *string { return &v }
	cases := []wsAnswer{
		{},
		{ID: json.RawMessage(`1`), OK: true},
		{ID: json.RawMessage(`"a-1"`), OK: true, Key: "/k", Value: json.RawMessage(`{"n":[1,2.50,"x"]}`), Revision: i64(0), Seq: u64(0)},
		{ID: json.RawMessage(`7`), OK: true, Key: "/k", Revision: i64(3), Seq: u64(9), Replayed: true, Conn: "c1"},
		{ID: json.RawMessage(`-1.5e3`), Error: "revision mismatch: \"/a\" <b> & \\ \n\t\u2028 é \xff", Code: "conflict", Status: 409,
			Key: "/a", Revision: i64(-1), Owner: str(""), Expires: "2026-12-06T13:00:00Z", Oldest: 12},
		{OK: true, Deleted: num(0), Seq: u64(1 << 63)},
		{OK: true, Cursor: "/k/0001", Token: "tok", Fence: 42, Sub: str("user 1")},
		{OK: true, Value: json.RawMessage(`"<script>&amp;"`)},
		{ID: json.RawMessage(`2`), OK: true, Entries: []ListEntry{{Key: "/a", Value: json.RawMessage(`1`)}}, Cursor: "x"},
		{ID: json.RawMessage(`3`), OK: true, Entries: []ListEntry{}},
		{ID: json.RawMessage(`4`), OK: true, Seq: u64(5), Results: []TxOpAnswer{{Key: "/a", Revision: 2}}},
		{ID: json.RawMessage(`5`), OK: true, Key: "/p", Presence: &PresenceJSON{Conn: "c"}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	for range 500 { // every combination of fields present or not, more or less
		var a wsAnswer
		if rng.IntN(2) == 0 {
			a.ID = json.RawMessage(pick(`0`, `123456789`, `"id"`, `""`))
		}
		a.OK = rng.IntN(2) == 0
		a.Error, a.Code, a.Key = pick("", "bad", "x<y"), pick("", "not_found"), pick("", "/k/1", "/a_b-c/")
		a.Status = []int{0, 400, 503}[rng.IntN(3)]
		if rng.IntN(2) == 0 {
			a.Value = json.RawMessage(pick(`null`, `true`, `{"a":[]}`, `"v"`, `-0.0e1`))
		}
		if rng.IntN(2) == 0 {
			a.Revision = i64(rng.Int64N(100) - 1)
		}
		if rng.IntN(2) == 0 {
			a.Seq = u64(rng.Uint64())
		}
		if rng.IntN(4) == 0 {
			a.Deleted = num(rng.IntN(5))
		}
		a.Cursor, a.Token, a.Expires, a.Conn = pick("", "c"), pick("", "t"), pick("", "2026-01-01T00:00:00Z"), pick("", "conn-1")
		a.Replayed = rng.IntN(2) == 0
		a.Fence, a.Oldest = uint64(rng.IntN(3)), uint64(rng.IntN(3))
		if rng.IntN(3) == 0 {
			a.Owner = str(pick("", "ann"))
		}
		if rng.IntN(3) == 0 {
			a.Sub = str(pick("", "bob"))
		}
		cases = append(cases, a)
	}
	// Each field alone, set by reflection: a field added to wsAnswer and not to appendJSON fails.
	for i := range reflect.TypeFor[wsAnswer]().NumField() {
		var a wsAnswer
		f := reflect.ValueOf(&a).Elem().Field(i)
		switch f.Interface().(type) {
		case json.RawMessage:
			f.SetBytes([]byte(`1`))
		default:
			v := reflect.New(f.Type()).Elem()
			if f.Kind() == reflect.Pointer {
				v = reflect.New(f.Type().Elem())
			}
			switch e := reflect.Indirect(v); e.Kind() {
			case reflect.String:
				e.SetString("x")
			case reflect.Bool:
				e.SetBool(true)
			case reflect.Int, reflect.Int64:
				e.SetInt(2)
			case reflect.Uint64:
				e.SetUint(2)
			case reflect.Slice:
				e.Set(reflect.MakeSlice(e.Type(), 1, 1))
			case reflect.Struct:
			default:
				t.Fatalf("field %s of kind %s: teach this test to set it", reflect.TypeFor[wsAnswer]().Field(i).Name, e.Kind())
			}
			f.Set(v)
		}
		cases = append(cases, a)
	}
	for _, a := range cases {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.appendJSON([]byte("prefix"))
		if err != nil || !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("appendJSON(%+v) = %s, %v", a, got, err)
		}
		got = got[len("prefix"):]
		if !bytes.ContainsAny(got, "<>&") {
			if !bytes.Equal(got, want) {
				t.Fatalf("appendJSON = %s\njson.Marshal = %s", got, want)
			}
			continue
		}
		if g, w := decodeOrdered(t, got), decodeOrdered(t, want); !reflect.DeepEqual(g, w) {
			t.Fatalf("appendJSON = %s\njson.Marshal = %s", got, want)
		}
	}
}

// decodeOrdered returns the top-level fields of a JSON object in order, each with its value
// decoded (numbers as written).
func decodeOrdered(t *testing.T, b []byte) [][2]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not an object: %v", b, err)
	}
	var out [][2]any
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		out = append(out, [2]any{k, v})
	}
	if _, err := d.Token(); err != nil || d.More() || strings.TrimSpace(string(b[d.InputOffset():])) != "" {
		t.Fatalf("%s: trailing bytes", b)
	}
	return out
}
