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

// badgeColor parses a badge colour parameter: a shields.io name or 3 or 6 hex digits (with or
// without "#"). fill is the SVG colour, shields the colour as the shields.io endpoint takes it.
func badgeColor(param, v string) (fill, shields string, err error) {
	if named, ok := badgeColors[strings.ToLower(v)]; ok {
		return named, strings.ToLower(v), nil
	}
	if hexColor.MatchString(v) {
		digits := strings.TrimPrefix(v, "#")
		return "#" + digits, digits, nil
	}
	return "", "", badRequest("invalid_color", param+" must be a name such as green or 3 or 6 hex digits, got "+strconv.Quote(v))
}

// badge serves GET /key?badge[&label=][&color=][&labelColor=][&style=][&format=][&incr]: the
// value as an SVG badge, or with format=shields as the JSON of a shields.io endpoint badge. With
// incr the view is counted first (an increment of the key).
func (s *Server) badge(c echo.Context, key string, q url.Values) error {
	if err := s.authorize(c, auth.Read, key); err != nil {
		return err
	}
	format := q.Get("format")
	if format != "" && format != "svg" && format != "shields" {
		return badRequest("invalid_format", "format must be svg or shields, got "+strconv.Quote(format))
	}
	style := q.Get("style")
	if style != "" && style != "flat" && style != "flat-square" {
		return badRequest("invalid_style", "style must be flat or flat-square, got "+strconv.Quote(style))
	}
	color, shieldsColor := "#007ec6", "blue"
	if v := q.Get("color"); v != "" {
		var err error
		if color, shieldsColor, err = badgeColor("color", v); err != nil {
			return err
		}
	}
	labelColor, shieldsLabelColor := "#555", ""
	if v := q.Get("labelColor"); v != "" {
		var err error
		if labelColor, shieldsLabelColor, err = badgeColor("labelColor", v); err != nil {
			return err
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
	if format == "shields" {
		return c.JSON(http.StatusOK, shieldsBadge{
			SchemaVersion: 1, Label: label, Message: badgeText(value),
			Color: shieldsColor, LabelColor: shieldsLabelColor,
		})
	}
	return c.Blob(http.StatusOK, "image/svg+xml; charset=utf-8",
		renderBadge(label, badgeText(value), color, labelColor, style == "flat-square"))
}

// shieldsBadge is the JSON a shields.io endpoint badge reads
// (https://img.shields.io/endpoint?url=...), which then draws it in any shields style.
type shieldsBadge struct {
	SchemaVersion int    `json:"schemaVersion"`
	Label         string `json:"label"`
	Message       string `json:"message"`
	Color         string `json:"color"`
	LabelColor    string `json:"labelColor,omitempty"`
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

// renderBadge draws a flat badge (shields.io's look), or with square a flat-square one (square
// corners, no gradient); every text is XML-escaped. The label and the value are each their own
// <text> element (ids "label" and "value").
func renderBadge(label, value, color, labelColor string, square bool) []byte {
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
	if square {
		fmt.Fprintf(&b, `<g shape-rendering="crispEdges"><rect width="%d" height="20" fill="%s"/><rect x="%d" width="%d" height="20" fill="%s"/></g>`,
			lw, labelColor, lw, vw, color)
	} else {
		b.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
		fmt.Fprintf(&b, `<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath>`, w)
		fmt.Fprintf(&b, `<g clip-path="url(#r)"><rect width="%d" height="20" fill="%s"/><rect x="%d" width="%d" height="20" fill="%s"/><rect width="%d" height="20" fill="url(#s)"/></g>`,
			lw, labelColor, lw, vw, color, w)
	}
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
