package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EventType says what an Event is.
type EventType string

// The event types, as the WebSocket names them (PROTOCOL.md).
const (
	EventSet    EventType = "set"    // a key was set (or, with Snapshot, is in the current state)
	EventDelete EventType = "delete" // a key was deleted (by a write, a subtree delete, its TTL, a lock's release or expiry)
	// EventReset: the position to resume from is older than the server's history (or was inside
	// a snapshot). Discard what you built from the earlier events: the current entries follow
	// (Snapshot events), then EventReady.
	EventReset EventType = "reset"
	// EventReady: the replay or snapshot is done; live changes follow. Sent at the start of every
	// connection, reconnections included.
	EventReady EventType = "ready"
	// EventBroadcast: a message sent with Broadcast to the watched path or a key below it (Path
	// says which, Value is the message). It is no change: it has no Seq or Position and is never
	// replayed. Yielded only with WatchOptions.Broadcasts.
	EventBroadcast EventType = "broadcast"
)

// Event is one event of a watched path.
type Event struct {
	Type     EventType
	Key      string          // set, delete
	Value    json.RawMessage // set: the new value (a stored file's description {"type","size","sha256"})
	Revision int64           // set: the key's revision; delete: its last revision + 1
	Seq      uint64          // the commit's seq; reset, ready: the position the stream goes on from
	Snapshot bool            // set: an entry of the current state (after a reset or WatchOptions.Snapshot), not a change
	// Position is the event's place in the stream (PROTOCOL.md, "Positions"); "" for a reset.
	// Pass it as WatchOptions.Since to resume after this event in another Watch.
	Position string
	// Presence and Reason: on the delete of an ephemeral key, who left and why ("closed",
	// "timeout", "node_lost"; "" for a client's own delete), and on an on-disconnect write's
	// delete the reason (PROTOCOL.md, "Ephemeral keys and presence"). A watch reads SSE, whose
	// set events carry neither.
	Presence *Presence
	Reason   string
	// Path is the path a broadcast was sent to (EventBroadcast; Value holds its message).
	Path string
}

// MarshalJSON writes the event as the WebSocket sends it (without "sub"), plus its position as
// "id": {"type":"set","key":..,"value":..,"revision":..,"seq":..,"id":..}; a broadcast as
// {"type":"broadcast","path":..,"msg":..}.
func (e Event) MarshalJSON() ([]byte, error) {
	b := []byte(`{"type":`)
	b = strconv.AppendQuote(b, string(e.Type))
	if e.Type == EventBroadcast {
		p, err := json.Marshal(e.Path)
		if err != nil {
			return nil, err
		}
		msg := e.Value
		if msg == nil {
			msg = json.RawMessage("null")
		}
		return append(append(append(append(b, `,"path":`...), p...), `,"msg":`...), append(msg, '}')...), nil
	}
	switch e.Type {
	case EventSet, EventDelete:
		k, err := json.Marshal(e.Key)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"key":`...), k...)
		if e.Type == EventSet {
			v := e.Value
			if v == nil {
				v = json.RawMessage("null")
			}
			b = append(append(b, `,"value":`...), v...)
		}
		b = strconv.AppendInt(append(b, `,"revision":`...), e.Revision, 10)
		if e.Presence != nil {
			p, err := json.Marshal(e.Presence)
			if err != nil {
				return nil, err
			}
			b = append(append(b, `,"presence":`...), p...)
		}
		if e.Reason != "" {
			b = strconv.AppendQuote(append(b, `,"reason":`...), e.Reason)
		}
	}
	b = strconv.AppendUint(append(b, `,"seq":`...), e.Seq, 10)
	if e.Snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	if e.Position != "" {
		p, err := json.Marshal(e.Position)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"id":`...), p...)
	}
	return append(b, '}'), nil
}

