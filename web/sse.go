package web

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// stream serves a path as Server-Sent Events (PROTOCOL.md): an optional reset, the replay or
// snapshot, a ready event with the starting position, then every change as it commits. With
// ?broadcasts: ready, then the path's broadcasts alone.
//
// On HTTP/1.x the body is sent unframed and ends when the connection closes (net/http's
// "Transfer-Encoding: identity": no chunks, "Connection: close"), so once the headers are out the
// stream takes the connection over from net/http (Hijack) and the handler returns: a live stream
// is an sseStream, with no goroutine and no buffer while idle. On HTTP/2 the handler stays until
// the stream ends or the client goes away, and the stream writes through it.
func (s *Server) stream(c echo.Context, path string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	opt, err := subscribeOptions(c.Request().Header.Get("Last-Event-ID"), q.Get("since"), boolOption(q, "snapshot"), boolOption(q, "broadcasts"))
	if err != nil {
		return err
	}
	every, err := parseThrottle(q.Get("throttle"))
	if err != nil {
		return err
	}
	st := &sseStream{s: s, running: true, woken: true, done: make(chan struct{})}
	opt.Notify = st.wake
	st.sub, err = s.opSubscribe(p, path, opt)
	if err != nil {
		return err
	}

	r, w := c.Request(), c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead { // the headers a GET would have, and no stream
		st.sub.Close()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if r.ProtoMajor == 1 {
		h.Set("Transfer-Encoding", "identity")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w.Writer)
	taken := false
	if r.ProtoMajor == 1 {
		if conn, _, err := rc.Hijack(); err == nil { // the headers are flushed first
			taken = true
			st.conn = conn
			st.unwatch = watchClose(conn, st.clientGone)
			st.out = sseWriter{w: conn, dl: writeDeadline{set: conn.SetWriteDeadline, timeout: s.cfg.WriteTimeout}}
			if l, ok := c.Get(leaseKey).(*connLease); ok {
				l.keep()
				st.lease = l
			}
			s.streams.Add(1)
		}
	}
	if !taken {
		st.out = sseWriter{w: w, flush: rc.Flush, dl: writeDeadline{set: rc.SetWriteDeadline, timeout: s.cfg.WriteTimeout}}
	}

	// The stream ends when its token expires (tokenexpiry.go): armed before ready is sent, so a
	// client that has seen ready knows the timer runs.
	st.stopExpiry = s.tokenTimer(p, st.expire)
	st.th = newThrottle(s.cfg.Clock, every) // nil unless ?throttle (throttle.go)
	if st.th != nil {
		st.th.wake = st.wake
	}
	if !st.start() {
		st.finish()
		return nil
	}
	st.mu.Lock()
	st.stopKeepAlive = s.cfg.Clock.AfterFunc(s.cfg.KeepAlive, st.keepAlive)
	st.mu.Unlock()
	st.run() // what came during the start, then idle
	if taken {
		return nil
	}
	select {
	case <-st.done:
	case <-r.Context().Done():
		st.quit()
	}
	return nil
}

// sseStream is a live SSE stream. It has no goroutine while idle: its subscription, its
// throttle's timer, its keep-alive timer and its token's expiry wake it (wake), and a goroutine
// runs it (run) only while it has something to write. At most one runs at a time (running).
// On a connection taken over from net/http, a client that leaves is noticed at once on Linux
// (closewatch_linux.go), elsewhere at a failed write: at the latest, the second keep-alive after
// it left.
type sseStream struct {
	s     *Server
	sub   *hub.Subscription
	th    *throttle     // nil unless ?throttle
	out   sseWriter     // only the running goroutine uses it
	conn  net.Conn      // the connection taken over from net/http; nil on HTTP/2
	lease *connLease    // the stream's place among the open ones, when conn is set
	done  chan struct{} // closed when the stream has ended (finish)

	batch, send []hub.Event // the running goroutine's; kept up to keepEvents

	stopExpiry func() bool
	unwatch    func() // ends watchClose's watch of conn

	mu            sync.Mutex // guards everything below
	running       bool       // a goroutine runs the stream (the handler, until the first run goes idle)
	woken         bool       // something may be due: run again before going idle
	keepAliveDue  bool       // the keep-alive timer has fired
	expired       bool       // the token has expired
	quitting      bool       // the client went away: end without writing
	ended         bool       // finish has run or is running: nothing more runs
	stopKeepAlive func() bool
}

// wake runs the stream, if no goroutine runs it already; the one that runs it runs again.
// It never blocks (hub.SubscribeOptions.Notify).
func (st *sseStream) wake() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return
	}
	st.woken = true
	if !st.running {
		st.running = true
		go st.run()
	}
}

// keepAlive is the keep-alive timer: a comment goes out every KeepAlive.
func (st *sseStream) keepAlive() {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return
	}
	st.keepAliveDue = true
	st.stopKeepAlive = st.s.cfg.Clock.AfterFunc(st.s.cfg.KeepAlive, st.keepAlive)
	st.mu.Unlock()
	st.wake()
}

