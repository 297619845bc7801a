package web

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// Badges (?badge): a counter rendered as an SVG badge, optionally counting the view first.

// badgeColors are the named colours a badge accepts (shields.io's); any other colour is 3 or 6
// hex digits.
var badgeColors = map[string]string{
	"brightgreen": "#4c1", "green": "#97ca00", "yellowgreen": "#a4a61d", "yellow": "#dfb317",
	"orange": "#fe7d37", "red": "#e05d44", "blue": "#007ec6", "lightgrey": "#9f9f9f", "grey": "#555",
	"gray": "#555", "lightgray": "#9f9f9f", "success": "#4c1", "important": "#fe7d37",
	"critical": "#e05d44", "informational": "#007ec6", "inactive": "#9f9f9f",
}

var hexColor = regexp.MustCompile(`^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// maxBadgeText bounds the label and the value shown, in characters.
const maxBadgeText = 64

// badge serves GET /key?badge[&label=][&color=][&incr]: the value as an SVG badge. With incr the
// view is counted first (an increment of the key).
func (s *Server) badge(c echo.Context, key string, q url.Values) error {
	if err := s.authorize(c, auth.Read, key); err != nil {
		return err
	}
	color := "#007ec6"
	if v := q.Get("color"); v != "" {
		if named, ok := badgeColors[strings.ToLower(v)]; ok {
			color = named
		} else if hexColor.MatchString(v) {
			color = "#" + strings.TrimPrefix(v, "#")
		} else {
			return badRequest("invalid_color", "color must be a name such as green or 3 or 6 hex digits, got "+strconv.Quote(v))
		}
	}
	label := key[strings.LastIndexByte(key, '/')+1:]
	if q.Has("label") {
		label = q.Get("label")
	}
	var value []byte
	if boolOption(q, "incr") {
		if err := s.authorize(c, auth.Incr, key); err != nil {
			return err
		}
		res, err := s.hub.Incr(key, 1, hub.WriteOptions{})
		if err != nil {
			return err
		}
		value = res.Value
	} else {
		e, err := s.hub.Get(key)
		switch {
		case err == nil:
			value = e.Value
			if e.Type != "" {
				value = []byte(`"file"`)
			}
		case errors.Is(err, hub.ErrNotFound):
			value = []byte("0")
		default:
			return err
		}
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0")
	h.Set("Expires", "0")
	h.Set("Pragma", "no-cache")
	h.Set("ETag", `"`+rand.Text()+`"`) // fresh every time: no proxy may serve it from a cache
	return c.Blob(http.StatusOK, "image/svg+xml; charset=utf-8", renderBadge(label, badgeText(value), color))
}

// badgeText is what a badge shows for a JSON value: a string's text, anything else as JSON.
func badgeText(value []byte) string {
	var s string
	if json.Unmarshal(value, &s) != nil {
		s = string(value)
	}
	return truncate(s, maxBadgeText)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// textWidth estimates the width in pixels of s in 11 px Verdana, the badge font.
func textWidth(s string) int {
	w := 0
	for _, r := range s {
		switch {
		case strings.ContainsRune("iIl.,:;|!'` ", r):
			w += 4
		case strings.ContainsRune("fjrt()[]{}-/", r):
			w += 5
		case strings.ContainsRune("mwMW@%", r):
			w += 11
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '#':
			w += 8
		case r < 0x80:
			w += 7
		default:
			w += 11 // wide scripts and symbols
		}
	}
	return w
}

// renderBadge draws a flat badge; every text is XML-escaped. The label and the value are each
// their own <text> element (ids "label" and "value").
func renderBadge(label, value, color string) []byte {
	lw, vw := textWidth(label)+10, textWidth(value)+10
	if label == "" {
		lw = 0
	}
	w := lw + vw
	esc := xmlEscape
	title := label + ": " + value
	if label == "" {
		title = value
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s">`, w, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	b.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
	fmt.Fprintf(&b, `<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath>`, w)
	fmt.Fprintf(&b, `<g clip-path="url(#r)"><rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/><rect width="%d" height="20" fill="url(#s)"/></g>`,
		lw, lw, vw, color, w)
	b.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`)
	if label != "" {
		fmt.Fprintf(&b, `<text id="label" x="%d" y="14">%s</text>`, lw/2, esc(label))
	}
	fmt.Fprintf(&b, `<text id="value" x="%d" y="14">%s</text>`, lw+vw/2, esc(value))
	b.WriteString(`</g></svg>`)
	return []byte(b.String())
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			if r < 0x20 && r != '\t' || r == utf8.RuneError || r >= 0xFFFE {
				b.WriteRune('\uFFFD') // not allowed in XML
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
