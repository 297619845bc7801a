package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// CompactJSON validates body as one JSON document within the limits and returns it compacted:
// insignificant white space removed, every number literal kept exactly as written. The result holds
// no newline, so it can go into an SSE data line as is, and is valid UTF-8 (RFC 8259), so it can go
// into a WebSocket text frame: a body that is not fails with ErrInvalidValue naming the offset of
// the first invalid byte. (encoding/json's Compact and Valid do not check UTF-8 inside strings.)
func (l Limits) CompactJSON(body []byte) ([]byte, error) {
	l = l.withDefaults()
	if len(body) > l.MaxValueBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrValueTooLarge, l.MaxValueBytes)
	}
	if err := CheckUTF8("value", body); err != nil {
		return nil, err
	}
	if err := checkDepth(body, l.MaxJSONDepth); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(body))
	if err := json.Compact(&buf, body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	if buf.Len() == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrInvalidValue)
	}
	return buf.Bytes(), nil
}

// CheckUTF8 fails with ErrInvalidValue, saying that what is not valid UTF-8 and at which byte
// offset, unless b is valid UTF-8. JSON's escapes are ASCII, so a JSON text is valid UTF-8 exactly
// when its bytes are: checking a whole request body checks every string and object key in it.
func CheckUTF8(what string, b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	off := 0
	for off < len(b) {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		off += n
	}
	return fmt.Errorf("%w: %s is not valid UTF-8 (byte offset %d)", ErrInvalidValue, what, off)
}

// repairUTF8 returns v, or a copy of it in which each run of bytes that is not valid UTF-8 is
// replaced by U+FFFD. Values are loaded through it (decodeCommit, decodeSnapshot): a version before
// CheckUTF8 stored whatever bytes a string held, and a value that is not UTF-8 must never reach a
// WebSocket text frame. Such bytes can only be inside JSON strings (anything else was refused as
// JSON), so the repaired value is still the same JSON document, with U+FFFD in those strings.
func repairUTF8(v []byte) []byte {
	if utf8.Valid(v) {
		return v
	}
	return bytes.ToValidUTF8(v, []byte("\uFFFD"))
}

// checkDepth rejects documents that nest arrays and objects deeper than max. It only counts
// brackets outside strings; validity is checked by json.Compact afterwards.
func checkDepth(b []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > max {
				return fmt.Errorf("%w: deeper than %d levels", ErrValueTooDeep, max)
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}
