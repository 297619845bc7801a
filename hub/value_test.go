package hub_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/statehub/statehub/hub"
)

func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

func nestedObjects(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
}

func TestCompactJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limits  hub.Limits
		in      string
		want    string
		wantErr error
		msg     string // in the error's text, when set
	}{
		{name: "big integer kept", in: `12345678901234567890`, want: `12345678901234567890`},
		{name: "trailing zero kept", in: `1.50`, want: `1.50`},
		{name: "exponent kept", in: `2e3`, want: `2e3`},
		{name: "signed exponent kept", in: `1E+10`, want: `1E+10`},
		{name: "negative zero kept", in: `-0`, want: `-0`},
		{name: "long fraction kept", in: `0.1000000000000000055511151231257827`, want: `0.1000000000000000055511151231257827`},
		{name: "numbers in containers", in: `{ "n" : [ 12345678901234567890 , 1.50 , -0 ] }`, want: `{"n":[12345678901234567890,1.50,-0]}`},
		{name: "white space removed", in: " {\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\" : null } \n", want: `{"a":[1,2],"b":null}`},
		{name: "string escapes kept", in: `"a\"b\\c\n\u00e9\/"`, want: `"a\"b\\c\n\u00e9\/"`},
		{name: "spaces inside strings kept", in: `{"a b": " x "}`, want: `{"a b":" x "}`},
		{name: "raw unicode kept", in: `"日本 語"`, want: `"日本 語"`},
		{name: "line separator escape kept", in: `"\u2028"`, want: `"\u2028"`},
		{name: "true", in: `true`, want: `true`},
		{name: "null", in: ` null `, want: `null`},
		{name: "empty object", in: `{ }`, want: `{}`},

		{name: "brackets inside strings do not nest", limits: hub.Limits{MaxJSONDepth: 1}, in: `{"a":"[[[[{{{{"}`, want: `{"a":"[[[[{{{{"}`},
		{name: "escaped quote keeps the string open", limits: hub.Limits{MaxJSONDepth: 1}, in: `["\"[[[["]`, want: `["\"[[[["]`},
		{name: "escaped backslash closes the string", limits: hub.Limits{MaxJSONDepth: 1}, in: `["\\",[1]]`, wantErr: hub.ErrValueTooDeep},
		{name: "depth at default limit", in: nested(64), want: nested(64)},
		{name: "depth past default limit", in: nested(65), wantErr: hub.ErrValueTooDeep},
		{name: "object depth at default limit", in: nestedObjects(64), want: nestedObjects(64)},
		{name: "object depth past default limit", in: nestedObjects(65), wantErr: hub.ErrValueTooDeep},
		{name: "siblings do not add depth", limits: hub.Limits{MaxJSONDepth: 3}, in: `[[],[1],{"a":[]},{"b":{}}]`, want: `[[],[1],{"a":[]},{"b":{}}]`},

		{name: "size at limit", limits: hub.Limits{MaxValueBytes: 10}, in: `"12345678"`, want: `"12345678"`},
		{name: "size past limit", limits: hub.Limits{MaxValueBytes: 10}, in: `"123456789"`, wantErr: hub.ErrValueTooLarge},
		{name: "size past default limit", in: `"` + strings.Repeat("x", hub.DefaultMaxValueBytes) + `"`, wantErr: hub.ErrValueTooLarge},

		{name: "empty body", in: ``, wantErr: hub.ErrInvalidValue},
		{name: "only white space", in: " \n\t ", wantErr: hub.ErrInvalidValue},
		{name: "unterminated object", in: `{`, wantErr: hub.ErrInvalidValue},
		{name: "missing value", in: `{"a":}`, wantErr: hub.ErrInvalidValue},
		{name: "single quotes", in: `'a'`, wantErr: hub.ErrInvalidValue},
		{name: "NaN", in: `NaN`, wantErr: hub.ErrInvalidValue},
		{name: "leading zero", in: `01`, wantErr: hub.ErrInvalidValue},
		{name: "leading dot", in: `.5`, wantErr: hub.ErrInvalidValue},
		{name: "plus sign", in: `+1`, wantErr: hub.ErrInvalidValue},
		{name: "trailing comma", in: `[1,]`, wantErr: hub.ErrInvalidValue},
		{name: "bare word", in: `hello`, wantErr: hub.ErrInvalidValue},
		{name: "raw newline in string", in: "\"a\nb\"", wantErr: hub.ErrInvalidValue},
		{name: "trailing garbage", in: `{} x`, wantErr: hub.ErrInvalidValue},
		{name: "two documents", in: `1 2`, wantErr: hub.ErrInvalidValue},
		{name: "two objects", in: `{}{}`, wantErr: hub.ErrInvalidValue},
		{name: "extra closing bracket", in: `"a"]`, wantErr: hub.ErrInvalidValue},

		// JSON is UTF-8 (RFC 8259); encoding/json's Compact alone lets any byte through in a string.
		{name: "multi-byte text unchanged", in: "{\"ключ\":\"€ 𝄞 日本\"}", want: "{\"ключ\":\"€ 𝄞 日本\"}"},
		{name: "replacement character itself", in: "\"\xef\xbf\xbd\"", want: "\"\xef\xbf\xbd\""},
		{name: "escaped lone surrogate is ASCII", in: `"\ud800"`, want: `"\ud800"`},
		{name: "invalid bytes of the report", in: "\"\xff\xfe\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 1"},
		{name: "lone continuation byte", in: "\"a\x80b\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 2"},
		{name: "overlong slash", in: "\"\xc0\xaf\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 1"},
		{name: "overlong three bytes", in: "\"\xe0\x80\xaf\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 1"},
		{name: "surrogate half", in: "\"\xed\xa0\x80\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 1"},
		{name: "beyond U+10FFFF", in: "\"\xf4\x90\x80\x80\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 1"},
		{name: "truncated sequence", in: "\"€\xe2\x82\"", wantErr: hub.ErrInvalidValue, msg: "byte offset 4"},
		{name: "truncated at the end", in: "\"\xe2\x82", wantErr: hub.ErrInvalidValue, msg: "byte offset 1"},
		{name: "in an object key", in: "{\"ok\":1,\"k\xff\":2}", wantErr: hub.ErrInvalidValue, msg: "byte offset 10"},
		{name: "in a nested array", in: "[[\"日本\"],[\"\xfe\"]]", wantErr: hub.ErrInvalidValue, msg: "byte offset 14"},
		{name: "outside a string", in: "[1,\xff]", wantErr: hub.ErrInvalidValue, msg: "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.limits.CompactJSON([]byte(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("CompactJSON(%.40q) = %.40q, %v; want %v (%q)", tc.in, got, err, tc.wantErr, tc.msg)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("CompactJSON(%.40q) = %.40q, %v; want %.40q", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzCompactJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.50, "x"]}`, `12345678901234567890`, `-0`, `"\u0000"`, `[`, ``, `{} {}`,
		"\"\xff\xfe\"", "{\"k\xed\xa0\x80\":1}", "[\"\xc0\xaf\",\"€\xe2\x82\"]", "\"𝄞 日本\""} {
		f.Add([]byte(s))
	}
	l := hub.Limits{MaxValueBytes: 1 << 16, MaxJSONDepth: 16}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := l.CompactJSON(in)
		if err != nil {
			if !errors.Is(err, hub.ErrInvalidValue) && !errors.Is(err, hub.ErrValueTooDeep) && !errors.Is(err, hub.ErrValueTooLarge) {
				t.Fatalf("CompactJSON(%q): unexpected error %v", in, err)
			}
			// json.Valid does not check UTF-8 inside strings; JSON (RFC 8259) is UTF-8.
			if json.Valid(in) && utf8.Valid(in) && len(in) <= 1<<16 && errors.Is(err, hub.ErrInvalidValue) {
				t.Fatalf("CompactJSON(%q) refused valid JSON: %v", in, err)
			}
			return
		}
		if !json.Valid(in) || !utf8.Valid(in) {
			t.Fatalf("CompactJSON accepted invalid JSON %q", in)
		}
		if !utf8.Valid(out) {
			t.Fatalf("CompactJSON(%q) = %q, not valid UTF-8: it could not go into a WebSocket text frame", in, out)
		}
		if !json.Valid(out) {
			t.Fatalf("CompactJSON(%q) = %q, not valid JSON", in, out)
		}
		if bytes.ContainsAny(out, "\r\n") {
			t.Fatalf("CompactJSON(%q) = %q holds a line break", in, out)
		}
		if len(out) > len(in) {
			t.Fatalf("CompactJSON(%q) = %q grew", in, out)
		}
		again, err := l.CompactJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-compacting %q = %q, %v; want identity", out, again, err)
		}
	})
}
