package hub

import (
	"testing"
	"time"
)

// An item holds its own copy of the key and the value, whatever the caller does with its bytes
// afterwards, and gives them back as they were.
func TestItemCopiesKeyAndValue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		rare  rareFields
	}{
		{"small value", `{"n":123}`, rareFields{}},
		{"one byte", `1`, rareFields{}},
		{"large value", `"` + string(make([]byte, 5000)) + `"`, rareFields{}},
		{"rare fields", `{"x":1}`, rareFields{expires: time.Unix(100, 0), typ: "image/png", ephemeral: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := []byte("PUT /a/key HTTP/1.1")
			key := string(line[4:10])
			value := []byte(tc.value)
			it := newItem(key, value, 7, 42, tc.rare)
			for i := range value {
				value[i] = 'X'
			}
			if it.key != "/a/key" || string(it.value()) != tc.value || it.revision != 7 || it.seq != 42 {
				t.Fatalf("item = %q %q rev %d seq %d", it.key, it.value(), it.revision, it.seq)
			}
			if cap(it.value()) != len(tc.value) {
				t.Errorf("cap(value) = %d, want %d: an append must not write past the value", cap(it.value()), len(tc.value))
			}
			e := it.entry()
			if e.Key != "/a/key" || string(e.Value) != tc.value || e.Expires != tc.rare.expires || e.Type != tc.rare.typ || e.Ephemeral != tc.rare.ephemeral {
				t.Errorf("entry = %+v", e)
			}
			if (it.rare == nil) != (tc.rare == rareFields{}) {
				t.Errorf("rare = %v for %+v", it.rare, tc.rare)
			}
		})
	}
	if v := (&item{key: "/lookup"}).value(); v != nil {
		t.Errorf("a lookup item's value = %q, want nil", v)
	}
}
