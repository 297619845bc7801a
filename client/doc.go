// Package client is the Go client of a Statehub server: every operation of its HTTP API
// (PROTOCOL.md), watches that resume by themselves, locks that renew while work runs, and
// ephemeral keys and on-disconnect writes over the WebSocket.
//
//	c, err := client.New("http://127.0.0.1:8000", client.WithToken(client.StaticToken(token)))
//	n, err := c.Incr(ctx, "/ci/app/main/build", 1)
//	err = c.WithLock(ctx, "/deploy/prod", client.LockOptions{TTL: 10 * time.Minute, Wait: 5 * time.Minute},
//		func(ctx context.Context, fence uint64) error { return deploy(ctx, fence) })
//	for ev, err := range c.Watch(ctx, "/room/", client.WatchOptions{Snapshot: true}) { ... }
//
// # Transport
//
// Everything goes over HTTP with net/http (watches as Server-Sent Events), one request per call
// (History and List iterate, one request per page), except ephemeral keys and on-disconnect
// writes, which exist over the WebSocket only (Session). The token comes from a
// function (WithToken) asked for every request and every reconnection, so it can be refreshed.
//
// # Guarantees
//
//   - A Client is safe for concurrent use and keeps no state between calls. Calls do not retry,
//     except where their documentation says so: Update retries its compare-and-set on a
//     conflict, Lock asks again while its Wait lasts, Watch and Session reconnect.
//   - Watch yields every change of its path exactly once and in seq order, across disconnections
//     and server restarts: it resumes after the last event it yielded. When the server cannot
//     resume from there, it yields EventReset and the current state instead: never a gap. With
//     WatchOptions.Throttle it yields, per key, the latest change of each interval instead of
//     every one, still in position order and resuming as exactly; each key's last change arrives.
//   - Broadcast messages are not changes: a watch yields them (WatchOptions.Broadcasts) only
//     while it is connected, never replayed, and they never move its position.
//   - WithLock renews the lock every third of its TTL while its function runs and cancels the
//     function's context when it loses the lock (ErrLockLost).
//   - Errors of the server are *Error values carrying its status, machine code and message, and
//     match this package's sentinels with errors.Is: errors.Is(err, ErrConflict) for code
//     revision_conflict, ErrNotFound for not_found, and so on (errors.go).
//
// # Revisions
//
// IfRevision, Check and Error.Revision all speak of a key's current revision, -1 meaning absent:
// the client turns it into the header each request needs (PUT's X-Revision is the revision the
// write makes, DELETE's the current one).
package client
