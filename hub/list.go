package hub

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	DefaultListBytes = 4 << 20
)

// ListOptions select a page of a subtree.
type ListOptions struct {
	Limit    int    // entries per page (default 100, at most 1000)
	MaxBytes int    // bytes of keys and values per page (default 4 MiB); a page holds at least one entry
	Cursor   string // from the previous page; empty for the first
	KeysOnly bool   // leave Value nil
	Children bool   // immediate children only: a deeper subtree shows as one entry "prefix/child/"
}

// Page is one page of a listing, in key order. Cursor is empty on the last page.
type Page struct {
	Entries []Entry
	Cursor  string
	Seq     uint64 // the page shows the state as of this seq, which is durable
}

// ErrInvalidCursor reports a cursor that List did not hand out.
var ErrInvalidCursor = fmt.Errorf("hub: invalid cursor")

// List returns a page of the entries under prefix: at most Limit entries and MaxBytes of keys and
// values, but always at least one entry when there is one, so a page ends early rather than grow
// with the values and the client follows the cursor. The values are the tree's, not copies.
func (h *Local) List(prefix string, opt ListOptions) (Page, error) {
	start, limit, opt, err := listStart(h.limits, prefix, opt)
	if err != nil {
		return Page{}, err
	}
	h.mu.RLock()
	page, _ := listPage(prefix, start, limit, opt, func(from string, fn func(item) bool) error {
		h.tree.Ascend(item{key: from}, fn)
		return nil
	})
	page.Seq = h.seq
	h.mu.RUnlock()
	if err := h.waitDurable(page.Seq); err != nil {
		return Page{}, err
	}
	return page, nil
}

// listStart validates a listing and returns where it starts, its limit in entries, and opt with
// its byte budget filled in.
func listStart(limits Limits, prefix string, opt ListOptions) (string, int, ListOptions, error) {
	if err := limits.CheckPath(prefix); err != nil || !IsPrefix(prefix) {
		return "", 0, opt, fmt.Errorf("%w: %q is not a prefix", ErrInvalidKey, prefix)
	}
	limit := opt.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultListBytes
	}
	start := prefix
	if opt.Cursor != "" {
		last, err := base64.RawURLEncoding.DecodeString(opt.Cursor)
		if err != nil || !strings.HasPrefix(string(last), prefix) {
			return "", 0, opt, ErrInvalidCursor
		}
		start = after(string(last))
	}
	return start, limit, opt, nil
}

// listPage reads a page of the keys under prefix from start; ascend calls fn on every item from
// a key on, in key order, until fn returns false (a store's view of one seq).
func listPage(prefix, start string, limit int, opt ListOptions, ascend func(from string, fn func(item) bool) error) (Page, error) {
	var page Page
	used := 0 // bytes of keys and values in page
	for {
		var next string // set when a children listing must skip past a subtree
		more := false
		err := ascend(start, func(it item) bool {
			if !strings.HasPrefix(it.key, prefix) {
				return false
			}
			var e Entry
			sub := false
			if opt.Children {
				if i := strings.IndexByte(it.key[len(prefix):], '/'); i >= 0 {
					e, sub = Entry{Key: it.key[:len(prefix)+i+1]}, true
				}
			}
			if !sub {
				e = it.entry()
				if opt.KeysOnly {
					e.Value = nil
				}
			}
			size := len(e.Key) + len(e.Value)
			if len(page.Entries) == limit || len(page.Entries) > 0 && used+size > opt.MaxBytes {
				more = true
				return false
			}
			used += size
			page.Entries = append(page.Entries, e)
			if sub {
				next = after(e.Key)
				return false
			}
			return true
		})
		if err != nil {
			return Page{}, err
		}
		if more {
			last := page.Entries[len(page.Entries)-1].Key
			page.Cursor = base64.RawURLEncoding.EncodeToString([]byte(last))
			return page, nil
		}
		if next == "" {
			return page, nil
		}
		start = next
	}
}

// after returns the smallest key that sorts after key and, when key names a subtree ("p/"),
// after everything in it.
func after(key string) string {
	if IsPrefix(key) {
		return key[:len(key)-1] + "0" // '0' is the byte after '/'
	}
	return key + "\x00"
}
