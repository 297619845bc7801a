package hub

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statehub/statehub/hub/wal"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults for EtcdConfig's zero fields.
const (
	DefaultEtcdPrefix         = "/statehub/"
	DefaultEtcdDialTimeout    = 5 * time.Second
	DefaultEtcdRequestTimeout = 5 * time.Second
)

// EtcdConfig says which etcd cluster a hub keeps its state in (OpenEtcd).
type EtcdConfig struct {
	Endpoints      []string
	Prefix         string        // every key Statehub writes starts with it (default "/statehub/")
	Username       string        // etcd's user and password; "" for none
	Password       string        //
	TLS            *tls.Config   // client certificate and CA; nil for plain connections
	DialTimeout    time.Duration // default 5 s
	RequestTimeout time.Duration // a request etcd does not answer within it fails with ErrUnavailable (default 5 s)
	// BlobDir holds the bytes of stored files, named by their sha256: a directory every node
	// shares. Required for stored files; without it a file write fails with ErrUnavailable.
	BlobDir string
}

// Etcd is the store of a cluster: the state lives in etcd v3 under a prefix, and any number of
// nodes (processes with their own Etcd) share it. The mapping (see also design/cluster.md):
//
//   - A commit is one etcd transaction, so the seq is etcd's revision: strictly increasing, not
//     consecutive (expiry and idempotency bookkeeping take revisions of their own). A key's
//     revision is its etcd Version - 1.
//   - <prefix>k<key> holds a key's record (etcdRecord): the value and its rare fields. A write
//     reads the keys it decides on at one revision, runs the same step Local runs, and commits
//     only if none of them changed since (a compare on each ModRevision); else it tries again.
//   - <prefix>x/<deadline><kind><name> indexes a deadline (a TTL, a lock's expiry, an idempotency
//     record's end). It is written (created, or rewritten when the deadline is the same) in the
//     same transaction as what it times, so its ModRevision is that write's; the expirer deletes
//     the key only if the key's ModRevision is still that, so a rewrite makes the old deadline a
//     no-op. Every node runs the expirer; deletes are conditional, so two nodes expiring one key
//     commit one delete.
//   - <prefix>i/<key> holds an idempotency record.
//   - Ephemeral keys are put on this node's lease: the node deletes them after their session's
//     grace period; if the node dies, etcd deletes them when the lease runs out. The record
//     holds the owner's presence (connection id and subject). A delete event has no value, so
//     the reason of a departure rides on a marker key in the watched range, <prefix>k!<node>,
//     on the node's lease: the node's delete of an ephemeral key puts the reason there in the
//     same transaction (same revision), and when the lease runs out etcd deletes the marker
//     with the node's keys, which says node_lost. Watchers read the marker's event of a
//     revision into the reasons of that revision's deletes, and never show the marker. Locks are plain
//     keys with a deadline: a held lock outlives the node it was taken through. A lock's fence is
//     the seq that created its key (CreateRevision).
//   - Each node holds one watch on <prefix>b/ to <prefix>k and hands every change and broadcast
//     to its feed in revision order; a resume older than the node's history is read back by a
//     watch of its own (Since).
//   - A broadcast (broadcast.go) is a put of <prefix>b/<node>, on the node's lease, overwritten
//     by the node's next one: every node's watch delivers it as a broadcast, never as a change.
//     Its revision is no change's, so no client sees it as a position (seqs skip it, as they skip
//     bookkeeping), and the feed passes it, so a position taken at it is resumed at once.
//     A write answers once this node's watch has delivered its commit, so the node's
//     subscriptions, resumes and lock waiters reflect every write it has answered, as with Local.
//   - Stored files' bytes live in BlobDir, never in etcd, which holds their description.
type Etcd struct {
	cfg    Config
	ec     EtcdConfig
	limits Limits
	clock  Clock
	log    *slog.Logger
	feed   Feed
	cli    *clientv3.Client
	blobs  *blobStore
	lease  atomic.Int64 // this node's lease (a clientv3.LeaseID), for ephemeral keys; replaced when etcd ends it
	node   string       // this node's name in session ids

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the expirer when a write adds a deadline

	// The watch's position: every change under <prefix>k up to delivered has been handed to the
	// feed. A write answers only once its commit is delivered (waitDelivered), so what this
	// node's hub shows (a subscription's start, a resume, lock waiters) reflects every write it
	// has answered, as with Local.
	deliverMu sync.Mutex
	delivered uint64
	advanced  chan struct{} // closed and replaced when delivered advances

	sessionsMu sync.Mutex
	sessions   map[string]*etcdSession
	nsessions  atomic.Uint64
}

// etcdSession is what Etcd remembers of a session: the ephemeral keys written through it, and
// whether it has ended (its grace period runs).
type etcdSession struct {
	keys   map[string]struct{}
	disc   map[string]struct{} // keys it registered on-disconnect writes for (etcd_disconnect.go)
	ended  bool
	reason string // why it ended
}