// expire ends the stream when its token expires.
func (st *sseStream) expire() {
	st.mu.Lock()
	st.expired = true
	st.mu.Unlock()
	st.wake()
}

// clientGone ends the stream whose client closed the connection taken over (watchClose).
func (st *sseStream) clientGone() {
	st.mu.Lock()
	st.quitting = true
	st.mu.Unlock()
	st.wake()
}

// quit ends the stream for a handler that must return (HTTP/2), once no goroutine writes.
func (st *sseStream) quit() {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		<-st.done
		return
	}
	st.quitting = true
	if st.running {
		st.mu.Unlock()
		<-st.done // the running goroutine finishes it
		return
	}
	st.running = true
	st.mu.Unlock()
	st.finish()
}

// run writes what is due until nothing is, then leaves the stream idle; or ends it.
func (st *sseStream) run() {
	for {
		st.mu.Lock()
		quit, keepAlive := st.quitting, st.keepAliveDue
		if !st.woken && !quit {
			st.running = false
			st.mu.Unlock()
			return
		}
		st.woken, st.keepAliveDue = false, false
		st.mu.Unlock()
		if quit || !st.deliver(keepAlive) {
			st.finish()
			return
		}
	}
}

// start writes the retry hint, the reset, the replay or the snapshot, and ready; it reports
// false when the stream cannot go on.
func (st *sseStream) start() bool {
	s, sub, out := st.s, st.sub, &st.out
	defer out.idle()
	out.retry(s.cfg.Retry)
	if sub.Reset {
		out.event("reset", "", []byte(`{"seq":`+strconv.FormatUint(sub.Start, 10)+`}`))
	}
	initial := sub.Initial // a replay
	if st.th != nil {
		initial = coalesce(initial)
	}
	sent := len(initial)
	for i := range initial {
		out.change(&initial[i])
		if out.buffered() >= sseKeepBuffer {
			if out.send() != nil {
				return false
			}
		}
	}
	// A snapshot or reset may be the whole subtree: it is read page by page and goes out as it
	// is formatted, never whole in memory.
	var page []hub.Event
	for {
		var err error
		page, err = sub.NextEntries(page[:0])
		if err != nil {
			s.endStream(out, err)
			return false
		}
		if len(page) == 0 {
			break
		}
		sent += len(page)
		for i := range page {
			out.change(&page[i])
			if out.buffered() >= sseKeepBuffer {
				if out.send() != nil {
					return false
				}
			}
		}
		clear(page)
	}
	st.th.started(sent)
	out.event("ready", strconv.FormatUint(sub.Start, 10), []byte(`{"seq":`+strconv.FormatUint(sub.Start, 10)+`}`))
	return out.send() == nil
}

// deliver writes the due events (and a keep-alive comment), and reports whether the stream
// goes on. Only the running goroutine calls it.
func (st *sseStream) deliver(keepAlive bool) bool {
	out, th := &st.out, st.th
	defer out.idle()
	st.mu.Lock()
	expired := st.expired
	st.mu.Unlock()
	if expired { // nothing committed after the exp is sent
		st.s.endStream(out, errTokenExpired)
		return false
	}
	if th != nil {
		select {
		case <-th.C():
			st.send = th.flush(st.send[:0], false)
			st.changes(st.send)
		default:
		}
	}
	var done bool
	st.batch, done = st.sub.Take(st.batch[:0])
	if th != nil {
		st.send = th.add(st.send[:0], st.batch)
		if done {
			st.send = th.flush(st.send, true)
		}
		st.changes(st.send)
	} else {
		st.changes(st.batch)
	}
	// Drop the values until the next batch, and a burst's memory, as the hub's queue does.
	clear(st.batch)
	if cap(st.batch) > keepEvents {
		st.batch = nil
	}
	if cap(st.send) > keepEvents {
		st.send = nil
	}
	if keepAlive {
		out.comment("keep-alive")
	}
	if out.send() != nil {
		return false // the client is gone or too slow to take a write; it resumes from its last id
	}
	if done {
		st.s.endStream(out, st.sub.Err())
		return false
	}
	return true
}

// changes formats events, and lets go of their values.
func (st *sseStream) changes(events []hub.Event) {
	for i := range events {
		st.out.change(&events[i])
	}
	clear(events)
}

// finish ends the stream: its timers, its subscription, its connection (taken over: closed;
// else its deadline lifted, as it may serve another request) and its lease. Only the running
// goroutine calls it, once.
func (st *sseStream) finish() {
	st.mu.Lock()
	st.ended = true
	stopKeepAlive := st.stopKeepAlive
	st.mu.Unlock()
	if stopKeepAlive != nil {
		stopKeepAlive()
	}
	st.stopExpiry()
	st.th.Stop()
	st.sub.Close()
	st.out.idle()
	if st.conn != nil {
		st.unwatch()
		st.conn.Close()
		st.lease.release()
		st.s.streams.Done()
	} else {
		st.out.dl.lift()
	}
	close(st.done)
}

