package web

import (
	"net/url"
	"strings"
)

// query is a request's raw query string, read without building url.Values: a key request looks
// up a few names once each, and parsing the whole query into a map was a measurable share of the
// cost of a write. Get and Has answer exactly as the url.Values of url.ParseQuery do (FuzzQuery
// checks this), except that a query with more parameters than net/url accepts is still read.
type query string

// Get returns the first value of name, or "".
func (q query) Get(name string) string {
	v, _ := q.Lookup(name)
	return v
}

// Has reports whether name is present, with or without a value.
func (q query) Has(name string) bool {
	_, ok := q.Lookup(name)
	return ok
}

// Lookup returns the first value of name and whether name is present. It scans the parameters
// as url.ParseQuery does: separated by "&", a part with ";" is skipped, as is one whose name or
// value is not valid escaping.
func (q query) Lookup(name string) (string, bool) {
	rest := string(q)
	// Without escapes a name appears verbatim: most lookups of an absent name end here.
	if !strings.Contains(rest, name) && !escaped(rest) {
		return "", false
	}
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" || strings.Contains(part, ";") {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, ok := unescape(k)
		if !ok || k != name {
			continue
		}
		if v, ok = unescape(v); ok {
			return v, true
		}
	}
	return "", false
}

// unescape decodes one query component, allocating only when it is escaped.
func unescape(s string) (string, bool) {
	if !escaped(s) {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// escaped reports whether s holds a "%" or a "+", the bytes that query unescaping changes. Two
// byte scans are faster than strings.ContainsAny, which builds a set on every call.
func escaped(s string) bool {
	return strings.IndexByte(s, '%') >= 0 || strings.IndexByte(s, '+') >= 0
}
