package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"strconv"
	"time"
)

// HistoryEntry is one past change of a key.
type HistoryEntry struct {
	Revision int64           // the key's revision after the change (a delete: the deleted revision + 1)
	Seq      uint64          // the commit's seq
	Time     time.Time       // when the change was committed; zero when the server does not know it
	Value    json.RawMessage // the new value (a stored file's description); nil for a delete
	Type     string          // a stored file's content type; "" for JSON
	Deleted  bool
}

// HistoryOptions shape a history read.
type HistoryOptions struct {
	Limit  int    // entries per request; 0: the server's default (20); at most 1000
	Before uint64 // start below this seq (an entry's Seq from an earlier read); 0: from the newest
}

// History returns key's past changes, newest first, fetching page after page as the loop asks
// for more, as far back as the server retains them (GET /key?history). It ends after the key's
// first change, or, when older changes are no longer retained, with an error matching
// ErrHistoryGone whose *Error names the oldest seq retained (Oldest). Another error ends it too.
func (c *Client) History(ctx context.Context, key string, opts HistoryOptions) iter.Seq2[HistoryEntry, error] {
	return func(yield func(HistoryEntry, error) bool) {
		if err := checkKey(key); err != nil {
			yield(HistoryEntry{}, err)
			return
		}
		cursor := ""
		if opts.Before != 0 {
			cursor = strconv.FormatUint(opts.Before, 10)
		}
		for {
			q := query{}.flag("history")
			if opts.Limit > 0 {
				q = q.add("limit", strconv.Itoa(opts.Limit))
			}
			if cursor != "" {
				q = q.add("cursor", cursor)
			}
			var page struct {
				Entries []struct {
					Revision int64           `json:"revision"`
					Seq      uint64          `json:"seq"`
					Time     string          `json:"time"`
					Value    json.RawMessage `json:"value"`
					Type     string          `json:"type"`
					Deleted  bool            `json:"deleted"`
				} `json:"entries"`
				Cursor string `json:"cursor"`
			}
			if _, err := c.doJSON(ctx, request{method: http.MethodGet, path: key, query: q}, &page); err != nil {
				yield(HistoryEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				h := HistoryEntry{Revision: e.Revision, Seq: e.Seq, Value: e.Value, Type: e.Type, Deleted: e.Deleted}
				if e.Time != "" {
					h.Time, _ = time.Parse(time.RFC3339Nano, e.Time)
				}
				if !yield(h, nil) {
					return
				}
			}
			if page.Cursor == "" {
				return
			}
			cursor = page.Cursor
		}
	}
}
