package web

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzQuery checks the query reader against net/url: for any raw query and name, Get and Has
// answer as the url.Values of url.ParseQuery.
func FuzzQuery(f *testing.F) {
	for _, seed := range [][2]string{
		{"incr", "incr"}, {"incr=5", "incr"}, {"incr=-3&ttl=10s", "ttl"}, {"a=1&a=2", "a"},
		{"in%63r=2", "incr"}, {"x=%zz&x=1", "x"}, {"%zz=1&x=2", "x"}, {"a;b=1&a=2", "a"}, {"a=1;2&a=3", "a"},
		{"a+b=c+d", "a b"}, {"=v&a", ""}, {"&&a&&", "a"}, {"token=t%2Fu&incr", "token"}, {"", "a"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, raw, name string) {
		if strings.Count(raw, "&")+1 > 10000 {
			return // beyond net/url's parameter limit, which query does not have
		}
		want, _ := url.ParseQuery(raw)
		q := query(raw)
		if got, w := q.Get(name), want.Get(name); got != w {
			t.Errorf("query(%q).Get(%q) = %q, url.Values says %q", raw, name, got, w)
		}
		if got, w := q.Has(name), want.Has(name); got != w {
			t.Errorf("query(%q).Has(%q) = %v, url.Values says %v", raw, name, got, w)
		}
		if v, ok := q.Lookup(name); v != want.Get(name) || ok != want.Has(name) {
			t.Errorf("query(%q).Lookup(%q) = %q, %v; url.Values says %q, %v", raw, name, v, ok, want.Get(name), want.Has(name))
		}
	})
}
