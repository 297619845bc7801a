package web

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestDateHeader(t *testing.T) {
	t.Parallel()
	var d dateHeader
	t0 := time.Date(2026, 11, 21, 10, 4, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"first", t0, "Sat, 21 Nov 2026 09:04:05 GMT"},
		{"same second", t0.Add(999 * time.Millisecond), "Sat, 21 Nov 2026 09:04:05 GMT"},
		{"next second", t0.Add(time.Second), "Sat, 21 Nov 2026 09:04:06 GMT"},
		{"clock set back", t0.Add(-time.Hour), "Sat, 21 Nov 2026 08:04:05 GMT"},
	}
	for _, tt := range tests {
		got := d.at(tt.at)
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: Date %q, want %q", tt.name, got, tt.want)
		}
		if _, err := http.ParseTime(got[0]); err != nil {
			t.Errorf("%s: %q is not an HTTP date: %v", tt.name, got[0], err)
		}
	}
	if a, b := d.at(t0), d.at(t0.Add(10*time.Millisecond)); &a[0] != &b[0] {
		t.Error("two answers in one second got two formattings, want one shared value")
	}
}

// TestDateHeaderConcurrent has answers on every core turn the second at once (run with -race).
func TestDateHeaderConcurrent(t *testing.T) {
	t.Parallel()
	var d dateHeader
	t0 := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				now := t0.Add(time.Duration(i/10) * time.Second)
				want := now.UTC().Format(http.TimeFormat)
				if got := d.at(now); got[0] != want {
					t.Errorf("worker %d: Date %q at %v, want %q", w, got[0], now, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