// WatchOptions say where a watch starts.
type WatchOptions struct {
	// Since resumes after this position (an Event's Position, kept from an earlier Watch): every
	// change after it is replayed first, or, when the server no longer holds them, a reset and
	// the current state. "" starts at the current seq.
	Since string
	// Snapshot begins with the current entries of the path (Snapshot events), when Since is "".
	Snapshot bool
	// Throttle, when not 0, asks the server for at most one event per key per Throttle (from
	// 10 ms to 1 min): the key's latest change, with its own position, so a busy key yields its
	// newest value a few times a second instead of every change, and its last change always
	// arrives. Positions never go back, so resuming (Since, and the watch's own reconnections)
	// stays exact. Snapshot entries, reset and ready are not throttled.
	Throttle time.Duration
	// Broadcasts makes the watch yield the messages sent with Broadcast to the path or a key
	// below it, as EventBroadcast events between the changes, in the order the server delivered
	// them. They are never replayed: one sent while the watch reconnects is not seen.
	Broadcasts bool
	// BroadcastsOnly makes the watch one of the path's broadcasts alone: the server sends it
	// ready, then only broadcasts, never a change, so a busy path costs it nothing (cursors,
	// typing indicators). Since, Snapshot and Throttle are ignored.
	BroadcastsOnly bool
}

// watchIdle is how long a stream may be silent (the server sends a keep-alive every 15 s) before
// the connection is taken for dead and replaced.
const watchIdle = 60 * time.Second

// Reconnection delays: a stream that had started (it sent ready) is reopened at once; failed
// attempts then wait from minBackoff, doubling up to maxBackoff, with jitter.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// backoff is the delay before the n-th consecutive failed attempt's retry (n >= 1): up to
// minBackoff·2^(n-1), capped at maxBackoff, at least half of that.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 10 {
		d = min(maxBackoff, minBackoff<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// closedError is a stream the server ended with event: close (PROTOCOL.md, "Disconnect reasons").
type closedError struct{ reason string }

func (e *closedError) Error() string { return "client: the server closed the stream: " + e.reason }

// protocolError is a stream the client cannot read; reconnecting would not help.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "client: " + e.msg }

var errIdle = errors.New("client: the stream was silent for longer than the server's keep-alives")

// Watch returns the events of path (a key, or a subtree ending in "/") as the server commits
// them, in seq order, until ctx ends or the loop stops. It reconnects by itself after any
// disconnection (the network, a server restart, the server ending the stream) and resumes after
// the last event it yielded, so every change is yielded exactly once; when the server cannot
// resume from there (its history no longer reaches back, as after a restart that lost it), the
// watch yields EventReset, the current state and EventReady instead.
//
// Watch yields an error only when it ends: ctx's cause once ctx is done, or an answer that
// retrying would not change (a refused token, a path the token may not read, a malformed Since).
// Reconnections are logged (WithLogger). Each connection starts with EventReady.
func (c *Client) Watch(ctx context.Context, path string, opts WatchOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if !strings.HasPrefix(path, "/") {
			yield(Event{}, fmt.Errorf("client: a watched path must start with /, not %q", path))
			return
		}
		if opts.Throttle != 0 && (opts.Throttle < 10*time.Millisecond || opts.Throttle > time.Minute) {
			yield(Event{}, fmt.Errorf("client: a watch's Throttle is from 10ms to 1m, not %v", opts.Throttle))
			return
		}
		w := &watcher{c: c, path: path, pos: opts.Since, snapshot: opts.Snapshot, throttle: opts.Throttle, broadcasts: opts.Broadcasts}
		if opts.BroadcastsOnly {
			w = &watcher{c: c, path: path, broadcasts: true, only: true}
		}
		failures := 0
		for {
			stopped, started, err := w.stream(ctx, yield)
			if stopped {
				return
			}
			if ctx.Err() != nil {
				yield(Event{}, context.Cause(ctx))
				return
			}
			var pe *protocolError
			if !transient(err) || errors.As(err, &pe) {
				yield(Event{}, err)
				return
			}
			if started {
				failures = 0
			}
			var delay time.Duration
			if failures > 0 {
				delay = backoff(failures)
			}
			failures++
			c.log.Info("statehub: watch reconnecting", "path", path, "position", w.pos, "after", err, "in", delay)
			if err := sleep(ctx, delay); err != nil {
				yield(Event{}, err)
				return
			}
		}
	}
}

