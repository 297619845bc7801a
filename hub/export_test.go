package hub

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
