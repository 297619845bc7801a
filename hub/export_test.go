package hub

import "sync"

// local returns the hub's store of the single binary, for tests that look inside it.
func (h *Hub) local() *Local { return h.Store.(*Local) }

// ExpiryLen returns the number of deadlines in the expiry queue, stale ones included, for tests.
func (h *Hub) ExpiryLen() int {
	l := h.local()
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.expiry)
}

// LockWaiters returns how many Lock calls queue for key, for tests.
func (h *Hub) LockWaiters(key string) int { return h.lockWaiters(key) }

// TestInitial returns what a subscription starts with: its replay (Initial), or every entry of its
// snapshot or reset (read on the first call, then kept), for tests. Nil when it has neither.
func (s *Subscription) TestInitial() []Event {
	if v, ok := testInitial.Load(s); ok {
		return v.([]Event)
	}
	out := s.Initial
	if s.first != nil || s.entries != nil {
		all, err := ReadAll(entriesFunc(s.NextEntries))
		if err != nil {
			panic(err)
		}
		out = all
	}
	testInitial.Store(s, out)
	return out
}

var testInitial sync.Map // *Subscription → []Event

type entriesFunc func([]Event) ([]Event, error)

func (f entriesFunc) Next(buf []Event) ([]Event, error) { return f(buf) }