// OpenEtcd returns a hub whose state lives in the etcd cluster at ec.Endpoints. It starts this
// node's watch at the current revision, its lease and its expirer.
func OpenEtcd(cfg Config, ec EtcdConfig) (*Hub, error) {
	if len(ec.Endpoints) == 0 {
		return nil, errors.New("hub: EtcdConfig.Endpoints is required")
	}
	if ec.Prefix == "" {
		ec.Prefix = DefaultEtcdPrefix
	}
	if ec.DialTimeout <= 0 {
		ec.DialTimeout = DefaultEtcdDialTimeout
	}
	if ec.RequestTimeout <= 0 {
		ec.RequestTimeout = DefaultEtcdRequestTimeout
	}
	cfg.Journal = nil
	cfg = cfg.withDefaults()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: ec.Endpoints, DialTimeout: ec.DialTimeout, Username: ec.Username, Password: ec.Password,
		TLS: ec.TLS, Logger: zap.NewNop(), // failures reach Statehub's own log as errors

	})
	if err != nil {
		return nil, fmt.Errorf("hub: connecting to etcd: %w", err)
	}
	h := newHub(cfg)
	e := &Etcd{
		cfg: cfg, ec: ec, limits: cfg.Limits.withDefaults(), clock: cfg.Clock, log: cfg.Logger, feed: h, cli: cli,
		blobs: newBlobStore(NewFSBlobStore(wal.OSFS{}, ec.BlobDir), nil), kick: make(chan struct{}, 1), sessions: make(map[string]*etcdSession),
		advanced: make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	h.Store = e
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := cli.Get(ctx, e.ec.Prefix+"k", clientv3.WithCountOnly())
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("hub: reading from etcd at %s: %w", strings.Join(ec.Endpoints, ","), err)
	}
	start := uint64(resp.Header.Revision)
	grant, err := cli.Grant(ctx, int64(max(cfg.EphemeralGrace/time.Second, 2)))
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("hub: etcd lease: %w", err)
	}
	e.lease.Store(int64(grant.ID))
	e.node = strconv.FormatInt(int64(grant.ID), 16)
	keep, err := cli.KeepAlive(e.ctx, grant.ID)
	if err == nil {
		err = e.putMarker(ctx)
	}
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("hub: etcd lease: %w", err)
	}
	h.Start(start)
	e.delivered = start
	e.wg.Add(4)
	go e.keepLease(keep, grant.TTL)
	go e.watch(start)
	go e.expirer()
	go e.orphanDisconnects()
	e.log.Info("state in etcd", "endpoints", strings.Join(ec.Endpoints, ","), "prefix", ec.Prefix, "seq", start, "node", e.node)
	return h, nil
}

// keepLease keeps this node's lease alive. When etcd ends it anyway (the node was paused or cut
// off for longer than its TTL), etcd has deleted the node's ephemeral keys, with their delete
// events; a new lease is granted for later ones.
func (e *Etcd) keepLease(keep <-chan *clientv3.LeaseKeepAliveResponse, ttl int64) {
	defer e.wg.Done()
	for {
		for range keep { // the client renews the lease; the channel closes when it is lost or at Close
		}
		if e.ctx.Err() != nil {
			return
		}
		e.log.Warn("this node's etcd lease ended; its ephemeral keys are gone, and a new lease carries later ones")
		for wait := 200 * time.Millisecond; e.ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
			ctx, cancel := e.reqCtx()
			grant, err := e.cli.Grant(ctx, ttl)
			cancel()
			if err == nil {
				if keep, err = e.cli.KeepAlive(e.ctx, grant.ID); err == nil {
					e.lease.Store(int64(grant.ID))
					ctx, cancel := e.reqCtx()
					if err := e.putMarker(ctx); err != nil {
						e.log.Warn("this node's reason marker", "err", err)
					}
					cancel()
					break
				}
			}
			select {
			case <-e.ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}

func (e *Etcd) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, e.ec.RequestTimeout)
}

// advance records that the watch has handed every change up to seq to the feed.
func (e *Etcd) advance(seq uint64) {
	e.deliverMu.Lock()
	defer e.deliverMu.Unlock()
	if seq > e.delivered {
		e.delivered = seq
		close(e.advanced)
		e.advanced = make(chan struct{})
	}
}

// waitDelivered blocks until this node's watch has handed the commit at seq, a change under
// <prefix>k, to the feed. The commit is in etcd already: when the watch does not get there within
// the request timeout (it is broken, and subscriptions have ended with ErrUnavailable), it gives
// up and says so in the log; a later resume from seq then gets a reset, never a gap.
func (e *Etcd) waitDelivered(seq uint64) {
	ctx, cancel := e.reqCtx()
	defer cancel()
	for {
		e.deliverMu.Lock()
		delivered, advanced := e.delivered, e.advanced
		e.deliverMu.Unlock()
		if delivered >= seq {
			return
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			if e.ctx.Err() == nil {
				e.log.Warn("etcd watch behind an answered write", "seq", seq, "delivered", delivered)
			}
			return
		}
	}
}

func (e *Etcd) dataKey(key string) string { return e.ec.Prefix + "k" + key }
func (e *Etcd) idemKey(key string) string { return e.ec.Prefix + "i/" + key }

// unavailableErr reports a request etcd did not answer: it may or may not have committed.
func unavailableErr(err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: etcd: %w", ErrUnavailable, err)
}

// etcdRecord is the value of <prefix>k<key>. Its JSON is the stored format.
type etcdRecord struct {
	Value     json.RawMessage `json:"v"`
	Type      string          `json:"t,omitempty"`
	Lock      string          `json:"l,omitempty"` // a held lock's token hash
	Expires   int64           `json:"e,omitempty"` // unix nanoseconds; 0 without a TTL
	Ephemeral bool            `json:"eph,omitempty"`
	Owner     string          `json:"o,omitempty"`  // the connection id (Session.Conn) of an ephemeral key
	Sub       string          `json:"s,omitempty"`  // and its writer's subject
	At        int64           `json:"at,omitempty"` // the write's time on the node that made it, unix nanoseconds
}

// itemOfKV decodes a key's record. A lock's value is rebuilt with its fence, the revision that
// created the key.
func (e *Etcd) itemOfKV(kv *mvccpb.KeyValue) (item, etcdRecord, error) {
	var r etcdRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return item{}, r, fmt.Errorf("hub: etcd record %q: %w", kv.Key, err)
	}
	value := []byte(r.Value)
	if r.Lock != "" {
		var st LockState
		json.Unmarshal(value, &st)
		st.Fence = uint64(kv.CreateRevision)
		value = lockValue(st)
	}
	var exp time.Time
	if r.Expires != 0 {
		exp = time.Unix(0, r.Expires).UTC()
	}
	key := strings.TrimPrefix(string(kv.Key), e.ec.Prefix+"k")
	var pres *Presence
	if r.Ephemeral && r.Owner != "" {
		pres = makePresence(r.Sub, r.Owner)
	}
	return newItem(key, value, kv.Version-1, uint64(kv.ModRevision), rareFields{exp, r.Type, r.Lock, r.Ephemeral, pres, nil}), r, nil
}

