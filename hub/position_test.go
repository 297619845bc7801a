package hub_test

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/statehub/statehub/hub"
)

func TestParsePosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want hub.Position
		ok   bool
	}{
		{"seq", "42", hub.Position{Seq: 42}, true},
		{"seq zero", "0", hub.Position{}, true},
		{"max seq", "18446744073709551615", hub.Position{Seq: math.MaxUint64}, true},
		{"event", "/room/1/ann:3:42", hub.Position{Seq: 42, Key: "/room/1/ann"}, true},
		{"event revision zero", "/a:0:1", hub.Position{Seq: 1, Key: "/a"}, true},
		{"snapshot entry", "/room/1/ann:3:42:s", hub.Position{Seq: 42, Key: "/room/1/ann", Snapshot: true}, true},
		{"unicode key", "/日本:0:7", hub.Position{Seq: 7, Key: "/日本"}, true},

		{"empty", "", hub.Position{}, false},
		{"word", "abc", hub.Position{}, false},
		{"negative seq", "-1", hub.Position{}, false},
		{"seq overflow", "18446744073709551616", hub.Position{}, false},
		{"space", " 42", hub.Position{}, false},
		{"two fields", "/a:1", hub.Position{}, false},
		{"bad fourth field", "/a:1:2:x", hub.Position{}, false},
		{"five fields", "/a:1:2:s:s", hub.Position{}, false},
		{"key without slash", "a:1:2", hub.Position{}, false},
		{"root key", "/:1:2", hub.Position{}, false},
		{"empty key", ":1:2", hub.Position{}, false},
		{"revision not a number", "/a:x:2", hub.Position{}, false},
		{"empty revision", "/a::2", hub.Position{}, false},
		{"seq not a number", "/a:1:y", hub.Position{}, false},
		{"negative event seq", "/a:1:-2", hub.Position{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := hub.ParsePosition(tc.in)
			if !tc.ok {
				if !errors.Is(err, hub.ErrInvalidPosition) {
					t.Fatalf("ParsePosition(%q) = %+v, %v; want ErrInvalidPosition", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePosition(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestEventIDRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   hub.Event
		id   string
	}{
		{"change", hub.Event{Key: "/room/1/ann", Revision: 3, Seq: 42}, "/room/1/ann:3:42"},
		{"delete", hub.Event{Key: "/a", Revision: 1, Seq: 2, Deleted: true}, "/a:1:2"},
		{"snapshot entry", hub.Event{Key: "/a/b", Revision: 0, Seq: 9, Snapshot: true}, "/a/b:0:9:s"},
		{"extremes", hub.Event{Key: "/x", Revision: math.MaxInt64, Seq: math.MaxUint64}, "/x:9223372036854775807:18446744073709551615"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if id := tc.ev.ID(); id != tc.id {
				t.Fatalf("ID() = %q, want %q", id, tc.id)
			}
			if id := hub.EventID(tc.ev.Key, tc.ev.Revision, tc.ev.Seq, tc.ev.Snapshot); id != tc.id {
				t.Fatalf("EventID = %q, want %q", id, tc.id)
			}
			p, err := hub.ParsePosition(tc.id)
			want := hub.Position{Seq: tc.ev.Seq, Key: tc.ev.Key, Snapshot: tc.ev.Snapshot}
			if err != nil || p != want {
				t.Fatalf("ParsePosition(%q) = %+v, %v; want %+v", tc.id, p, err, want)
			}
		})
	}
}

func TestPositionCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    hub.Position
		seq  uint64
		key  string
		want bool
	}{
		{"earlier seq", hub.Position{Seq: 5}, 4, "/z", true},
		{"same seq, whole commit", hub.Position{Seq: 5}, 5, "/z", true},
		{"later seq", hub.Position{Seq: 5}, 6, "/a", false},
		{"same seq, key before", hub.Position{Seq: 5, Key: "/m"}, 5, "/a", true},
		{"same seq, same key", hub.Position{Seq: 5, Key: "/m"}, 5, "/m", true},
		{"same seq, key after", hub.Position{Seq: 5, Key: "/m"}, 5, "/n", false},
		{"earlier seq, any key", hub.Position{Seq: 5, Key: "/m"}, 4, "/z", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.p.Covers(tc.seq, tc.key); got != tc.want {
				t.Errorf("%+v.Covers(%d, %q) = %v, want %v", tc.p, tc.seq, tc.key, got, tc.want)
			}
		})
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0", "42", "/a:1:2", "/a:1:2:s", "/a:1:2:x", "", ":", "/a:-1:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := hub.ParsePosition(s)
		if err != nil {
			if !errors.Is(err, hub.ErrInvalidPosition) {
				t.Fatalf("ParsePosition(%q) = %v, not ErrInvalidPosition", s, err)
			}
			return
		}
		var again string
		if p.Key == "" {
			if p.Snapshot {
				t.Fatalf("ParsePosition(%q) = %+v: a snapshot position without a key", s, p)
			}
			again = strconv.FormatUint(p.Seq, 10)
		} else {
			again = hub.EventID(p.Key, 0, p.Seq, p.Snapshot)
		}
		q, err := hub.ParsePosition(again)
		if err != nil || q != p {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, p, again, q, err)
		}
	})
}
