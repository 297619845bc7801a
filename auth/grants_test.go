package auth

import (
	"errors"
	"testing"
)

// TestPrincipalMay is the grant boundary table: prefix edges, {sub}, implied operations, root.
func TestPrincipalMay(t *testing.T) {
	t.Parallel()
	g := Grants{
		Read:      []string{"/a/b/", "/k"},
		Write:     []string{"/users/{sub}/", "/w/"},
		Incr:      []string{"/views/"},
		Lock:      []string{"/ci/deploy"},
		Broadcast: []string{"/rooms/"},
		Admin:     []string{"/adm/"},
	}
	p := compileGrants(g, "ann")
	cases := []struct {
		name string
		op   Op
		path string
		want bool
	}{
		{"prefix covers a key below", Read, "/a/b/c", true},
		{"prefix covers itself", Read, "/a/b/", true},
		{"prefix covers deeper subtree", Read, "/a/b/c/", true},
		{"prefix is not a string prefix", Read, "/a/bc", false},
		{"prefix does not cover its key", Read, "/a/b", false},
		{"prefix does not cover its parent", Read, "/a/", false},
		{"key grant is exact", Read, "/k", true},
		{"key grant is not a prefix", Read, "/k/x", false},
		{"key grant does not cover longer key", Read, "/kk", false},
		{"sub substituted", Write, "/users/ann/x", true},
		{"other subject", Write, "/users/bob/x", false},
		{"literal {sub} not granted", Write, "/users/{sub}/x", false},
		{"write implies read", Read, "/w/x", true},
		{"write implies incr", Incr, "/w/x", true},
		{"write implies lock", Lock, "/w/x", true},
		{"write implies broadcast", Broadcast, "/w/x", true},
		{"write does not imply admin", Admin, "/w/x", false},
		{"broadcast only broadcast", Broadcast, "/rooms/1/cursor", true},
		{"broadcast on a prefix", Broadcast, "/rooms/1/", true},
		{"broadcast does not imply read", Read, "/rooms/1/cursor", false},
		{"broadcast does not imply write", Write, "/rooms/1/cursor", false},
		{"read does not imply broadcast", Broadcast, "/a/b/c", false},
		{"incr does not imply broadcast", Broadcast, "/views/home", false},
		{"read does not imply write", Write, "/a/b/c", false},
		{"incr only incr", Incr, "/views/home", true},
		{"incr does not imply read", Read, "/views/home", false},
		{"incr does not imply write", Write, "/views/home", false},
		{"lock only lock", Lock, "/ci/deploy", true},
		{"lock does not imply write", Write, "/ci/deploy", false},
		{"admin implies read", Read, "/adm/x", true},
		{"admin implies write", Write, "/adm/x", true},
		{"admin implies incr", Incr, "/adm/x", true},
		{"admin implies lock", Lock, "/adm/x", true},
		{"admin implies broadcast", Broadcast, "/adm/x", true},
		{"root needs admin on root", Read, "/", false},
		{"no grant at all", Read, "/zzz", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := p.may(tc.op, tc.path); got != tc.want {
				t.Fatalf("may(%s, %s) = %v, want %v", tc.op, tc.path, got, tc.want)
			}
			err := p.Allow(tc.op, tc.path)
			if (err == nil) != tc.want {
				t.Fatalf("Allow(%s, %s) = %v, want allowed=%v", tc.op, tc.path, err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrForbidden) {
				t.Fatalf("Allow(%s, %s) = %v, want ErrForbidden for a token", tc.op, tc.path, err)
			}
		})
	}
}

// TestMetricsGrant: metrics is granted on "/" only (other paths are dropped from a token), is
// implied by admin on "/" only, and implies nothing; no data grant implies it.
func TestMetricsGrant(t *testing.T) {
	t.Parallel()
	m := compileGrants(Grants{Metrics: []string{"/", "/a/"}}, "")
	if got := m.grants[Metrics]; len(got) != 1 || got[0] != "/" {
		t.Fatalf("metrics grants %v, want [/]", got)
	}
	cases := []struct {
		name string
		p    *Principal
		op   Op
		path string
		want bool
	}{
		{"metrics grant reads the metrics", m, Metrics, "/", true},
		{"metrics grant does not read a key", m, Read, "/a/x", false},
		{"metrics grant does not list the root", m, Read, "/", false},
		{"metrics grant is not admin", m, Admin, "/", false},
		{"admin on / implies metrics", compileGrants(Grants{Admin: []string{"/"}}, ""), Metrics, "/", true},
		{"admin on a subtree does not", compileGrants(Grants{Admin: []string{"/adm/"}}, ""), Metrics, "/", false},
		{"write on / does not", compileGrants(Grants{Write: []string{"/"}}, ""), Metrics, "/", false},
		{"read on / does not", compileGrants(Grants{Read: []string{"/"}}, ""), Metrics, "/", false},
		{"the metrics token", metricsPrincipal, Metrics, "/", true},
		{"the metrics token reads no key", metricsPrincipal, Read, "/k", false},
		{"the local principal has no metrics", localPrincipal, Metrics, "/", false},
		{"the admin token", adminPrincipal, Metrics, "/", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.p.may(tc.op, tc.path); got != tc.want {
				t.Fatalf("may(%s, %s) = %v, want %v", tc.op, tc.path, got, tc.want)
			}
		})
	}
}