// etcdView is the keys a write read, at one revision.
type etcdView struct {
	items map[string]item
	mods  map[string]int64 // ModRevision of each key read; 0 when absent
}

func (v etcdView) get(key string) (item, bool) { it, ok := v.items[key]; return it, ok }
func (v etcdView) nextSeq() uint64             { return 0 } // a lock's fence is filled in when read

// read fetches keys (and an idempotency record) at one revision.
func (e *Etcd) read(ctx context.Context, keys []string, idem string) (etcdView, *IdemRecord, int64, int64, error) {
	v := etcdView{items: make(map[string]item, len(keys)), mods: make(map[string]int64, len(keys))}
	ops := make([]clientv3.Op, 0, len(keys)+1)
	for _, k := range keys {
		ops = append(ops, clientv3.OpGet(e.dataKey(k)))
	}
	if idem != "" {
		ops = append(ops, clientv3.OpGet(e.idemKey(idem)))
	}
	resp, err := e.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return v, nil, 0, 0, unavailableErr(err)
	}
	for i, k := range keys {
		v.mods[k] = 0
		if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
			it, _, err := e.itemOfKV(kvs[0])
			if err != nil {
				return v, nil, 0, 0, err
			}
			v.items[k], v.mods[k] = it, kvs[0].ModRevision
		}
	}
	var rec *IdemRecord
	var idemMod int64
	if idem != "" {
		if kvs := resp.Responses[len(keys)].GetResponseRange().Kvs; len(kvs) > 0 {
			rec = new(IdemRecord)
			if err := json.Unmarshal(kvs[0].Value, rec); err != nil {
				return v, nil, 0, 0, fmt.Errorf("hub: etcd idempotency record: %w", err)
			}
			idemMod = kvs[0].ModRevision
		}
	}
	return v, rec, idemMod, resp.Header.Revision, nil
}

// write runs a write's step against keys read from etcd and commits its changes if none of those
// keys changed meanwhile, trying again until then. It answers once etcd has committed.
func (e *Etcd) write(opt WriteOptions, in intent, keys []string, build buildFunc) (Result, error) {
	fp, err := e.begin(opt, in)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	for {
		v, rec, idemMod, rev, err := e.read(ctx, keys, opt.Idempotency)
		if err != nil {
			return Result{}, err
		}
		now := e.clock.Now()
		if res, ok, err := e.replay(rec, idemMod, fp, now); ok {
			return res, err
		}
		st, err := build(now, v)
		res := st.res
		changes := st.many
		if st.one.Key != "" {
			changes = []Change{st.one}
		}
		if err != nil || len(changes) == 0 {
			res.Seq = uint64(rev)
			return res, err
		}
		cmps := make([]clientv3.Cmp, 0, len(keys)+1)
		for _, k := range keys {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(e.dataKey(k)), "=", v.mods[k]))
		}
		var ops []clientv3.Op
		for i := range changes {
			ops = append(ops, e.changeOps(&changes[i], now)...)
		}
		if opt.Idempotency != "" {
			cmp, put := e.idemOps(IdemRecord{Key: opt.Idempotency, Fingerprint: fp, Result: res, Expires: now.Add(e.cfg.IdempotencyWindow)}, idemMod)
			cmps, ops = append(cmps, cmp), append(ops, put...)
		}
		resp, err := e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return Result{}, unavailableErr(err)
		}
		if !resp.Succeeded {
			continue // a key changed between the read and the commit: decide again
		}
		res.Seq = uint64(resp.Header.Revision)
		for _, ch := range changes {
			if ch.Ephemeral && ch.owner != nil {
				e.ownKey(ch.owner.Conn(), ch.Key)
			}
			if !ch.Expires.IsZero() {
				e.wake()
			}
		}
		e.waitDelivered(res.Seq)
		return res, nil
	}
}

// begin checks a write's options and returns its idempotency fingerprint ("" without a key).
func (e *Etcd) begin(opt WriteOptions, in intent) (string, error) {
	if opt.TTL < 0 {
		return "", fmt.Errorf("%w: negative", ErrInvalidTTL)
	}
	if e.ctx.Err() != nil {
		return "", ErrClosed
	}
	if opt.Idempotency == "" {
		return "", nil
	}
	return in.fingerprint(opt), nil
}

// replay answers a retry from its idempotency record (ok), or refuses a different request with
// the same key; a record past its window, or none, is not an answer (ok false). The record was
// written by the commit it answers, so its ModRevision is the answer's seq.
func (e *Etcd) replay(rec *IdemRecord, mod int64, fp string, now time.Time) (res Result, ok bool, err error) {
	if rec == nil || !now.Before(rec.Expires) {
		return Result{}, false, nil
	}
	if rec.Fingerprint != fp {
		return Result{}, true, ErrIdempotencyMismatch
	}
	res = rec.Result
	res.Seq, res.Replayed = uint64(mod), true
	e.waitDelivered(res.Seq)
	return res, true, nil
}

