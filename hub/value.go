package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// CompactJSON validates body as one JSON document within the limits and returns it compacted:
// insignificant white space removed, every number literal kept exactly as written. The result holds
// no newline, so it can go into an SSE data line as is.
func (l Limits) CompactJSON(body []byte) ([]byte, error) {
	l = l.withDefaults()
	if len(body) > l.MaxValueBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrValueTooLarge, l.MaxValueBytes)
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
