package hub

// ExpiryLen returns the number of deadlines in the expiry queue, stale ones included, for tests.
func (h *Hub) ExpiryLen() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.expiry)
}