// changeOps are the etcd operations of one change: its record (on this node's lease when
// ephemeral) and the index of its deadline.
func (e *Etcd) changeOps(ch *Change, now time.Time) []clientv3.Op {
	if ch.Deleted {
		return []clientv3.Op{clientv3.OpDelete(e.dataKey(ch.Key))}
	}
	r := etcdRecord{Value: ch.Value, Type: ch.Type, Lock: ch.lock, Ephemeral: ch.Ephemeral, At: now.UnixNano()}
	if !ch.Expires.IsZero() {
		r.Expires = ch.Expires.UnixNano()
	}
	var opts []clientv3.OpOption
	if ch.Ephemeral && ch.owner != nil {
		r.Owner = ch.owner.Conn()
		if ch.Presence != nil {
			r.Sub = ch.Presence.Sub
		}
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(e.lease.Load())))
	}
	b := encodeEtcd(r)
	ops := []clientv3.Op{clientv3.OpPut(e.dataKey(ch.Key), string(b), opts...)}
	if !ch.Expires.IsZero() {
		ops = append(ops, clientv3.OpPut(e.deadlineKey(ch.Expires, 'k', ch.Key), ""))
	}
	return ops
}

// deadlineKey is the index entry of a deadline: the time (sortable), the kind ('k' a key, 'i' an
// idempotency record) and the name.
func (e *Etcd) deadlineKey(at time.Time, kind byte, name string) string {
	return fmt.Sprintf("%sx/%016x%c%s", e.ec.Prefix, at.UnixNano(), kind, name)
}

func (e *Etcd) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Limits returns the key and value limits in force.
func (e *Etcd) Limits() Limits { return e.limits }

// MaxFileBytes is the largest stored file.
func (e *Etcd) MaxFileBytes() int64 { return e.cfg.MaxFileBytes }

// Seq returns etcd's current revision: every commit up to it is durable.
func (e *Etcd) Seq() uint64 {
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.ec.Prefix+"k", clientv3.WithCountOnly())
	if err != nil {
		return 0
	}
	return uint64(resp.Header.Revision)
}

// Len returns the number of keys.
func (e *Etcd) Len() int {
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.dataKey("/"), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0
	}
	return int(resp.Count)
}

// Get returns a copy of key's entry, or ErrNotFound: a linearizable read.
func (e *Etcd) Get(key string) (Entry, error) {
	if err := e.limits.CheckKey(key); err != nil {
		return Entry{}, err
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.dataKey(key))
	if err != nil {
		return Entry{}, unavailableErr(err)
	}
	if len(resp.Kvs) == 0 {
		return Entry{}, ErrNotFound
	}
	it, _, err := e.itemOfKV(resp.Kvs[0])
	if err != nil {
		return Entry{}, err
	}
	return it.entry(), nil
}

// OpenFile returns key's entry and, for a stored file, its bytes from the shared directory.
func (e *Etcd) OpenFile(key string) (Entry, io.ReadSeekCloser, error) {
	ent, err := e.Get(key)
	if err != nil || ent.Type == "" {
		return ent, nil, err
	}
	fi, err := ParseFileInfo(ent.Value)
	if err != nil {
		return ent, nil, err
	}
	f, _, err := e.blobs.store.Open(fi.SHA256)
	if err != nil {
		return ent, nil, fmt.Errorf("hub: the bytes of %s are missing: %w", key, err)
	}
	return ent, f, nil
}

// List returns a page of the entries under prefix, all as of one revision.
func (e *Etcd) List(prefix string, opt ListOptions) (Page, error) {
	start, limit, opt, err := listStart(e.limits, prefix, opt)
	if err != nil {
		return Page{}, err
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	end := clientv3.GetPrefixRangeEnd(e.dataKey(prefix))
	var rev int64
	page, err := listPage(prefix, start, limit, opt, func(from string, fn func(item) bool) error {
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(limit + 1))}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := e.cli.Get(ctx, e.dataKey(from), opts...)
			if err != nil {
				return unavailableErr(err)
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				it, _, err := e.itemOfKV(kv)
				if err != nil {
					return err
				}
				if !fn(it) {
					return nil
				}
				from = it.key + "\x00"
			}
			if !resp.More {
				return nil
			}
		}
	})
	page.Seq = uint64(rev)
	return page, err
}

// Snapshot fixes the state of path at etcd's current revision; its entries are read at that
// revision, a page (PageEntries) per request.
func (e *Etcd) Snapshot(path string) (uint64, Entries) {
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.ec.Prefix+"k", clientv3.WithCountOnly())
	if err != nil {
		return 0, errEntries{unavailableErr(err)}
	}
	p := &etcdEntries{e: e, rev: resp.Header.Revision, from: e.dataKey(path)}
	if IsPrefix(path) {
		p.end = clientv3.GetPrefixRangeEnd(p.from)
	}
	return uint64(p.rev), p
}

// etcdEntries pages through a subtree (or one key, when end is empty) at one revision.
type etcdEntries struct {
	e        *Etcd
	rev      int64
	from     string // the etcd key the next page starts at
	end      string // the end of the range; empty for one key
	finished bool
}

func (p *etcdEntries) Next(buf []Event) ([]Event, error) {
	if p.finished {
		return buf, nil
	}
	ctx, cancel := p.e.reqCtx()
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(p.rev)}
	if p.end != "" {
		opts = append(opts, clientv3.WithRange(p.end), clientv3.WithLimit(PageEntries))
	}
	resp, err := p.e.cli.Get(ctx, p.from, opts...)
	if err != nil {
		return buf, unavailableErr(err)
	}
	for _, kv := range resp.Kvs {
		it, _, err := p.e.itemOfKV(kv)
		if err != nil {
			return buf, err
		}
		buf = append(buf, snapshotEvent(it))
	}
	if p.end == "" || !resp.More || len(resp.Kvs) == 0 {
		p.finished = true
	} else {
		p.from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return buf, nil
}

