package hub

import (
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// On-disconnect writes in a cluster (ondisconnect.go). A registration is a plain key,
// <prefix>d<key>, holding an etcdDisc: the node and connection it belongs to and the write. It is
// not on the node's lease, so it outlives the node: when a session ends, its node performs its
// registrations after the grace period; when a node is lost (its marker, <prefix>k!<node>, is
// deleted with its lease), every node that sees it performs that node's registrations, and a
// node starting up performs those of nodes without a marker. Each performance is one
// transaction that also deletes the registration, compared on the registration's ModRevision,
// so exactly one node makes each write, and a registration that was replaced or cancelled
// meanwhile is never made. The write puts this node's marker with the reason in the same
// transaction, so its events carry the reason.

// etcdDisc is the value of <prefix>d<key>. Its JSON is the stored format.
type etcdDisc struct {
	Node   string          `json:"n"`
	Conn   string          `json:"c"`
	Value  json.RawMessage `json:"v,omitempty"`
	Delete bool            `json:"d,omitempty"`
}

func (e *Etcd) discKey(key string) string { return e.ec.Prefix + "d" + key }

// OnDisconnect registers w for s (see Store): a registration of w.Key in etcd, replacing any
// earlier one of that key.
func (e *Etcd) OnDisconnect(s *Session, w DisconnectWrite) error {
	if err := w.check(e.limits); err != nil {
		return err
	}
	if e.ctx.Err() != nil {
		return ErrClosed
	}
	id := s.Conn()
	e.sessionsMu.Lock()
	es := e.sessions[id]
	var err error
	switch {
	case es == nil || es.ended:
		err = fmt.Errorf("%w: the connection has ended", ErrClosed)
	case !hasKey(es.disc, w.Key) && len(es.disc) >= MaxDisconnectWrites:
		err = ErrTooManyDisconnectWrites
	}
	e.sessionsMu.Unlock()
	if err != nil {
		return err
	}
	b := encodeEtcd(etcdDisc{Node: e.node, Conn: id, Value: w.Value, Delete: w.Delete})
	ctx, cancel := e.reqCtx()
	defer cancel()
	if _, err := e.cli.Put(ctx, e.discKey(w.Key), string(b)); err != nil {
		return unavailableErr(err)
	}
	e.sessionsMu.Lock()
	if es.disc == nil {
		es.disc = make(map[string]struct{})
	}
	es.disc[w.Key] = struct{}{}
	e.sessionsMu.Unlock()
	return nil
}

func hasKey(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }

// CancelDisconnect deletes s's registration of key (every one of s's for ""), unless another
// connection's has replaced it.
func (e *Etcd) CancelDisconnect(s *Session, key string) error {
	if key != "" {
		if err := e.limits.CheckKey(key); err != nil {
			return err
		}
	}
	id := s.Conn()
	e.sessionsMu.Lock()
	var keys []string
	if es := e.sessions[id]; es != nil {
		for k := range es.disc {
			if key == "" || k == key {
				keys = append(keys, k)
				delete(es.disc, k)
			}
		}
	}
	e.sessionsMu.Unlock()
	ctx, cancel := e.reqCtx()
	defer cancel()
	for _, k := range keys {
		resp, err := e.cli.Get(ctx, e.discKey(k))
		if err != nil {
			return unavailableErr(err)
		}
		if len(resp.Kvs) == 0 {
			continue
		}
		var d etcdDisc
		if json.Unmarshal(resp.Kvs[0].Value, &d) == nil && d.Conn == id {
			_, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.discKey(k)), "=", resp.Kvs[0].ModRevision)).
				Then(clientv3.OpDelete(e.discKey(k))).Commit()
			if err != nil {
				return unavailableErr(err)
			}
		}
	}
	return nil
}