// watcher is one Watch's state across its connections.
type watcher struct {
	c          *Client
	path       string
	pos        string // the last position yielded; "" before any
	snapshot   bool
	throttle   time.Duration
	broadcasts bool // yield EventBroadcast
	only       bool // of broadcasts alone (WatchOptions.BroadcastsOnly)
}

// stream runs one connection: it yields its events, keeping the position, until the stream ends
// (err), the consumer stops (stopped) or ctx ends. started says the server sent ready.
func (w *watcher) stream(ctx context.Context, yield func(Event, error) bool) (stopped, started bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := request{method: http.MethodGet, path: w.path, accept: "text/event-stream", header: http.Header{"Cache-Control": {"no-cache"}}}
	switch {
	case w.only: // never resumed: broadcasts are not replayed
		r.query = query{}.flag("broadcasts")
	case w.pos != "":
		r.header.Set("Last-Event-ID", w.pos)
	case w.snapshot:
		r.query = query{}.flag("snapshot")
	}
	if w.throttle != 0 {
		r.query = r.query.add("throttle", w.throttle.String())
	}
	res, err := w.c.do(sctx, r)
	if err != nil {
		return false, false, err
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, false, &protocolError{fmt.Sprintf("watching %s: the answer is %s, not an event stream", w.path, ct)}
	}
	idle := time.AfterFunc(watchIdle, func() { cancel(errIdle) })
	defer idle.Stop()
	sr := newSSEReader(res.Body, func() { idle.Reset(watchIdle) })
	for {
		se, err := sr.next()
		if err != nil {
			if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil {
				err = cause
			}
			return false, started, err
		}
		var ev Event
		switch se.event {
		case "", "message", "delete":
			ev, err = changeEvent(se)
		case "reset", "ready":
			ev.Type = EventType(se.event)
			var d struct {
				Seq *uint64 `json:"seq"`
			}
			if json.Unmarshal(se.data, &d) != nil || d.Seq == nil {
				err = &protocolError{fmt.Sprintf("a %s event without a seq: %q", se.event, se.data)}
			} else {
				ev.Seq, ev.Position = *d.Seq, se.id
			}
			started = started || ev.Type == EventReady
		case "broadcast":
			if !w.broadcasts {
				continue
			}
			var d struct {
				Path string          `json:"path"`
				Msg  json.RawMessage `json:"msg"`
			}
			if json.Unmarshal(se.data, &d) != nil || d.Path == "" || d.Msg == nil {
				err = &protocolError{fmt.Sprintf("a broadcast event without a path and a message: %q", se.data)}
			} else {
				ev = Event{Type: EventBroadcast, Path: d.Path, Value: d.Msg}
			}
		case "close":
			var d struct {
				Reason string `json:"reason"`
			}
			json.Unmarshal(se.data, &d)
			return false, started, &closedError{d.Reason}
		default:
			continue // an event type of a later server
		}
		if err != nil {
			return false, started, err
		}
		if se.id != "" { // a broadcast has none
			w.pos = se.id
		}
		if !yield(ev, nil) {
			return true, started, nil
		}
	}
}

// changeEvent reads a change or snapshot entry: its id is key:revision:seq[:s].
func changeEvent(se sseEvent) (Event, error) {
	bad := func() (Event, error) {
		return Event{}, &protocolError{fmt.Sprintf("an event id %q that is not key:revision:seq", se.id)}
	}
	parts := strings.Split(se.id, ":")
	if len(parts) != 3 && (len(parts) != 4 || parts[3] != "s") {
		return bad()
	}
	rev, err1 := strconv.ParseInt(parts[1], 10, 64)
	seq, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return bad()
	}
	ev := Event{Type: EventSet, Key: parts[0], Revision: rev, Seq: seq, Snapshot: len(parts) == 4, Position: se.id}
	if se.event == "delete" {
		ev.Type = EventDelete
		var d struct {
			Presence *Presence `json:"presence"`
			Reason   string    `json:"reason"`
		}
		if json.Unmarshal([]byte(se.data), &d) == nil {
			ev.Presence, ev.Reason = d.Presence, d.Reason
		}
	} else {
		ev.Value = json.RawMessage(se.data)
	}
	return ev, nil
}
