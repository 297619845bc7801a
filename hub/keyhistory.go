package hub

import "fmt"

// History reads: a key's retained past values, newest first, from the hub's history.

const (
	DefaultHistoryLimit = 20
	MaxHistoryLimit     = 1000
)

// ErrHistoryGone reports a history read that needs changes the hub no longer retains.
var ErrHistoryGone = fmt.Errorf("hub: the key's history below that point is no longer retained")

// HistoryPage is a page of a key's past changes, newest first.
type HistoryPage struct {
	Entries []Event // a deleted change has Deleted set and no Value
	// Before is the cursor of the next page, which holds the changes below this seq; 0 when
	// Entries reach the key's first change. When the history below is no longer retained, reading
	// that page fails with ErrHistoryGone.
	Before uint64
}

// History returns up to limit (default 20, at most 1000) of key's changes with a seq below before
// (0: from the newest), newest first, from the retained history. A before the retained history
// no longer reaches fails with ErrHistoryGone; so does a page below before of which nothing is
// retained. The first page answers what is retained, with a cursor unless it is the whole history.
func (h *Hub) History(key string, before uint64, limit int) (HistoryPage, error) {
	if err := h.Limits().CheckKey(key); err != nil {
		return HistoryPage{}, err
	}
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)
	h.awaitDelivered(h.Store.Seq()) // a client's own acknowledged writes are in the history
	h.mu.Lock()
	complete, floor := h.history.complete(), h.history.floorSeq
	if before > 0 && !complete && before <= floor+1 {
		h.mu.Unlock()
		return HistoryPage{}, fmt.Errorf("%w: %s before seq %d (changes up to seq %d are gone)", ErrHistoryGone, key, before, floor)
	}
	entries, more := h.history.keyHistory(key, before, limit)
	h.mu.Unlock()
	page := HistoryPage{Entries: entries}
	switch {
	case more:
		page.Before = entries[len(entries)-1].Seq
	case complete:
	case before > 0 && len(entries) == 0:
		return HistoryPage{}, fmt.Errorf("%w: %s before seq %d (changes up to seq %d are gone)", ErrHistoryGone, key, before, floor)
	case len(entries) > 0:
		page.Before = entries[len(entries)-1].Seq
	default:
		page.Before = floor + 1
	}
	return page, nil
}