// Since reads the changes of path after p up to upTo back from etcd, for a resume older than
// this node's history (a node started after the client's position). It watches the whole prefix
// from p's revision and writes a fence key of its own: once the fence's event arrives, every
// earlier change has been seen, as has every change up to upTo once a later one arrives (etcd
// sends them in revision order). ErrCompacted (a *CompactedError naming etcd's compaction
// revision) when etcd has compacted past p.
func (e *Etcd) Since(p Position, path string, upTo uint64) ([]Event, error) {
	ctx, cancel := e.reqCtx()
	defer cancel()
	w := clientv3.NewWatcher(e.cli)
	defer w.Close()
	wc := w.Watch(ctx, e.ec.Prefix, clientv3.WithPrefix(), clientv3.WithRev(int64(max(p.Seq, 1))), clientv3.WithPrevKV())
	fence := e.ec.Prefix + "f/" + e.node + "." + strconv.FormatUint(e.nsessions.Add(1), 10)
	put, err := e.cli.Put(ctx, fence, "", clientv3.WithLease(clientv3.LeaseID(e.lease.Load())))
	if err != nil {
		return nil, unavailableErr(err)
	}
	defer e.cli.Delete(context.WithoutCancel(ctx), fence)
	var out []Event
	var reasons map[uint64]string
	for resp := range wc {
		if err := resp.Err(); err != nil {
			if resp.CompactRevision != 0 {
				return nil, &CompactedError{From: uint64(resp.CompactRevision)}
			}
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, ErrCompacted
			}
			return nil, unavailableErr(err)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision >= put.Header.Revision || uint64(ev.Kv.ModRevision) > upTo {
				applyReasons(out, reasons)
				slices.SortStableFunc(out, func(a, b Event) int {
					if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
						return c
					}
					return strings.Compare(a.Key, b.Key)
				})
				return out, nil
			}
			if !strings.HasPrefix(string(ev.Kv.Key), e.ec.Prefix+"k") {
				continue
			}
			if e.isMarker(ev.Kv.Key) {
				reasons = markerReason(reasons, ev)
				continue
			}
			x := e.eventOf(ev)
			if x.Seq <= upTo && !p.Covers(x.Seq, x.Key) && Covers(path, x.Key) {
				out = append(out, x)
			}
		}
		applyReasons(out, reasons)
	}
	return nil, unavailableErr(ctx.Err())
}

// Durable returns at once: etcd answers only what it has committed.
func (e *Etcd) Durable(uint64) error { return nil }

// Set stores value under key if cond holds.
func (e *Etcd) Set(key string, value []byte, cond Cond, opt WriteOptions) (Result, error) {
	if err := e.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return e.write(opt, intent{op: "set", key: key, body: value, cond: cond}, cond.keys(key), putStep(key, value, "", cond, opt))
}

// SetFile stores body as a file in the shared directory and its description under key.
func (e *Etcd) SetFile(key, contentType string, body io.Reader, cond Cond, opt WriteOptions) (Result, error) {
	if err := e.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	ct, err := NormalizeContentType(contentType)
	if err != nil {
		return Result{}, err
	}
	if e.ec.BlobDir == "" {
		return Result{}, fmt.Errorf("%w: no shared directory for stored files (-etcd-blob-dir)", ErrUnavailable)
	}
	sum, size, err := e.blobs.put(body, e.cfg.MaxFileBytes)
	if err != nil {
		return Result{}, err
	}
	defer e.blobs.release(sum)
	value, _ := json.Marshal(FileInfo{Type: ct, Size: size, SHA256: sum})
	return e.write(opt, intent{op: "setfile", key: key, body: value, cond: cond}, cond.keys(key), putStep(key, value, ct, cond, opt))
}

// Incr adds by to the integer at key.
func (e *Etcd) Incr(key string, by int64, opt WriteOptions) (Result, error) {
	if err := e.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return e.write(opt, intent{op: "incr", key: key, n: by}, []string{key}, incrStep(key, by, opt))
}

// Delete removes key if cond holds.
func (e *Etcd) Delete(key string, cond Cond, opt WriteOptions) (Result, error) {
	if err := e.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return e.write(opt, intent{op: "delete", key: key, cond: cond}, cond.keys(key), deleteStep(key, cond))
}

// DeletePrefix removes every key under prefix in one etcd transaction (one seq): a range delete,
// committed only if no key under the prefix was written since the keys were counted (a compare
// on the range's ModRevision), so the answer's count is the keys the commit deleted, and an
// idempotency record is kept in the same transaction.
func (e *Etcd) DeletePrefix(prefix string, opt WriteOptions) (Result, error) {
	if err := e.limits.CheckPath(prefix); err != nil || !IsPrefix(prefix) {
		return Result{}, fmt.Errorf("%w: %q is not a prefix", ErrInvalidKey, prefix)
	}
	fp, err := e.begin(opt, intent{op: "deleteprefix", key: prefix})
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	for {
		_, rec, idemMod, _, err := e.read(ctx, nil, opt.Idempotency)
		if err != nil {
			return Result{}, err
		}
		now := e.clock.Now()
		if res, ok, err := e.replay(rec, idemMod, fp, now); ok {
			return res, err
		}
		count, err := e.cli.Get(ctx, e.dataKey(prefix), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return Result{}, unavailableErr(err)
		}
		rev := count.Header.Revision
		res := Result{Key: prefix, Deleted: int(count.Count)}
		if count.Count == 0 {
			res.Seq = uint64(rev)
			return res, nil
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(e.dataKey(prefix)), "<", rev+1).WithPrefix()}
		ops := []clientv3.Op{clientv3.OpDelete(e.dataKey(prefix), clientv3.WithPrefix())}
		if opt.Idempotency != "" {
			cmp, put := e.idemOps(IdemRecord{Key: opt.Idempotency, Fingerprint: fp, Result: res, Expires: now.Add(e.cfg.IdempotencyWindow)}, idemMod)
			cmps, ops = append(cmps, cmp), append(ops, put...)
		}
		resp, err := e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return Result{}, unavailableErr(err)
		}
		if !resp.Succeeded {
			continue // a key under the prefix was written meanwhile: count again
		}
		res.Deleted = int(resp.Responses[0].GetResponseDeleteRange().Deleted)
		res.Seq = uint64(resp.Header.Revision)
		e.waitDelivered(res.Seq)
		return res, nil
	}
}

