package web

import (
	"net/url"
	"testing"
)

// TestRedactURI: every query parameter that may hold a secret is redacted, whatever its case,
// escaping, position or separator; the API's own parameters stay as sent.
func TestRedactURI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"no query", "/a", "/a"},
		{"token", "/a?token=s3cr3t", "/a?token=REDACTED"},
		{"upper case", "/a?TOKEN=s3cr3t", "/a?TOKEN=REDACTED"},
		{"mixed case in the middle", "/a?x=1&Token=s3cr3t&y=2", "/a?x=1&Token=REDACTED&y=2"},
		{"semicolon", "/a?x=1;token=s3cr3t&y=2", "/a?x=1;token=REDACTED&y=2"},
		{"escaped name", "/a?%74oken=s3cr3t", "/a?token=REDACTED"},
		{"escaped equals", "/a?token%3Ds3cr3t", "/a?token=REDACTED"},
		{"repeated", "/a?token=s3cr3t&token=t0k", "/a?token=REDACTED&token=REDACTED"},
		{"other secrets", "/a?access_token=s&api-key=s&X-Lock-Token=s&password=s&client_secret=s&key=s&auth=s",
			"/a?access_token=REDACTED&api-key=REDACTED&X-Lock-Token=REDACTED&password=REDACTED&client_secret=REDACTED&key=REDACTED&auth=REDACTED"},
		{"API parameters", "/a/?keys&children&limit=10&cursor=abc&since=%2Fa%3A1%3A2&snapshot",
			"/a/?keys&children&limit=10&cursor=abc&since=%2Fa%3A1%3A2&snapshot"},
		{"lock", "/ci/deploy?lock&owner=ci&ttl=10m&wait=30s", "/ci/deploy?lock&owner=ci&ttl=10m&wait=30s"},
		{"empty value", "/a?token=&token", "/a?token=&token"},
		{"escaped path", "/a%2Fb?token=s3cr3t", "/a%2Fb?token=REDACTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := redactURI(u); got != tc.want {
				t.Fatalf("redactURI(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
