package web

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// stream serves a path as Server-Sent Events (PROTOCOL.md): an optional reset, the replay or
// snapshot, a ready event with the starting position, then every change as it commits.
func (s *Server) stream(c echo.Context, path string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	opt, err := subscribeOptions(c.Request().Header.Get("Last-Event-ID"), q.Get("since"), boolOption(q, "snapshot"))
	if err != nil {
		return err
	}
	every, err := parseThrottle(q.Get("throttle"))
	if err != nil {
		return err
	}
	sub, err := s.opSubscribe(p, path, opt)
	if err != nil {
		return err
	}
	defer sub.Close()

	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w.Writer)
	out := &sseWriter{w: w, rc: rc, dl: writeDeadline{set: rc.SetWriteDeadline, timeout: s.cfg.WriteTimeout}}
	defer out.dl.lift() // the connection may serve another request

	// The stream ends when its token expires (tokenexpiry.go): armed before ready is sent, so a
	// client that has seen ready knows the timer runs.
	var expired chan struct{}
	if !p.Expires().IsZero() {
		expired = make(chan struct{})
		defer s.tokenTimer(p, func() { close(expired) })()
	}

	out.retry(s.cfg.Retry)
	if sub.Reset {
		out.event("reset", "", []byte(`{"seq":`+strconv.FormatUint(sub.Start, 10)+`}`))
	}
	initial := sub.Initial                // a replay
	th := newThrottle(s.cfg.Clock, every) // nil unless ?throttle (throttle.go)
	defer th.Stop()
	if th != nil {
		initial = coalesce(initial)
	}
	sent := len(initial)
	for i := range initial {
		out.change(&initial[i])
		if out.buf.Len() >= sseKeepBuffer {
			if err := out.flush(); err != nil {
				return nil
			}
		}
	}
	// A snapshot or reset may be the whole subtree: it is read page by page and goes out as it
	// is formatted, never whole in memory.
	var page []hub.Event
	for {
		page, err = sub.NextEntries(page[:0])
		if err != nil {
			s.endStream(out, err)
			return nil
		}
		if len(page) == 0 {
			break
		}
		sent += len(page)
		for i := range page {
			out.change(&page[i])
			if out.buf.Len() >= sseKeepBuffer {
				if err := out.flush(); err != nil {
					return nil
				}
			}
		}
		clear(page)
	}
	th.started(sent)
	out.event("ready", strconv.FormatUint(sub.Start, 10), []byte(`{"seq":`+strconv.FormatUint(sub.Start, 10)+`}`))
	if err := out.flush(); err != nil {
		return nil
	}

	keepAlive := time.NewTicker(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	ctx := c.Request().Context()
	var batch, send []hub.Event
	for {
		select {
		case <-sub.Ready():
			select {
			case <-expired: // nothing committed after the exp is sent, whichever case select chose
				s.endStream(out, errTokenExpired)
				return nil
			default:
			}
			var done bool
			batch, done = sub.Take(batch[:0])
			if th != nil {
				send = th.add(send[:0], batch)
				if done {
					send = th.flush(send, true)
				}
				for i := range send {
					out.change(&send[i])
				}
				clear(send)
			} else {
				for i := range batch {
					out.change(&batch[i])
				}
			}
			// Drop the values until the next batch, and a burst's memory, as the hub's queue does.
			clear(batch)
			if cap(batch) > keepEvents {
				batch = nil
			}
			if cap(send) > keepEvents {
				send = nil
			}
			if done {
				s.endStream(out, sub.Err())
				return nil
			}
		case <-expired:
			s.endStream(out, errTokenExpired)
			return nil
		case <-th.C():
			send = th.flush(send[:0], false)
			for i := range send {
				out.change(&send[i])
			}
			clear(send)
		case <-keepAlive.C:
			out.buf.WriteString(": keep-alive\n\n")
		case <-ctx.Done():
			return nil
		}
		if err := out.flush(); err != nil {
			return nil // the client is gone or too slow to take a write; it resumes from its last id
		}
	}
}

// endStream tells the client why the stream ends; EventSource reconnects by itself and resumes
// from the last id it saw.
func (s *Server) endStream(out *sseWriter, err error) {
	d := disconnectFor(err)
	if d == disconnectShutdown {
		out.retry(500 * time.Millisecond)
	}
	out.event("close", "", d.closeEvent())
	out.flush()
}

// subscribeOptions reads the resume position (Last-Event-ID wins over ?since) and ?snapshot.
func subscribeOptions(lastEventID, since string, snapshot bool) (hub.SubscribeOptions, error) {
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

// sseKeepBuffer is the largest buffer a stream keeps between writes.
const sseKeepBuffer = 64 << 10

// sseWriter formats events into a buffer and writes it with a deadline (writeDeadline).
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	dl  writeDeadline
	buf bytes.Buffer
}

func (o *sseWriter) retry(d time.Duration) {
	o.buf.WriteString("retry: " + strconv.FormatInt(d.Milliseconds(), 10) + "\n\n")
}

// change writes a change, a snapshot entry or a broadcast; a live one's text is shared by every stream
// (hub.Event.AppendEncoded).
func (o *sseWriter) change(e *hub.Event) {
	o.buf.Write(e.AppendEncoded(o.buf.AvailableBuffer(), encSSE, appendSSEEvent))
}

func (o *sseWriter) event(kind, id string, data []byte) {
	o.buf.Write(appendSSE(o.buf.AvailableBuffer(), kind, id, data))
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

func (o *sseWriter) flush() error {
	if o.buf.Len() == 0 {
		return nil
	}
	o.dl.arm() // a writer that cannot take deadlines (a test's recorder) writes without
	_, err := o.w.Write(o.buf.Bytes())
	if o.buf.Cap() > sseKeepBuffer {
		o.buf = bytes.Buffer{} // a burst's memory goes back; an idle stream keeps little
	} else {
		o.buf.Reset()
	}
	if err == nil {
		err = o.rc.Flush()
	}
	return err
}
