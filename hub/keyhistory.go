package hub

import (
	"errors"
	"fmt"
	"slices"
)

// History reads: a key's retained past values, newest first, from the hub's history and, below
// it, from the store's own retained changes (Store.Since: etcd's, until compaction; Local keeps
// none beyond the hub's history).

const (
	DefaultHistoryLimit = 20
	MaxHistoryLimit     = 1000
)

// ErrHistoryGone reports a history read that needs changes neither the hub nor the store retains
// any longer: a *HistoryGoneError.
var ErrHistoryGone = errors.New("hub: the key's history below that point is no longer retained")

// HistoryGoneError is a history page below retention. Oldest is the oldest seq whose changes are
// still retained: a page read with a cursor above it would answer.
type HistoryGoneError struct {
	Key    string
	Before uint64
	Oldest uint64
}

func (e *HistoryGoneError) Error() string {
	return fmt.Sprintf("%v: %s before seq %d (changes are retained from seq %d on)", ErrHistoryGone, e.Key, e.Before, e.Oldest)
}

func (e *HistoryGoneError) Unwrap() error { return ErrHistoryGone }

// CompactedError is a store's ErrCompacted that says where its retained changes begin: Since
// answers from positions at or after From.
type CompactedError struct{ From uint64 }

func (e *CompactedError) Error() string {
	return fmt.Sprintf("%v (it holds the changes after seq %d)", ErrCompacted, e.From)
}

func (e *CompactedError) Unwrap() error { return ErrCompacted }

// HistoryPage is a page of a key's past changes, newest first.
type HistoryPage struct {
	// Entries are the changes, each with its Time (0 when unknown, see Event.Time); a deleted
	// change has Deleted set and no Value.
	Entries []Event
	// Before is the cursor of the next page, which holds the changes below this seq; 0 when
	// Entries reach the key's first change. When the history below is no longer retained, reading
	// that page fails with a *HistoryGoneError.
	Before uint64
}

// historyWindow is the first span of seqs a history read asks the store for, below the hub's
// history; each further one is four times larger, so a key written rarely costs few requests.
const historyWindow = 256

// History returns up to limit (default 20, at most 1000) of key's changes with a seq below before
// (0: from the newest), newest first: from the hub's history, then from the store's retained
// changes below it. A page of which nothing is retained any longer fails with a
// *HistoryGoneError; a page that reaches the retention's start has a cursor (Before) whose page
// fails so, unless the page holds the key's very first change.
func (h *Hub) History(key string, before uint64, limit int) (HistoryPage, error) {
	if err := h.Limits().CheckKey(key); err != nil {
		return HistoryPage{}, err
	}
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)
	// The key's newest change is in this node's history (another node may have made it a moment
	// ago). Not the store's seq: in etcd, bookkeeping writes advance it with nothing to deliver.
	if cur, err := h.Store.Get(key); err == nil {
		h.awaitDelivered(cur.Seq)
	}
	h.mu.Lock()
	complete, floor := h.history.complete(), h.history.floorSeq
	entries, more := h.history.keyHistory(key, before, limit)
	h.mu.Unlock()
	switch {
	case more:
		return HistoryPage{Entries: entries, Before: entries[len(entries)-1].Seq}, nil
	case complete:
		return HistoryPage{Entries: entries}, nil
	}
	// Below the hub's history: the changes up to its floor (and below before) come from the store.
	upTo := floor
	if before > 0 {
		upTo = min(upTo, before-1)
	}
	older, from, err := h.storeHistory(key, upTo, floor, limit-len(entries)+1)
	if err != nil {
		return HistoryPage{}, err
	}
	for _, e := range older {
		if len(entries) > 0 && e.Seq >= entries[len(entries)-1].Seq {
			continue // at the floor's seq the hub's history may still hold the key's change
		}
		if len(entries) == limit {
			return HistoryPage{Entries: entries, Before: entries[len(entries)-1].Seq}, nil
		}
		entries = append(entries, e)
	}
	page := HistoryPage{Entries: entries}
	switch {
	case from == 0: // the store holds every change: these are the key's first
	case len(entries) == 0 && before > 0:
		return HistoryPage{}, &HistoryGoneError{Key: key, Before: before, Oldest: from + 1}
	case len(entries) > 0:
		page.Before = entries[len(entries)-1].Seq
	default:
		page.Before = from + 1
	}
	return page, nil
}

// storeHistory asks the store for key's changes up to seq upTo, in windows growing downwards,
// until it has want of them, reaches seq 0 or the store's retention. It returns them newest
// first, and the seq up to which it did not read: 0 when it read from the start; when it stopped
// short of want, the seq up to which nothing is retained (floor, the hub's, for a store that
// keeps nothing beyond it).
func (h *Hub) storeHistory(key string, upTo, floor uint64, want int) ([]Event, uint64, error) {
	var out []Event // newest first
	hi, window := upTo, uint64(historyWindow)
	for hi > 0 && len(out) < want {
		lo := hi - min(hi, window)
		window *= 4
		events, err := h.Store.Since(Position{Seq: lo}, key, hi)
		var ce *CompactedError
		switch {
		case errors.As(err, &ce) && ce.From > lo && ce.From < hi:
			lo = ce.From
			if events, err = h.Store.Since(Position{Seq: lo}, key, hi); err != nil {
				return nil, 0, err
			}
			slices.Reverse(events)
			return append(out, events...), lo, nil
		case errors.As(err, &ce):
			return out, max(ce.From, hi), nil
		case errors.Is(err, ErrCompacted):
			return out, max(floor, hi), nil
		case err != nil:
			return nil, 0, err
		}
		slices.Reverse(events)
		out = append(out, events...)
		hi = lo
	}
	return out, hi, nil
}