// endStream tells the client why the stream ends; EventSource reconnects by itself and resumes
// from the last id it saw.
func (s *Server) endStream(out *sseWriter, err error) {
	d := disconnectFor(err)
	if d == disconnectShutdown {
		out.retry(500 * time.Millisecond)
	}
	out.event("close", "", d.closeEvent())
	out.send()
}

// subscribeOptions reads the resume position (Last-Event-ID wins over ?since) and snapshot, or
// makes a subscription of broadcasts alone, which takes no since or snapshot: broadcasts are never
// replayed, and the Last-Event-ID an EventSource sends when it reconnects is ignored.
func subscribeOptions(lastEventID, since string, snapshot, broadcasts bool) (hub.SubscribeOptions, error) {
	if broadcasts {
		if since != "" || snapshot {
			return hub.SubscribeOptions{}, badRequest("bad_request", "broadcasts takes no since or snapshot: broadcasts are never replayed")
		}
		return hub.SubscribeOptions{BroadcastsOnly: true}, nil
	}
	opt := hub.SubscribeOptions{Snapshot: snapshot}
	pos := lastEventID
	if pos == "" {
		pos = since
	}
	if pos != "" {
		p, err := hub.ParsePosition(pos)
		if err != nil {
			return opt, err
		}
		opt.Since = &p
	}
	return opt, nil
}

// sseKeepBuffer is the most a stream formats before it writes, and the largest buffer that goes
// back to sseBuffers.
const sseKeepBuffer = 64 << 10

// sseBuffers holds the buffers streams format into while they write: an idle stream holds none
// (bench/subscribers, idle SSE memory).
var sseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// sseWriter formats events into a buffer and writes it with a deadline (writeDeadline), to the
// connection taken over from net/http, or to the ResponseWriter (flushed after each write).
type sseWriter struct {
	w     io.Writer
	flush func() error // nil for a connection
	dl    writeDeadline
	buf   *bytes.Buffer // from sseBuffers, between the first event formatted and idle
}

// b returns the buffer, taking one from the pool if the writer has none.
func (o *sseWriter) b() *bytes.Buffer {
	if o.buf == nil {
		o.buf = sseBuffers.Get().(*bytes.Buffer)
	}
	return o.buf
}

// buffered returns how many bytes wait to be sent.
func (o *sseWriter) buffered() int {
	if o.buf == nil {
		return 0
	}
	return o.buf.Len()
}

// idle gives the buffer back; what it held and was not sent is dropped.
func (o *sseWriter) idle() {
	if o.buf == nil {
		return
	}
	if o.buf.Cap() <= sseKeepBuffer {
		o.buf.Reset()
		sseBuffers.Put(o.buf)
	}
	o.buf = nil
}

func (o *sseWriter) comment(text string) {
	o.b().WriteString(": " + text + "\n\n")
}

func (o *sseWriter) retry(d time.Duration) {
	o.b().WriteString("retry: " + strconv.FormatInt(d.Milliseconds(), 10) + "\n\n")
}

// change writes a change, a snapshot entry or a broadcast; a live one's text is shared by every stream
// (hub.Event.AppendEncoded).
func (o *sseWriter) change(e *hub.Event) {
	b := o.b()
	b.Write(e.AppendEncoded(b.AvailableBuffer(), encSSE, appendSSEEvent))
}

func (o *sseWriter) event(kind, id string, data []byte) {
	b := o.b()
	b.Write(appendSSE(b.AvailableBuffer(), kind, id, data))
}

// appendSSEEvent encodes a change, a snapshot entry or a broadcast. Values and messages are
// compact JSON, so they hold no newline. A broadcast has no id: it never moves the client's
// Last-Event-ID.
func appendSSEEvent(b []byte, e *hub.Event) []byte {
	if e.Broadcast {
		b = append(b, "event: broadcast\ndata: "...)
		return append(appendBroadcastData(b, e), "\n\n"...)
	}
	if e.Deleted {
		return appendSSE(b, "delete", e.ID(), deleteData(e))
	}
	return appendSSE(b, "", e.ID(), e.Value)
}

func appendSSE(b []byte, kind, id string, data []byte) []byte {
	if kind != "" {
		b = append(append(append(b, "event: "...), kind...), '\n')
	}
	if id != "" {
		b = append(append(append(b, "id: "...), id...), '\n')
	}
	b = append(append(b, "data: "...), data...)
	return append(b, "\n\n"...)
}

// send writes what is buffered, and keeps the buffer for more.
func (o *sseWriter) send() error {
	if o.buffered() == 0 {
		return nil
	}
	o.dl.arm() // a writer that cannot take deadlines (a test's recorder) writes without
	_, err := o.w.Write(o.buf.Bytes())
	o.buf.Reset()
	if err == nil && o.flush != nil {
		err = o.flush()
	}
	return err
}
