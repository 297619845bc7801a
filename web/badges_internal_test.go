package web

import (
	"strings"
	"testing"
)

// tableWidth is a string's width as the sum of its characters' widths in the table, in pixels,
// rounded down to whole pixels and up to an odd number.
func tableWidth(s string) int {
	sum := 0
	for _, r := range s {
		sum += verdana11[r-' ']
	}
	px := sum / 100
	if px%2 == 0 {
		px++
	}
	return px
}

func TestBadgeTextWidth(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int // 0: the table's sum only
	}{
		{"views", 31}, // 6.51+3.02+6.55+9.00+5.73 = 30.81
		{"12345", 35}, // 5 × 6.99 = 34.95
		{"iiii", 13},  // 4 × 3.02 = 12.08 → 12 → 13
		{"WWW", 33},   // 3 × 10.88 = 32.64 → 32 → 33
		{"a b", 17},   // 6.61+3.87+6.61 = 17.09
		{"", 1},       // nothing: 0, odd 1
		{"build", 0},
		{"coverage", 0},
		{"87% & \"rising\"", 0},
	} {
		sum := tableWidth(tc.s)
		if tc.want != 0 && sum != tc.want {
			t.Errorf("the table's sum for %q is %d, the test says %d", tc.s, sum, tc.want)
		}
		if got := textWidth(tc.s); got != sum {
			t.Errorf("textWidth(%q) = %d, want %d", tc.s, got, sum)
		}
	}
	if got := textWidth("日本"); got != 21 { // two runes outside the table, as wide as m: 2 × 10.70
		t.Errorf("textWidth(日本) = %d, want 21", got)
	}
	// Every printable ASCII character has a measured width; narrow ones are narrower than wide ones.
	for r := ' '; r <= '~'; r++ {
		if w := runeWidth(r); w < 200 || w > 1200 {
			t.Errorf("width of %q: %d", r, w)
		}
	}
	if runeWidth('i') >= runeWidth('m') || runeWidth('1') != runeWidth('8') {
		t.Error("the table's widths are not Verdana's")
	}
}

func TestBadgeSquareSVG(t *testing.T) {
	flat := string(renderBadge("views", "12345", "#4c1", "#555", false))
	square := string(renderBadge("views", "12345", "#4c1", "#555", true))
	for _, s := range []string{`rx="3"`, "linearGradient", `url(#s)`} {
		if !strings.Contains(flat, s) {
			t.Errorf("flat badge lacks %s: %s", s, flat)
		}
		if strings.Contains(square, s) {
			t.Errorf("flat-square badge has %s: %s", s, square)
		}
	}
	// Both are 31+10 + 35+10 = 86 px wide, the value's text centred at 41 + 45/2.
	for _, b := range []string{flat, square} {
		if !strings.Contains(b, `width="86" height="20" role="img"`) || !strings.Contains(b, `<text id="value" x="63"`) {
			t.Errorf("geometry: %s", b)
		}
	}
}