// runDisconnect performs the registration of key if it still belongs to connection conn: the
// write and the registration's delete in one transaction, compared on both keys' ModRevisions.
// A write that cannot be made (a set of a held lock, a delete of an absent key) just deletes the
// registration.
func (e *Etcd) runDisconnect(key, conn, reason string) {
	if e.ctx.Err() != nil {
		return
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	reg := e.discKey(key)
	for {
		resp, err := e.cli.Txn(ctx).Then(clientv3.OpGet(reg), clientv3.OpGet(e.dataKey(key))).Commit()
		if err != nil {
			e.log.Warn("on-disconnect write", "key", key, "err", err)
			return
		}
		regs := resp.Responses[0].GetResponseRange().Kvs
		if len(regs) == 0 {
			return // made by another node, cancelled, or replaced and made
		}
		var d etcdDisc
		if err := json.Unmarshal(regs[0].Value, &d); err != nil || d.Conn != conn {
			return // another connection's now
		}
		v := etcdView{items: map[string]item{}, mods: map[string]int64{key: 0}}
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			it, _, err := e.itemOfKV(kvs[0])
			if err != nil {
				e.log.Warn("on-disconnect write", "key", key, "err", err)
				return
			}
			v.items[key], v.mods[key] = it, kvs[0].ModRevision
		}
		now := e.clock.Now()
		st, err := discStep(DisconnectWrite{Key: key, Value: d.Value, Delete: d.Delete})(now, v)
		ops := []clientv3.Op{clientv3.OpDelete(reg)}
		if err != nil {
			e.log.Info("on-disconnect write not made", "key", key, "err", err)
		} else if st.one.Key != "" {
			ops = append(ops, e.changeOps(&st.one, now)...)
			ops = append(ops, clientv3.OpPut(e.markerKey(), reason, clientv3.WithLease(clientv3.LeaseID(e.lease.Load()))))
		}
		txn, err := e.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(reg), "=", regs[0].ModRevision),
			clientv3.Compare(clientv3.ModRevision(e.dataKey(key)), "=", v.mods[key]),
		).Then(ops...).Commit()
		if err != nil {
			e.log.Warn("on-disconnect write", "key", key, "err", err)
			return
		}
		if txn.Succeeded {
			return
		}
	}
}

// runSessionDisconnects performs the registrations of an ended session of this node.
func (e *Etcd) runSessionDisconnects(conn string, keys map[string]struct{}, reason string) {
	for key := range keys {
		e.runDisconnect(key, conn, reason)
	}
}

// runNodeDisconnects performs every registration of node, which is lost.
func (e *Etcd) runNodeDisconnects(node string) {
	for _, r := range e.registrations() {
		if r.d.Node == node {
			e.runDisconnect(r.key, r.d.Conn, ReasonNodeLost)
		}
	}
}

type discRegistration struct {
	key string
	d   etcdDisc
}

// registrations lists every on-disconnect registration in etcd.
func (e *Etcd) registrations() []discRegistration {
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.discKey("/"), clientv3.WithPrefix())
	if err != nil {
		if e.ctx.Err() == nil {
			e.log.Warn("reading on-disconnect writes", "err", err)
		}
		return nil
	}
	out := make([]discRegistration, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var d etcdDisc
		if json.Unmarshal(kv.Value, &d) == nil {
			out = append(out, discRegistration{key: strings.TrimPrefix(string(kv.Key), e.ec.Prefix+"d"), d: d})
		}
	}
	return out
}

// orphanDisconnects performs, at start-up, the registrations of nodes that have no marker: they
// were lost while no node watched (every node was down).
func (e *Etcd) orphanDisconnects() {
	defer e.wg.Done()
	alive := map[string]bool{}
	for _, r := range e.registrations() {
		n := r.d.Node
		if _, seen := alive[n]; !seen {
			ctx, cancel := e.reqCtx()
			resp, err := e.cli.Get(ctx, e.ec.Prefix+"k!"+n, clientv3.WithCountOnly())
			cancel()
			if err != nil {
				return
			}
			alive[n] = resp.Count > 0
		}
		if !alive[n] {
			e.runDisconnect(r.key, r.d.Conn, ReasonNodeLost)
		}
	}
}

// nodeLost handles a marker's delete seen by the watch: its node's lease ended.
func (e *Etcd) nodeLost(markerKey []byte) {
	node := strings.TrimPrefix(string(markerKey), e.ec.Prefix+"k!")
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.runNodeDisconnects(node)
	}()
}
