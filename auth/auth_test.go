package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/statehub/statehub/auth"
)

const testMetricsToken = "metrics-token-for-tests-01234567"

// TestModes: what New makes of each configuration, and whom each kind of token is then. A
// protected server (nothing configured but, perhaps, the generated admin token and the metrics
// token) gives a request without a token, or with a token it does not know, the local principal;
// the operator's admin token, anonymous grants or JWT keys configure auth; -open opens everything.
func TestModes(t *testing.T) {
	t.Parallel()
	generated := auth.Config{AdminToken: testAdminToken, AdminTokenGenerated: true, MetricsToken: testMetricsToken}
	cases := []struct {
		name string
		cfg  auth.Config
		mode auth.Mode
		// The principal (its String, or "401") of no token, the admin token, the metrics token,
		// and a token the server does not know.
		none, admin, metrics, unknown string
	}{
		{"nothing", auth.Config{}, auth.ModeProtected, "local", "local", "local", "local"},
		{"generated admin token and metrics token", generated, auth.ModeProtected, "local", "admin", "metrics", "local"},
		{"metrics token alone", auth.Config{MetricsToken: testMetricsToken}, auth.ModeProtected, "local", "local", "metrics", "local"},
		{"the operator's admin token", auth.Config{AdminToken: testAdminToken, MetricsToken: testMetricsToken}, auth.ModeAuth, "anonymous", "admin", "metrics", "401"},
		{"anonymous grants", auth.Config{Anonymous: &auth.Grants{Read: []string{"/public/"}}}, auth.ModeAuth, "anonymous(read)", "401", "401", "401"},
		{"a JWT secret and the generated admin token", auth.Config{JWTSecret: testSecret, AdminToken: testAdminToken, AdminTokenGenerated: true},
			auth.ModeAuth, "anonymous", "admin", "401", "401"},
		{"-open", auth.Config{Open: true}, auth.ModeOpen, "open", "open", "open", "open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := auth.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Mode() != tc.mode || a.Open() != (tc.mode == auth.ModeOpen) {
				t.Fatalf("Mode %v, Open %v; want %v", a.Mode(), a.Open(), tc.mode)
			}
			for raw, want := range map[string]string{"": tc.none, testAdminToken: tc.admin, testMetricsToken: tc.metrics, "not-a-token-we-know": tc.unknown} {
				p, err := a.Principal(raw)
				got := "401"
				if err == nil {
					got = p.String()
				} else if !errors.Is(err, auth.ErrUnauthorized) {
					t.Fatalf("Principal(%.8q): %v, want ErrUnauthorized", raw, err)
				}
				if got != want {
					t.Errorf("Principal(%.8q) = %s, want %s", raw, got, want)
				}
				if err == nil && p.Local() != (want == "local") {
					t.Errorf("Principal(%.8q).Local() = %v", raw, p.Local())
				}
			}
			d := a.Describe()
			if len(d) < 2 || d[1] != tc.mode.String() {
				t.Errorf("Describe %v, want the mode %s first", d, tc.mode)
			}
			for _, v := range d {
				if s, ok := v.(string); ok && (strings.Contains(s, testSecret) || strings.Contains(s, testAdminToken) || strings.Contains(s, testMetricsToken)) {
					t.Errorf("Describe shows a secret: %v", d)
				}
			}
		})
	}
}

// TestLocalAndMetricsGrants: the local principal holds AtomKV's API on every key and subtree but
// not the root, admin or metrics (a token would help: 401); the metrics token reads the metrics
// and nothing else (403); the open principal holds everything.
func TestLocalAndMetricsGrants(t *testing.T) {
	t.Parallel()
	a, err := auth.New(auth.Config{MetricsToken: testMetricsToken})
	if err != nil {
		t.Fatal(err)
	}
	local, _ := a.Principal("")
	metrics, _ := a.Principal(testMetricsToken)
	cases := []struct {
		name string
		p    *auth.Principal
		op   auth.Op
		path string
		want error // nil: allowed
	}{
		{"local reads a key", local, auth.Read, "/a/b", nil},
		{"local writes a key", local, auth.Write, "/a/b", nil},
		{"local increments", local, auth.Incr, "/n", nil},
		{"local locks", local, auth.Lock, "/deploy", nil},
		{"local lists a subtree", local, auth.Read, "/a/", nil},
		{"local deletes a subtree", local, auth.Write, "/a/", nil},
		{"local does not list the root", local, auth.Read, "/", auth.ErrUnauthorized},
		{"local does not delete the root", local, auth.Write, "/", auth.ErrUnauthorized},
		{"local is not admin", local, auth.Admin, "/", auth.ErrUnauthorized},
		{"local reads no metrics", local, auth.Metrics, "/", auth.ErrUnauthorized},
		{"metrics token reads the metrics", metrics, auth.Metrics, "/", nil},
		{"metrics token reads no key", metrics, auth.Read, "/a/b", auth.ErrForbidden},
		{"metrics token is not admin", metrics, auth.Admin, "/", auth.ErrForbidden},
		{"open reads the metrics", auth.OpenPrincipal(), auth.Metrics, "/", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Allow(tc.op, tc.path)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Allow(%s, %s) = %v, want %v", tc.op, tc.path, err, tc.want)
			}
		})
	}
	if !local.Local() || metrics.Local() || auth.OpenPrincipal().Local() {
		t.Fatal("Local is true of the local principal only")
	}
}
