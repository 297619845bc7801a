// Package hub owns all of Statehub's state: the tree of keys, their revisions, the global seq,
// TTL deadlines, idempotency records, the retained history of changes and the subscriptions.
// Transports (package web) call its methods and get copies back; they never see its maps.
//
// # The seam
//
// A Store decides and orders: it checks and applies every write, gives each commit its seq, reads
// keys and subtrees, and owns TTL expiry, sessions and stored files. Local, with the WAL in package
// wal, is the single binary's; Etcd (etcd.go) is a cluster's, the state in etcd v3 shared by any
// number of nodes. It hands every commit, once durable, to a Feed, in seq order. The
// Hub is that feed: it keeps the history that resumes streams, the subscriptions and their
// bounded queues, snapshot-then-live, and lock waiters, and serves the Store's key API alongside
// (embedded). It never learns which store it has.
//
// # Invariants
//
//   - Seq is one global, strictly increasing commit number. Every commit (a set, an increment, a
//     delete, a subtree delete, an expiry) takes a seq larger than every earlier one (Local's are
//     consecutive; Etcd's are etcd's revisions, which skip); all of a commit's changes share it and
//     are ordered by key. The seq never goes backwards, across restarts included (the journal
//     restores it); only restoring an older backup takes it back.
//   - A key's revision is 0 when it is created and +1 on every change; a deleted key's delete event
//     carries its last revision + 1, and a re-created key starts again at 0.
//   - Values are compact JSON with number literals exactly as written, and valid UTF-8 (so they can
//     go into WebSocket text frames): CompactJSON refuses other bytes, and values loaded from the
//     log or a snapshot are repaired (repairUTF8).
//   - A write is acknowledged only after its commit is durable in the journal. After a journal
//     failure every later write is refused (ErrUnavailable) until restart; a failed fsync is never
//     retried and reported as a success.
//   - Events reach subscribers in (seq, key) order, only after their commit is durable: the store
//     delivers a commit to the hub only then. A subscription's Initial events (a replay) or
//     entries (a snapshot or reset) plus its queue hold every change of its path after its start
//     exactly once: the start and the registration are
//     fixed under the hub's lock, which every delivery takes. A replay (Since) or a plain
//     subscription starts at the last delivered seq; a snapshot at the store's applied seq, whose
//     later delivery the subscription skips, and is handed out once that seq is durable. A replay
//     older than the history comes from the store (Store.Since) up to the last delivered seq, or,
//     when the store no longer holds it either (ErrCompacted: always for Local), a reset. A replay
//     from a position the store has committed but not yet delivered waits for the delivery.
//   - Nothing the hub answers shows a commit before it is durable. Reads (Get, OpenFile, List),
//     snapshot and reset subscriptions, backups, and writes that fail or change nothing (whose
//     errors show the current revision) read the applied state under Local's mu, then wait outside
//     it for the seq they show (waitDurable); if that commit's fsync fails they return
//     ErrUnavailable. With the disk journal that wait makes the newest commit durable itself, as
//     its writer would, so a pipelined write whose Pending.Wait has not run holds no read up.
//     Seq and Stats report the durable seq.
//   - An idempotent retry is answered only once the first request's commit is durable. Only a
//     write that succeeds is remembered (its answer, for IdempotencyWindow): a failed one changed
//     nothing and is evaluated again when retried.
//   - A lock's token is 128 random bits, returned once; the store keeps only its SHA-256 (in the
//     journal or etcd, so renew and release work after a restart), never in a value or an event.
//     A lock expires on the clock's monotonic reading while the process runs; after a restart its
//     persisted wall-clock deadline counts.
//   - An ephemeral key's flag and its Presence (subject, connection id) are persisted, its owner
//     (a Session) is not: after a restart no session owns anything, and every ephemeral key is
//     deleted one EphemeralGrace after the start, with ReasonNodeLost, unless a client writes it
//     again (session.go). A departure's reason is persisted with its delete (Change.Reason), so
//     the history, a resume and a replay of the log after a restart show the same reason.
//   - A session's on-disconnect writes (ondisconnect.go) are made once it has ended for the grace
//     period, in the commit of its ephemeral deletes, with its reason; one is pending per key (the
//     latest registration's). A hub from Open journals them in a log of their own
//     (<data>/ondisconnect, discjournal.go) and answers a registration once its record is durable;
//     those found at start-up are made one grace period later with ReasonNodeLost (a crash right
//     after one was made may make it once more). A memory-only Local keeps them in memory; Etcd
//     keeps them in etcd, and a compare on the registration makes each exactly once on whichever
//     node makes it.
//   - Stored files' bytes go through a BlobStore, named by their sha256: a hub from Open keeps them
//     in <data>/blobs on its StoreConfig.FS (so waltest's crash tests cover them), a memory-only
//     hub in memory (it writes nothing to disk). A blob is durable, whole, under its name before
//     the commit that refers to it is journaled, and removed only once no durable commit does.
//   - Every subscription's copy of a delivered change shares one set of encodings, built once per
//     transport on first use and never changed after (Event.AppendEncoded); other events (snapshot
//     entries, replays) are encoded for their subscriber alone. Encodings are not counted against
//     QueueBytes.
//   - A writer never waits for a subscriber: delivery appends to the subscriber's queue, bounded in
//     events and in bytes of keys and values (one event always fits an empty queue), so its memory
//     grows with its backlog and never past max(QueueBytes, one event); a full queue closes that
//     subscription with ErrSlowConsumer. Nothing is dropped silently.
//   - A broadcast (Hub.Broadcast, broadcast.go) is a message, not a change: it takes no seq, is
//     never journaled, fsynced, kept in the history or replayed, and reaches only the
//     subscriptions open when it is delivered (of its path and the prefixes above it), through
//     their bounded queues, after every change the store delivered before it. Local hands it to
//     the feed at once (under pubMu, so in order with publish); Etcd puts it on one key per node
//     under <prefix>b/, and every node's one watch delivers it in revision order with the
//     changes. The revision it takes in etcd is passed as the feed's position but is never an
//     event's position, so no client resumes from it and a resume never waits for it.
//     A subscription of broadcasts alone (SubscribeOptions.BroadcastsOnly) is kept apart from the
//     others (Hub.bsubs): a change never visits it, and only broadcasts are offered to it.
//   - The history holds the newest changes within two bounds, a count and a byte size, and no
//     pointers (history.go): the collector never scans it. Resuming from a position it no longer
//     covers gives a reset, never a gap. A key's history read (keyhistory.go) takes the history,
//     then the store's own retained changes below it (Store.Since), and answers a page below both
//     with a *HistoryGoneError, never a page with a hole. It first waits (at most resumeWait)
//     until the key's current change, once durable, has been delivered, so it shows what a Get
//     would; since only durable commits are delivered, it shows nothing that is not durable.
//   - Every commit has a time, the store's clock when it commits (Local's is in its log record,
//     version 3; Etcd's, the writing node's clock, in the key's record): its events and its
//     history entries carry it. Records of older versions load without one.
//   - There is one expiry structure, a heap of deadlines armed on one timer of the injected Clock;
//     no goroutine per key. A rewrite leaves the old deadline stale in it; stale deadlines are
//     dropped whenever the heap has doubled since the last such compaction (expiry.go).
//   - The tree holds items (item.go), never changed in place: a write sets a new item, so a copy
//     of the tree (a snapshot, a stream's ?snapshot) stays as it was. An item's rare fields (TTL,
//     file type, lock, session) sit behind a pointer, nil for most keys, that such copies share.
//     An item's key and value are one allocation of their own, never written once the item is
//     made: the values that reads and snapshots hand out share it, and their callers must not
//     change them.
//   - A snapshot's or reset's entries are never gathered whole: Store.Snapshot fixes the state
//     (Local: an O(1) copy of the tree; Etcd: a revision) and its Entries read it a page at a time
//     (at most PageEntries; Local's also within PageBytes past its first entry), Local's from the
//     copy, Etcd's from etcd at that revision. A subscriber holds one page; the first is read once
//     the snapshot's seq is durable. Lists are pages too (ListOptions), and backups stream from
//     a fixed state, Local's from a copy of the tree, Etcd's page by page at one revision.
//
// # Concurrency
//
// In Local, one sync.RWMutex (mu) guards the state. A write takes it for a short
// read-check-change step that also fixes the order of journal appends (Journal.Append only
// buffers) and queues its events (pending, under pendMu, taken inside mu); it waits for
// durability (the group-commit fsync) after releasing it, then publishes. The first waiter of a
// group to return advances durable (an atomic, stored under mu) to the log's synced index and
// publishes the whole group; the others find their seq durable with an atomic load and take no
// lock of Local's. publish, serialized by pubMu, hands the pending events up to its seq to the
// feed. A pipelined write (WriteOptions.Pending) returns after the locked step and leaves the wait
// and the publish to its caller's Pending.Wait, which must run before its answer is shown. In Hub,
// one sync.Mutex (Hub.mu) guards the history, the subscription sets and the lock waiters; Deliver
// takes it. Each Subscription's own mu guards its queue: delivery takes it under Hub.mu, and the
// subscription's one reader (an SSE stream's goroutine, a WebSocket's writer) takes it alone to
// drain the queue. Lock order: pubMu, then Hub.mu, then a Subscription's mu or Local's mu, then
// pendMu (Subscribe asks the store for a snapshot under Hub.mu); Local never calls the feed while
// holding its mu or pendMu.
// Helpers that need a lock held end in Locked.
//
// The disk journal (store) holds no *Local and never takes Local's mu: Open decodes the newest
// snapshot into a frozen value that Local applies itself (load), and the snapshotter asks for
// frozen views and sweeps through functions Local hands it (its freeze and sweepAllBlobs). Its
// Append runs under Local's mu, as Journal says; its own mu only serializes snapshots. Stored
// files' bookkeeping (blobStore.mu, taken before Local's mu) is Local's; the BlobStore under it
// takes no lock of the hub's.
package hub
