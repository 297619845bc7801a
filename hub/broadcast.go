package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Broadcast sends msg, a JSON document, to the current subscribers of path: the subscriptions of
// path itself and of every prefix above it, as for a change of a key (a message to /room/1/cursor
// reaches subscribers of /room/1/cursor, /room/1/, /room/ and /). It is not a change: nothing is
// stored or journaled, no seq is taken, and the message is never in the history, a replay, a
// snapshot or a reset. Each subscriber gets it through its bounded queue, where it counts like an
// event (a full queue closes the subscriber as a slow consumer), after every change the hub had
// delivered when Broadcast was called. Subscribers of other nodes of a cluster get it through the
// store (Store.Broadcast).
//
// msg is compacted and checked as a value is (valid UTF-8, nesting depth), within
// Limits.MaxBroadcastBytes: ErrInvalidValue, ErrValueTooDeep or ErrValueTooLarge otherwise.
func (h *Hub) Broadcast(path string, msg []byte) error {
	l := h.Limits()
	if err := l.CheckPath(path); err != nil {
		return err
	}
	if len(msg) > l.MaxBroadcastBytes {
		return fmt.Errorf("%w: a broadcast message is at most %d bytes", ErrValueTooLarge, l.MaxBroadcastBytes)
	}
	msg, err := l.CompactJSON(msg)
	if err != nil {
		return err
	}
	return h.Store.Broadcast(path, msg)
}

// Broadcast hands msg to the feed at once, after every commit already handed to it (publish's
// lock orders the two): nothing reaches the journal.
func (h *Local) Broadcast(path string, msg []byte) error {
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	h.feed.Deliver([]Event{{Key: path, Value: msg, Broadcast: true}})
	return nil
}

// etcdBroadcast is the value of <prefix>b/<node> (Etcd.Broadcast). Its JSON is the format other
// nodes read.
type etcdBroadcast struct {
	Path string          `json:"p"`
	Msg  json.RawMessage `json:"m"`
}

// broadcastKey is where this node puts its broadcasts: one key per node, on its lease.
func (e *Etcd) broadcastKey() string { return e.ec.Prefix + "b/" + e.node }

// Broadcast puts the message on this node's broadcast key, on its lease: every node's watch sees
// the put, at a revision of its own, and hands it to its feed as a broadcast, in revision order
// with the changes. That revision is no change's, so it is no client's position; the hub passes
// it as its feed's position, so a snapshot or resume taken at it neither waits nor resets. The key
// is overwritten by the node's next broadcast (one revision each, no delete) and removed with the
// node's lease; nothing reads it but the watches. It returns once this node's watch has delivered
// it.
func (e *Etcd) Broadcast(path string, msg []byte) error {
	if e.ctx.Err() != nil {
		return ErrClosed
	}
	// Not json.Marshal: it would escape <, > and & in the message, which must arrive as sent.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(etcdBroadcast{Path: path, Msg: msg})
	ctx, cancel := e.reqCtx()
	defer cancel()
	put, err := e.cli.Put(ctx, e.broadcastKey(), strings.TrimSuffix(buf.String(), "\n"), clientv3.WithLease(clientv3.LeaseID(e.lease.Load())))
	if err != nil {
		return unavailableErr(err)
	}
	e.waitDelivered(uint64(put.Header.Revision))
	return nil
}

// broadcastOf converts the watch event of a broadcast's put.
func (e *Etcd) broadcastOf(ev *clientv3.Event) (Event, bool) {
	var b etcdBroadcast
	if err := json.Unmarshal(ev.Kv.Value, &b); err != nil || e.limits.CheckPath(b.Path) != nil || len(b.Msg) == 0 {
		e.log.Error("undecodable broadcast in etcd", "key", string(ev.Kv.Key), "err", err)
		return Event{}, false
	}
	return Event{Key: b.Path, Value: b.Msg, Seq: uint64(ev.Kv.ModRevision), Broadcast: true}, true
}