func TestGrantSubjectCannotWiden(t *testing.T) {
	t.Parallel()
	g := Grants{Write: []string{"/users/{sub}/", "/u/{sub}"}, Read: []string{"/public/"}}
	for _, sub := range []string{"", "a/b", "..", "x/", "a b", "a.b", "*"} {
		p := compileGrants(g, sub)
		if len(p.grants[Write]) != 0 {
			t.Errorf("subject %q: write grants %v, want none", sub, p.grants[Write])
		}
		if !p.may(Read, "/public/x") {
			t.Errorf("subject %q: lost the grants without {sub}", sub)
		}
	}
	// invalid grant paths are dropped, valid ones kept
	p := compileGrants(Grants{Read: []string{"", "a", "/a//b", "/ok/", "/x.y"}}, "s")
	if got := p.grants[Read]; len(got) != 1 || got[0] != "/ok/" {
		t.Fatalf("read grants %v, want [/ok/]", got)
	}
	root := compileGrants(Grants{Admin: []string{"/"}}, "")
	if !root.may(Admin, "/") || !root.may(Write, "/any/key") {
		t.Fatal("admin on / must cover the root and everything")
	}
	readRoot := compileGrants(Grants{Read: []string{"/"}}, "")
	if readRoot.may(Read, "/") || !readRoot.may(Read, "/x") {
		t.Fatal("read on / covers every key but never the root itself")
	}
}

func TestParseGrants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"read": ["/public/"], "incr": ["/views/"]}`, true},
		{`{}`, true},
		{`{"broadcast": ["/rooms/"], "read": ["/rooms/"]}`, true},
		{`{"broadcast": ["rooms"]}`, false},
		{`{"read": ["/"]}`, true},
		{`{"reed": ["/public/"]}`, false},
		{`{"read": "/public/"}`, false},
		{`{"read": ["public"]}`, false},
		{`{"write": ["/users/{sub}/"]}`, false},
		{`{"metrics": ["/"]}`, true},
		{`{"metrics": ["/a/"]}`, false},
		{`{"metrics": true}`, false},
		{`not json`, false},
	} {
		_, err := ParseGrants(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseGrants(%s): err %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestAllowErrors: an anonymous principal is told a token would help (ErrUnauthorized), a token's
// principal that it lacks the grant (ErrForbidden); the root is reported as needing admin.
func TestAllowErrors(t *testing.T) {
	t.Parallel()
	a, err := New(Config{AdminToken: "admin-token-for-tests-0123456789", Anonymous: &Grants{Read: []string{"/public/"}}})
	if err != nil {
		t.Fatal(err)
	}
	anon, err := a.Principal("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    *Principal
		op   Op
		path string
		want error // nil: allowed
	}{
		{"anonymous grant", anon, Read, "/public/x", nil},
		{"anonymous without the grant", anon, Write, "/public/x", ErrUnauthorized},
		{"anonymous at the root", anon, Read, "/", ErrUnauthorized},
		{"token without the grant", compileGrants(Grants{Read: []string{"/a/"}}, "ann"), Write, "/a/x", ErrForbidden},
		{"zero principal", &Principal{}, Read, "/x", ErrForbidden},
		{"open principal", OpenPrincipal(), Admin, "/", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Allow(tc.op, tc.path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Allow: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Allow: %v, want %v", err, tc.want)
			}
		})
	}
	if err := anon.Allow(Read, "/"); err == nil || err.Error() != "auth: unauthorized: a token granting admin on / is needed" {
		t.Fatalf("the root: %v", err)
	}
	if got := anon.String(); got != "anonymous(read)" {
		t.Fatalf("String of the anonymous principal: %q", got)
	}
}