// maxEtcdTxnKeys keeps a transaction within etcd's default limit of 128 operations.
const maxEtcdTxnKeys = 100

// Tx applies ops atomically if every check holds.
func (e *Etcd) Tx(checks []TxCheck, ops []TxOp, opt WriteOptions) (TxResult, error) {
	in, err := checkTx(e.limits, checks, ops)
	if err != nil {
		return TxResult{}, err
	}
	var keys []string
	for _, c := range checks {
		keys = append(keys, c.Key)
	}
	for _, op := range ops {
		keys = append(keys, op.Key)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if len(keys) > maxEtcdTxnKeys {
		return TxResult{}, fmt.Errorf("%w: a transaction in cluster mode names at most %d keys", ErrInvalidTx, maxEtcdTxnKeys)
	}
	res, err := e.write(opt, in, keys, txStep(checks, ops))
	if err != nil {
		return TxResult{}, err
	}
	return txResult(res)
}

// TryLock makes one attempt to acquire the lock on key. Its fence is the seq that creates it.
func (e *Etcd) TryLock(key string, opt LockOptions) (Lock, error) {
	opt, err := checkLock(e.limits, key, opt)
	if err != nil {
		return Lock{}, err
	}
	token, sum := newLockToken()
	var st LockState
	res, err := e.write(WriteOptions{}, intent{clock: true}, []string{key}, lockStep(key, opt, sum, &st))
	if err != nil {
		return Lock{}, err
	}
	e.wake()
	return Lock{Key: key, Token: token, Fence: res.Seq, Owner: st.Owner, Expires: st.Expires, Seq: res.Seq}, nil
}

// RenewLock extends a held lock, keeping its fence.
func (e *Etcd) RenewLock(key, token string, ttl time.Duration) (Lock, error) {
	ttl, err := checkRenew(e.limits, key, ttl)
	if err != nil {
		return Lock{}, err
	}
	var st LockState
	res, err := e.write(WriteOptions{}, intent{clock: true}, []string{key}, renewStep(key, token, ttl, &st))
	if err != nil {
		return Lock{}, err
	}
	return Lock{Key: key, Token: token, Fence: st.Fence, Owner: st.Owner, Expires: st.Expires, Revision: res.Revision, Seq: res.Seq}, nil
}

// Unlock releases a held lock.
func (e *Etcd) Unlock(key, token string) (Result, error) {
	if err := e.limits.CheckKey(key); err != nil {
		return Result{}, err
	}
	return e.write(WriteOptions{}, intent{}, []string{key}, unlockStep(key, token))
}

// NewSession returns a session of this node: its ephemeral keys are deleted once it has ended
// for longer than the grace period, or by etcd when this node's lease runs out. Its id in etcd
// is its connection id.
func (e *Etcd) NewSession() *Session {
	sess := NewStoreSession(func(s *Session, reason string) {
		id := s.Conn()
		e.sessionsMu.Lock()
		if s := e.sessions[id]; s != nil {
			s.ended, s.reason = true, reason
		}
		e.sessionsMu.Unlock()
		e.clock.AfterFunc(e.cfg.EphemeralGrace, func() { e.endSession(id) })
	})
	e.sessionsMu.Lock()
	e.sessions[sess.Conn()] = &etcdSession{keys: make(map[string]struct{})}
	e.sessionsMu.Unlock()
	return sess
}

// ownKey records that the session id wrote key. A write through a session that has ended (a
// request that raced its connection's end) starts the key's grace period at once, as in Local.
func (e *Etcd) ownKey(id, key string) {
	e.sessionsMu.Lock()
	s := e.sessions[id]
	if s != nil && !s.ended {
		s.keys[key] = struct{}{}
	}
	reason := ReasonClosed // the session is gone from the map: its grace period has passed
	if s != nil && s.reason != "" {
		reason = s.reason
	}
	e.sessionsMu.Unlock()
	if s == nil || s.ended {
		e.clock.AfterFunc(e.cfg.EphemeralGrace, func() { e.deleteOwned(id, key, reason) })
	}
}

// endSession deletes the keys the session still owns.
func (e *Etcd) endSession(id string) {
	e.sessionsMu.Lock()
	s := e.sessions[id]
	delete(e.sessions, id)
	e.sessionsMu.Unlock()
	if s == nil {
		return
	}
	for key := range s.keys {
		e.deleteOwned(id, key, s.reason)
	}
	e.runSessionDisconnects(id, s.disc, s.reason)
}

// markerKey is this node's reason marker (see Etcd): on the node's lease, in the watched range
// but never a key (keys start with "/").
func (e *Etcd) markerKey() string { return e.ec.Prefix + "k!" + e.node }

// isMarker reports whether an etcd key is a reason marker.
func (e *Etcd) isMarker(k []byte) bool { return strings.HasPrefix(string(k), e.ec.Prefix+"k!") }

// putMarker (re)creates this node's marker on its current lease, with no reason.
func (e *Etcd) putMarker(ctx context.Context) error {
	_, err := e.cli.Put(ctx, e.markerKey(), "", clientv3.WithLease(clientv3.LeaseID(e.lease.Load())))
	return err
}

// deleteOwned deletes key if it is still an ephemeral key of the session id; its delete event
// carries reason (the marker put in the same transaction).
func (e *Etcd) deleteOwned(id, key, reason string) {
	if e.ctx.Err() != nil {
		return
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.dataKey(key))
	if err == nil && len(resp.Kvs) > 0 {
		_, r, derr := e.itemOfKV(resp.Kvs[0])
		if derr == nil && r.Ephemeral && r.Owner == id {
			_, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.dataKey(key)), "=", resp.Kvs[0].ModRevision)).
				Then(clientv3.OpDelete(e.dataKey(key)),
					clientv3.OpPut(e.markerKey(), reason, clientv3.WithLease(clientv3.LeaseID(e.lease.Load())))).Commit()
		}
	}
	if err != nil {
		e.log.Warn("deleting an ephemeral key", "key", key, "err", err)
	}
}

