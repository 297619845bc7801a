package hub

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on keys and values. Zero fields of Limits take these defaults.
const (
	DefaultMaxKeyBytes   = 1024
	DefaultMaxKeyDepth   = 32
	DefaultMaxValueBytes = 1 << 20
	DefaultMaxJSONDepth  = 64
	// DefaultMaxBroadcastBytes bounds a broadcast message: cursors, reactions and typing
	// indicators are small, and every subscriber's queue holds them.
	DefaultMaxBroadcastBytes = 64 << 10
)

// Limits bounds keys and values. Zero fields mean the Default constants.
type Limits struct {
	MaxKeyBytes   int // longest key in bytes (default 1024)
	MaxKeyDepth   int // most components in a key (default 32)
	MaxValueBytes int // largest JSON value in bytes (default 1 MiB)
	MaxJSONDepth  int // deepest nesting of arrays and objects (default 64)
	// MaxBroadcastBytes bounds a broadcast message, as sent (default 64 KiB).
	MaxBroadcastBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxKeyBytes <= 0 {
		l.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if l.MaxKeyDepth <= 0 {
		l.MaxKeyDepth = DefaultMaxKeyDepth
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = DefaultMaxValueBytes
	}
	if l.MaxJSONDepth <= 0 {
		l.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if l.MaxBroadcastBytes <= 0 {
		l.MaxBroadcastBytes = DefaultMaxBroadcastBytes
	}
	return l
}

// CheckKey reports whether key is a valid key: "/" followed by one or more components joined by "/",
// each one or more Unicode letters, digits, "-" or "_". It returns an error wrapping ErrInvalidKey
// that says what is wrong.
func (l Limits) CheckKey(key string) error {
	l = l.withDefaults()
	if len(key) > l.MaxKeyBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, l.MaxKeyBytes)
	}
	if !strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: must start with /", ErrInvalidKey)
	}
	if len(key) == 1 {
		return fmt.Errorf("%w: the root is not a key", ErrInvalidKey)
	}
	depth := 1
	empty := true
	for i := 1; i < len(key); {
		// Keys are mostly ASCII: a table answers for a byte without decoding a rune.
		if c := key[i]; c < utf8.RuneSelf {
			switch {
			case c == '/':
				if empty {
					return fmt.Errorf("%w: empty component at byte %d", ErrInvalidKey, i)
				}
				depth++
				empty = true
			case keyASCII[c]:
				empty = false
			default:
				return fmt.Errorf("%w: character %q not allowed (letters, digits, - and _ only)", ErrInvalidKey, rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(key[i:])
		switch {
		case r == utf8.RuneError:
			return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			empty = false
		default:
			return fmt.Errorf("%w: character %q not allowed (letters, digits, - and _ only)", ErrInvalidKey, r)
		}
		i += size
	}
	if empty {
		return fmt.Errorf("%w: ends with /", ErrInvalidKey)
	}
	if depth > l.MaxKeyDepth {
		return fmt.Errorf("%w: deeper than %d components", ErrInvalidKey, l.MaxKeyDepth)
	}
	return nil
}

// keyASCII marks the ASCII bytes a key component may hold: letters, digits, "-" and "_".
var keyASCII = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		r := rune(c)
		t[c] = r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
	}
	return t
}()

// CheckPath accepts a key or a prefix: a key followed by "/" naming a subtree. The root "/" is a
// valid prefix; callers decide who may use it.
func (l Limits) CheckPath(path string) error {
	if path == "/" {
		return nil
	}
	if IsPrefix(path) {
		return l.CheckKey(path[:len(path)-1])
	}
	return l.CheckKey(path)
}

// IsPrefix reports whether path names a subtree (ends in "/").
func IsPrefix(path string) bool { return strings.HasSuffix(path, "/") }

// Covers reports whether path (a key or a prefix) includes key.
func Covers(path, key string) bool {
	if IsPrefix(path) {
		return strings.HasPrefix(key, path)
	}
	return path == key
}
