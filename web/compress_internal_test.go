package web

import "testing"

func TestCompressible(t *testing.T) {
	tests := []struct {
		contentType string
		want        bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"text/javascript; charset=utf-8", true},
		{"application/octet-stream", true}, // a snapshot
		{"image/svg+xml", true},
		{"", true},
		{"text/event-stream", false},
		{"Text/Event-Stream; charset=utf-8", false},
		{"image/png", false},
		{"image/jpeg", false},
		{"image/webp", false},
		{"application/gzip", false},
		{"application/zip", false},
		{"video/mp4", false},
		{"font/woff2", false},
	}
	for _, tc := range tests {
		t.Run(tc.contentType, func(t *testing.T) {
			if got := compressible(tc.contentType); got != tc.want {
				t.Errorf("compressible(%q) = %v, want %v", tc.contentType, got, tc.want)
			}
		})
	}
}
