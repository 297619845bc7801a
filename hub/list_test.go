package hub_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/statehub/statehub/hub"
)

func keysOf(es []hub.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key
	}
	return out
}

// listAll pages through a listing and returns every page's keys.
func listAll(t *testing.T, h *hub.Hub, prefix string, opt hub.ListOptions) [][]string {
	t.Helper()
	var pages [][]string
	for {
		p, err := h.List(prefix, opt)
		if err != nil {
			t.Fatalf("List(%q, %+v): %v", prefix, opt, err)
		}
		pages = append(pages, keysOf(p.Entries))
		if p.Cursor == "" {
			return pages
		}
		if len(pages) > 10_000 {
			t.Fatal("the listing never ends")
		}
		opt.Cursor = p.Cursor
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	for _, k := range []string{"/l/c-d", "/l/b/d/e", "/l/a", "/l/b", "/l/c", "/l/b/c", "/lx", "/l", "/m/z", "/l/c-d/x"} {
		set(t, h, k, fmt.Sprintf("%q", k))
	}
	tests := []struct {
		name   string
		prefix string
		opt    hub.ListOptions
		pages  [][]string
	}{
		{"whole subtree in key order", "/l/", hub.ListOptions{},
			[][]string{{"/l/a", "/l/b", "/l/b/c", "/l/b/d/e", "/l/c", "/l/c-d", "/l/c-d/x"}}},
		{"deeper subtree", "/l/b/", hub.ListOptions{}, [][]string{{"/l/b/c", "/l/b/d/e"}}},
		{"root", "/", hub.ListOptions{Limit: 4},
			[][]string{{"/l", "/l/a", "/l/b", "/l/b/c"}, {"/l/b/d/e", "/l/c", "/l/c-d", "/l/c-d/x"}, {"/lx", "/m/z"}}},
		{"empty subtree", "/nothing/", hub.ListOptions{}, [][]string{{}}},
		{"pages of two", "/l/", hub.ListOptions{Limit: 2},
			[][]string{{"/l/a", "/l/b"}, {"/l/b/c", "/l/b/d/e"}, {"/l/c", "/l/c-d"}, {"/l/c-d/x"}}},
		{"last page exactly full", "/l/b/", hub.ListOptions{Limit: 2}, [][]string{{"/l/b/c", "/l/b/d/e"}}},
		{"children", "/l/", hub.ListOptions{Children: true},
			[][]string{{"/l/a", "/l/b", "/l/b/", "/l/c", "/l/c-d", "/l/c-d/"}}},
		{"children in pages", "/l/", hub.ListOptions{Children: true, Limit: 2},
			[][]string{{"/l/a", "/l/b"}, {"/l/b/", "/l/c"}, {"/l/c-d", "/l/c-d/"}}},
		{"children one per page", "/l/", hub.ListOptions{Children: true, Limit: 1},
			[][]string{{"/l/a"}, {"/l/b"}, {"/l/b/"}, {"/l/c"}, {"/l/c-d"}, {"/l/c-d/"}}},
		{"children of root", "/", hub.ListOptions{Children: true}, [][]string{{"/l", "/l/", "/lx", "/m/"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := listAll(t, h, tc.prefix, tc.opt); fmt.Sprint(got) != fmt.Sprint(tc.pages) {
				t.Fatalf("pages %v, want %v", got, tc.pages)
			}
		})
	}

	t.Run("values and metadata", func(t *testing.T) {
		t.Parallel()
		p := must(h.List("/l/", hub.ListOptions{Children: true}))
		for _, e := range p.Entries {
			if strings.HasSuffix(e.Key, "/") {
				if e.Value != nil || e.Revision != 0 || e.Seq != 0 {
					t.Errorf("subtree entry %+v carries data", e)
				}
				continue
			}
			g := must(h.Get(e.Key))
			if string(e.Value) != fmt.Sprintf("%q", e.Key) || e.Seq != g.Seq || e.Revision != g.Revision {
				t.Errorf("entry %+v, Get says %+v", e, g)
			}
		}
	})
	t.Run("keys only", func(t *testing.T) {
		t.Parallel()
		p := must(h.List("/l/", hub.ListOptions{KeysOnly: true}))
		if len(p.Entries) != 7 {
			t.Fatalf("%d entries", len(p.Entries))
		}
		for _, e := range p.Entries {
			if e.Value != nil || e.Seq == 0 {
				t.Errorf("keys-only entry %+v: want no value, but the seq", e)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		other := must(h.List("/", hub.ListOptions{Limit: 1})).Cursor
		bad := []struct {
			name, prefix, cursor string
			want                 error
		}{
			{"not base64", "/l/", "!!!", hub.ErrInvalidCursor},
			{"cursor of another subtree", "/m/", other, hub.ErrInvalidCursor},
			{"cursor outside the prefix", "/l/", base64.RawURLEncoding.EncodeToString([]byte("/zz")), hub.ErrInvalidCursor},
			{"a key, not a prefix", "/l", "", hub.ErrInvalidKey},
			{"invalid prefix", "/l//", "", hub.ErrInvalidKey},
		}
		for _, b := range bad {
			if _, err := h.List(b.prefix, hub.ListOptions{Cursor: b.cursor}); !errors.Is(err, b.want) {
				t.Errorf("%s: %v, want %v", b.name, err, b.want)
			}
		}
	})
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	const n = 2345
	var want []string
	for i := range n {
		k := fmt.Sprintf("/p/%05d", (i*7919)%n) // written in a scrambled order
		set(t, h, k, `1`)
	}
	for i := range n {
		want = append(want, fmt.Sprintf("/p/%05d", i))
	}
	set(t, h, "/p0", `1`) // sorts right after the subtree
	tests := []struct {
		name  string
		limit int
		size  int // expected size of every page but the last
	}{
		{"default limit", 0, hub.DefaultListLimit},
		{"small", 7, 7},
		{"clamped to max", 5000, hub.MaxListLimit},
		{"one", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pages := listAll(t, h, "/p/", hub.ListOptions{Limit: tc.limit, KeysOnly: true})
			var got []string
			for i, p := range pages {
				if i < len(pages)-1 && len(p) != tc.size {
					t.Fatalf("page %d has %d entries, want %d", i, len(p), tc.size)
				}
				got = append(got, p...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paged listing differs: %d keys, want %d", len(got), len(want))
			}
		})
	}
	t.Run("cursor survives deletion of its key", func(t *testing.T) {
		t.Parallel()
		h := newHub(t, hub.Config{})
		for _, k := range []string{"/d/a", "/d/b", "/d/c", "/d/d"} {
			set(t, h, k, `1`)
		}
		p := must(h.List("/d/", hub.ListOptions{Limit: 2}))
		must(h.Delete("/d/b", hub.Cond{}, hub.WriteOptions{}))
		p = must(h.List("/d/", hub.ListOptions{Limit: 2, Cursor: p.Cursor}))
		if got := keysOf(p.Entries); !slices.Equal(got, []string{"/d/c", "/d/d"}) || p.Cursor != "" {
			t.Fatalf("second page %v cursor %q", got, p.Cursor)
		}
	})
}

// TestListBytes: a page is bounded in bytes of keys and values as well as in entries. A listing of
// values larger than the budget comes back in several pages, each within the budget (or a single
// entry larger than it), whose concatenation is the whole subtree in key order.
func TestListBytes(t *testing.T) {
	t.Parallel()
	h := newHub(t, hub.Config{})
	sizes := []int{100, 300, 50, 1000, 10, 10, 10, 600, 200, 5000, 1}
	var want []string
	for i, n := range sizes {
		k := fmt.Sprintf("/b/%02d", i)
		set(t, h, k, `"`+strings.Repeat("v", n)+`"`)
		want = append(want, k)
	}
	big := `"` + strings.Repeat("m", 1<<20-2) + `"`
	var mib []string
	for i := range 10 {
		mib = append(mib, fmt.Sprintf("/mib/%d", i))
		set(t, h, mib[i], big)
	}
	tests := []struct {
		name, prefix string
		opt          hub.ListOptions
		want         []string // the whole subtree
		budget       int
	}{
		{"small budget", "/b/", hub.ListOptions{MaxBytes: 700}, want, 700},
		{"budget of one byte: an entry per page", "/b/", hub.ListOptions{MaxBytes: 1}, want, 1},
		{"limit still counts", "/b/", hub.ListOptions{MaxBytes: 1 << 20, Limit: 3}, want, 1 << 20},
		{"keys only count no values", "/b/", hub.ListOptions{MaxBytes: 20, KeysOnly: true}, want, 20},
		{"default budget, 1 MiB values", "/mib/", hub.ListOptions{}, mib, hub.DefaultListBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := tc.opt
			var got []string
			pages := 0
			for {
				p := must(h.List(tc.prefix, opt))
				pages++
				used := 0
				for _, e := range p.Entries {
					used += len(e.Key) + len(e.Value)
					got = append(got, e.Key)
				}
				if len(p.Entries) == 0 || used > tc.budget && len(p.Entries) > 1 {
					t.Fatalf("page %d: %d entries of %d bytes, budget %d", pages, len(p.Entries), used, tc.budget)
				}
				if p.Cursor == "" {
					break
				}
				opt.Cursor = p.Cursor
			}
			if !slices.Equal(got, tc.want) || pages < 2 {
				t.Fatalf("%v in %d pages, want %v in several", got, pages, tc.want)
			}
		})
	}
	t.Run("pages end only where the next entry does not fit", func(t *testing.T) {
		t.Parallel()
		pages := listAll(t, h, "/b/", hub.ListOptions{MaxBytes: 700})
		// Entries are 5 bytes of key plus the value's size + 2: 107, 307, 57, 1007, 17, 17, 17,
		// 607, 207, 5007, 8.
		wantPages := [][]string{{"/b/00", "/b/01", "/b/02"}, {"/b/03"}, {"/b/04", "/b/05", "/b/06", "/b/07"}, {"/b/08"}, {"/b/09"}, {"/b/10"}}
		if fmt.Sprint(pages) != fmt.Sprint(wantPages) {
			t.Fatalf("pages %v, want %v", pages, wantPages)
		}
		if all := slices.Concat(pages...); !slices.Equal(all, want) {
			t.Fatalf("concatenation %v, want %v", all, want)
		}
	})
}