// Check asks etcd for its current revision, which needs a leader: nil, or ErrUnavailable.
func (e *Etcd) Check() error {
	if e.ctx.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := e.reqCtx()
	defer cancel()
	if _, err := e.cli.Get(ctx, e.ec.Prefix+"k", clientv3.WithCountOnly()); err != nil {
		return unavailableErr(err)
	}
	return nil
}

// Stats returns the keys and seq.
func (e *Etcd) Stats() Stats { return Stats{Keys: e.Len(), Seq: e.Seq()} }

// WriteBackup writes a snapshot of the whole state at one revision, with the stored files' bytes.
// It reads the keys at that revision a page (PageEntries) at a time, twice (the snapshot, then the
// files it refers to), never all at once.
func (e *Etcd) WriteBackup(w io.Writer) (uint64, error) {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	from := e.dataKey("/")
	end := clientv3.GetPrefixRangeEnd(from)
	resp, err := e.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithCountOnly())
	if err != nil {
		return 0, unavailableErr(err)
	}
	rev := resp.Header.Revision
	f := frozen{seq: uint64(rev), n: int(resp.Count), pages: func(fn func(item) bool) error {
		for key := from; ; {
			resp, err := e.cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithLimit(PageEntries))
			if err != nil {
				return unavailableErr(err)
			}
			for _, kv := range resp.Kvs {
				it, _, err := e.itemOfKV(kv)
				if err != nil {
					return err
				}
				if !fn(it) {
					return nil
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return nil
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}}
	if err := f.write(w); err != nil {
		return f.seq, err
	}
	return f.seq, f.writeBlobs(w, e.blobs.store)
}

// Checkpoint does nothing: etcd keeps its own snapshots and compacts by its own settings.
func (e *Etcd) Checkpoint() error { return nil }

// Close stops the watch and the expirer and closes the connection. This node's lease is left to
// run out, so its ephemeral keys outlive a restart of the node by the grace period, as clients
// write them again through another node.
func (e *Etcd) Close() error {
	e.cancel()
	e.wg.Wait()
	return e.cli.Close()
}

// watch hands every change under <prefix>k and every broadcast to the feed, in revision order,
// from rev+1. When the watch breaks (no leader, a lost connection), subscriptions end so their
// clients resume, and it starts again where it was; when etcd has compacted past it, the history
// starts again too. A broadcast the break made it miss is lost: broadcasts are not resumed.
func (e *Etcd) watch(rev uint64) {
	defer e.wg.Done()
	next := int64(rev) + 1
	backoff := 200 * time.Millisecond // between attempts while etcd has no leader or is unreachable
	for e.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(e.ctx))
		// One watch over <prefix>b/ (broadcasts) to <prefix>k (changes), so broadcasts and
		// changes reach the feed in revision order; the bookkeeping keys between them are skipped.
		wc := e.cli.Watch(ctx, e.ec.Prefix+"b/", clientv3.WithRange(clientv3.GetPrefixRangeEnd(e.ec.Prefix+"k")),
			clientv3.WithRev(next), clientv3.WithPrevKV())
		for resp := range wc {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
					cur := e.Seq()
					e.log.Warn("etcd compacted past this node's watch; streams start again", "from", next, "now", cur)
					e.feed.Start(cur)
					e.advance(cur)
					next = int64(cur) + 1
				} else {
					e.log.Warn("etcd watch interrupted; streams end and resume", "err", err)
					e.feed.Interrupt(fmt.Errorf("%w: etcd: %w", ErrUnavailable, err))
				}
				break
			}
			events := make([]Event, 0, len(resp.Events))
			var reasons map[uint64]string
			var last uint64 // the response's last revision, a marker's included
			for _, ev := range resp.Events {
				last = uint64(ev.Kv.ModRevision)
				switch key := string(ev.Kv.Key); {
				case e.isMarker(ev.Kv.Key):
					reasons = markerReason(reasons, ev)
					if ev.Type == clientv3.EventTypeDelete {
						e.nodeLost(ev.Kv.Key)
					}
				case strings.HasPrefix(key, e.ec.Prefix+"k"):
					events = append(events, e.eventOf(ev))
				case strings.HasPrefix(key, e.ec.Prefix+"b/") && ev.Type == clientv3.EventTypePut:
					if b, ok := e.broadcastOf(ev); ok {
						events = append(events, b)
					}
				}
			}
			applyReasons(events, reasons)
			// Events of one revision go out in key order, as Local's commits do.
			slices.SortStableFunc(events, func(a, b Event) int {
				if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
					return c
				}
				return strings.Compare(a.Key, b.Key)
			})
			backoff = 200 * time.Millisecond
			if len(events) > 0 {
				e.feed.Deliver(events)
			}
			if last > 0 {
				e.feed.Advance(last) // the response may end with revisions of bookkeeping only
				next = int64(last) + 1
				e.advance(last)
			}
		}
		cancel()
		if e.ctx.Err() == nil {
			select {
			case <-e.ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// eventOf converts a watch event.
func (e *Etcd) eventOf(ev *clientv3.Event) Event {
	key := strings.TrimPrefix(string(ev.Kv.Key), e.ec.Prefix+"k")
	var prev *Presence // the previous owner, when the key was ephemeral
	if ev.PrevKv != nil {
		if it, _, err := e.itemOfKV(ev.PrevKv); err == nil && it.ephemeral() {
			prev = it.presence()
			if prev == nil {
				prev = &Presence{} // an ephemeral key without a recorded owner
			}
		}
	}
	if ev.Type == clientv3.EventTypeDelete {
		rev := int64(0)
		if ev.PrevKv != nil {
			rev = ev.PrevKv.Version // the deleted revision (Version - 1) + 1
		}
		x := Event{Key: key, Revision: rev, Seq: uint64(ev.Kv.ModRevision), Deleted: true}
		if prev != nil && *prev != (Presence{}) {
			x.Presence = prev // who left
		}
		return x
	}
	it, r, err := e.itemOfKV(ev.Kv)
	if err != nil {
		e.log.Error("undecodable record in etcd", "key", key, "err", err)
	}
	x := Event{Key: key, Value: it.value(), Revision: ev.Kv.Version - 1, Seq: uint64(ev.Kv.ModRevision), Type: it.typ(), Presence: it.presence(), Time: r.At}
	if prev != nil && prev.Conn != it.presence().conn() {
		x.Reason = ReasonReplaced
	}
	return x
}

// markerReason records the reason a marker's event gives the deletes of its revision: the
// reason it was put with, or ReasonNodeLost when etcd deleted it with its node's lease.
func markerReason(reasons map[uint64]string, ev *clientv3.Event) map[uint64]string {
	r := string(ev.Kv.Value)
	if ev.Type == clientv3.EventTypeDelete {
		r = ReasonNodeLost
	}
	if r == "" {
		return reasons
	}
	if reasons == nil {
		reasons = make(map[uint64]string)
	}
	reasons[uint64(ev.Kv.ModRevision)] = r
	return reasons
}

// applyReasons gives the events of a revision with a marker event its reason: the deletes of a
// session's ephemeral keys, of a lost node's, and the writes of on-disconnect registrations.
func applyReasons(events []Event, reasons map[uint64]string) {
	if len(reasons) == 0 {
		return
	}
	for i := range events {
		if r, ok := reasons[events[i].Seq]; ok {
			events[i].Reason = r
		}
	}
}

// expirer deletes keys and idempotency records whose deadline has passed: it wakes at the next
// deadline in the index, when a write adds one, and at least every second (other nodes add
// deadlines too).
func (e *Etcd) expirer() {
	defer e.wg.Done()
	for e.ctx.Err() == nil {
		next := e.expireDue()
		wait := time.Second
		if !next.IsZero() {
			wait = min(wait, next.Sub(e.clock.Now()))
		}
		if wait <= 0 {
			continue // the clock passed the next deadline meanwhile
		}
		timer := make(chan struct{})
		stop := e.clock.AfterFunc(wait, func() { close(timer) })
		// The timer counts from the clock's reading when it is armed: if the clock passed the
		// deadline between the reading above and that one (an injected clock may jump), the timer
		// would fire late, or, on a fake clock, never.
		if !next.IsZero() && !e.clock.Now().Before(next) {
			stop()
			continue
		}
		select {
		case <-e.ctx.Done():
		case <-timer:
		case <-e.kick:
		}
		stop()
	}
}

// expireDue processes every due deadline and returns the next one (zero: none).
func (e *Etcd) expireDue() time.Time {
	ctx, cancel := e.reqCtx()
	defer cancel()
	idx := e.ec.Prefix + "x/"
	for {
		resp, err := e.cli.Get(ctx, idx, clientv3.WithPrefix(), clientv3.WithLimit(100))
		if err != nil {
			if e.ctx.Err() == nil {
				e.log.Warn("reading deadlines from etcd", "err", err)
			}
			return time.Time{}
		}
		now := e.clock.Now().UnixNano()
		for _, kv := range resp.Kvs {
			name := strings.TrimPrefix(string(kv.Key), idx)
			if len(name) < 17 {
				e.cli.Delete(ctx, string(kv.Key))
				continue
			}
			at, err := strconv.ParseInt(name[:16], 16, 64)
			if err != nil {
				e.cli.Delete(ctx, string(kv.Key))
				continue
			}
			if at > now {
				return time.Unix(0, at)
			}
			target := e.dataKey(name[17:])
			if name[16] == 'i' {
				target = e.idemKey(name[17:])
			}
			// The index entry was last written with what it times: a write that gives a key (or
			// a record) the same deadline again rewrites the entry rather than creating it.
			_, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(target), "=", kv.ModRevision)).
				Then(clientv3.OpDelete(target), clientv3.OpDelete(string(kv.Key))).
				Else(clientv3.OpDelete(string(kv.Key))).Commit()
			if err != nil {
				e.log.Warn("expiring", "key", name[17:], "err", err)
				return time.Time{}
			}
		}
		if !resp.More {
			return time.Time{}
		}
	}
}

// encodeEtcd encodes a record kept in etcd. Values inside it stay byte for byte as written:
// json.Marshal would rewrite <, >, & and U+2028/U+2029 in them as \u escapes.
func encodeEtcd(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("hub: encoding an etcd record: %v", err)) // records hold only encodable fields
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// idemOps are what an idempotent write's commit adds: the compare that the record is still as
// read (ModRevision mod, 0 when absent), and the puts of the record and its deadline. The
// answer's seq is the commit's, learnt only once it commits: a retry takes it from the record's
// ModRevision, which that commit writes.
func (e *Etcd) idemOps(r IdemRecord, mod int64) (clientv3.Cmp, []clientv3.Op) {
	return clientv3.Compare(clientv3.ModRevision(e.idemKey(r.Key)), "=", mod),
		[]clientv3.Op{clientv3.OpPut(e.idemKey(r.Key), string(encodeEtcd(r))), clientv3.OpPut(e.deadlineKey(r.Expires, 'i', r.Key), "")}
}
