package hub_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/statehub/statehub/hub"
)

// keyOfBytes returns a valid one-component key of exactly n bytes.
func keyOfBytes(n int) string { return "/" + strings.Repeat("k", n-1) }

// keyOfDepth returns a valid key of exactly d components.
func keyOfDepth(d int) string { return strings.Repeat("/a", d) }

func TestCheckKey(t *testing.T) {
	t.Parallel()
	small := hub.Limits{MaxKeyBytes: 8, MaxKeyDepth: 2}
	tests := []struct {
		name   string
		limits hub.Limits
		key    string
		ok     bool
	}{
		{name: "one component", key: "/a", ok: true},
		{name: "nested", key: "/a/b/c", ok: true},
		{name: "digits", key: "/123/0", ok: true},
		{name: "dash and underscore", key: "/a-b_c/-/_", ok: true},
		{name: "unicode letters", key: "/héllo/日本語/Ωμέγα", ok: true},
		{name: "unicode digits", key: "/٣٤/१२", ok: true},
		{name: "mixed case", key: "/CamelCase", ok: true},

		{name: "empty", key: ""},
		{name: "root", key: "/"},
		{name: "missing leading slash", key: "a/b"},
		{name: "trailing slash", key: "/a/"},
		{name: "empty component", key: "/a//b"},
		{name: "leading double slash", key: "//a"},
		{name: "dot", key: "/a.b"},
		{name: "dot component", key: "/.info"},
		{name: "dot dot", key: "/a/.."},
		{name: "colon", key: "/a:b"},
		{name: "space", key: "/a b"},
		{name: "tab", key: "/a\tb"},
		{name: "newline", key: "/a\nb"},
		{name: "nul", key: "/a\x00"},
		{name: "plus", key: "/a+b"},
		{name: "percent", key: "/a%20b"},
		{name: "query", key: "/a?b"},
		{name: "backslash", key: "/a\\b"},
		{name: "emoji", key: "/😀"},
		{name: "combining mark (not a letter, as AtomKV)", key: "/e\u0301"},
		{name: "superscript digit (not a decimal digit, as AtomKV)", key: "/x²"},
		{name: "invalid UTF-8", key: "/a\xffb"},
		{name: "truncated UTF-8", key: "/\xe6\x97"},
		{name: "replacement character", key: "/\ufffd"},

		{name: "at default byte limit", key: keyOfBytes(hub.DefaultMaxKeyBytes), ok: true},
		{name: "past default byte limit", key: keyOfBytes(hub.DefaultMaxKeyBytes + 1)},
		{name: "at default depth", key: keyOfDepth(hub.DefaultMaxKeyDepth), ok: true},
		{name: "past default depth", key: keyOfDepth(hub.DefaultMaxKeyDepth + 1)},
		{name: "at custom limits", limits: small, key: "/abc/def", ok: true},
		{name: "past custom byte limit", limits: small, key: "/abc/defg"},
		{name: "past custom depth", limits: small, key: "/a/b/c"},
		{name: "multibyte counted in bytes", limits: small, key: "/日本語"}, // 10 bytes
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.limits.CheckKey(tc.key)
			if tc.ok && err != nil {
				t.Fatalf("CheckKey(%q) = %v, want ok", tc.key, err)
			}
			if !tc.ok && !errors.Is(err, hub.ErrInvalidKey) {
				t.Fatalf("CheckKey(%q) = %v, want ErrInvalidKey", tc.key, err)
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		ok   bool
	}{
		{"key", "/a/b", true},
		{"prefix", "/a/b/", true},
		{"root", "/", true},
		{"one component prefix", "/a/", true},
		{"empty", "", false},
		{"double slash", "//", false},
		{"prefix with empty component", "/a//", false},
		{"prefix without leading slash", "a/", false},
		{"prefix with dot", "/a.b/", false},
		{"prefix with colon", "/a:b/", false},
		{"deep prefix at limit", keyOfDepth(hub.DefaultMaxKeyDepth) + "/", true},
		{"deep prefix past limit", keyOfDepth(hub.DefaultMaxKeyDepth+1) + "/", false},
		{"long prefix", keyOfBytes(hub.DefaultMaxKeyBytes-1) + "/", true},
		{"prefix past byte limit", keyOfBytes(hub.DefaultMaxKeyBytes+1) + "/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := hub.Limits{}.CheckPath(tc.path)
			if tc.ok && err != nil {
				t.Fatalf("CheckPath(%q) = %v, want ok", tc.path, err)
			}
			if !tc.ok && !errors.Is(err, hub.ErrInvalidKey) {
				t.Fatalf("CheckPath(%q) = %v, want ErrInvalidKey", tc.path, err)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		path, key string
		want      bool
	}{
		{"same key", "/a/b", "/a/b", true},
		{"other key", "/a/b", "/a/bc", false},
		{"key does not cover its subtree", "/a/b", "/a/b/c", false},
		{"prefix covers child", "/a/b/", "/a/b/c", true},
		{"prefix covers grandchild", "/a/b/", "/a/b/c/d", true},
		{"prefix excludes sibling with longer name", "/a/b/", "/a/bc", false},
		{"prefix excludes its own key", "/a/b/", "/a/b", false},
		{"root covers all", "/", "/x/y", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := hub.Covers(tc.path, tc.key); got != tc.want {
				t.Errorf("Covers(%q, %q) = %v, want %v", tc.path, tc.key, got, tc.want)
			}
		})
	}
}

func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"/a", "/a/b", "/a/", "//", "/a.b", "/日本", "/a\xff", "", "/", "/-_/9"} {
		f.Add(s)
	}
	limits := []hub.Limits{{}, {MaxKeyBytes: 12, MaxKeyDepth: 3}}
	f.Fuzz(func(t *testing.T, key string) {
		for _, l := range limits {
			err := l.CheckKey(key)
			if (err == nil) != referenceKeyValid(l, key) {
				t.Fatalf("CheckKey(%q) = %v, the reference says otherwise", key, err)
			}
			if err != nil {
				if !errors.Is(err, hub.ErrInvalidKey) {
					t.Fatalf("CheckKey(%q) = %v, not ErrInvalidKey", key, err)
				}
				continue
			}
			maxBytes, maxDepth := hub.DefaultMaxKeyBytes, hub.DefaultMaxKeyDepth
			if l.MaxKeyBytes > 0 {
				maxBytes, maxDepth = l.MaxKeyBytes, l.MaxKeyDepth
			}
			switch {
			case !strings.HasPrefix(key, "/"):
				t.Fatalf("accepted %q without a leading /", key)
			case strings.Contains(key, "//"):
				t.Fatalf("accepted %q with an empty component", key)
			case strings.HasSuffix(key, "/"):
				t.Fatalf("accepted %q with a trailing /", key)
			case len(key) > maxBytes:
				t.Fatalf("accepted %q of %d bytes, limit %d", key, len(key), maxBytes)
			case strings.Count(key, "/") > maxDepth:
				t.Fatalf("accepted %q deeper than %d", key, maxDepth)
			case !utf8.ValidString(key):
				t.Fatalf("accepted invalid UTF-8 %q", key)
			case strings.ContainsAny(key, ".: \t\n\r:?#%"):
				t.Fatalf("accepted %q with a reserved character", key)
			}
			if err := l.CheckPath(key); err != nil {
				t.Fatalf("CheckPath(%q) = %v for a valid key", key, err)
			}
			if !hub.Covers(key+"/", key+"/x") || hub.Covers(key+"/", key) {
				t.Fatalf("Covers is wrong for %q", key)
			}
		}
	})
}

// referenceKeyValid is the key grammar written plainly, rune by rune, for FuzzCheckKey to check
// CheckKey's faster scan against.
func referenceKeyValid(l hub.Limits, key string) bool {
	maxBytes, maxDepth := hub.DefaultMaxKeyBytes, hub.DefaultMaxKeyDepth
	if l.MaxKeyBytes > 0 {
		maxBytes = l.MaxKeyBytes
	}
	if l.MaxKeyDepth > 0 {
		maxDepth = l.MaxKeyDepth
	}
	if len(key) > maxBytes || !strings.HasPrefix(key, "/") || !utf8.ValidString(key) {
		return false
	}
	parts := strings.Split(key[1:], "/")
	if len(parts) > maxDepth {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if r != '-' && r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	return true
}
