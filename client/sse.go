package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	event string // "" for a plain message
	id    string
	data  []byte
}

// maxSSELine bounds one line of a stream (a value is at most the server's -max-value-bytes,
// 1 MiB by default).
const maxSSELine = 64 << 20

var errSSELine = errors.New("client: an event stream line is longer than 64 MiB")

// sseReader parses an event stream (the WHATWG HTML "event stream interpretation"), as far as
// Statehub sends it: event, id, data and retry fields, comments, LF or CRLF line ends.
type sseReader struct {
	r     *bufio.Reader
	retry time.Duration // the last retry field; 0 when none came
	line  []byte
	// onLine is called after every line read, data or comment (keep-alives reset an idle timer).
	onLine func()
}

func newSSEReader(r io.Reader, onLine func()) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), onLine: onLine}
}

// readLine returns the next line without its end; the slice is valid until the next call.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.line = append(s.line, chunk...)
		if len(s.line) > maxSSELine {
			return nil, errSSELine
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(s.line) > 0 {
				err = io.ErrUnexpectedEOF // a stream cut mid-line
			}
			return nil, err
		}
		if s.onLine != nil {
			s.onLine()
		}
		line := s.line[:len(s.line)-1]
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// next returns the next event. An event is dispatched at a blank line; one without data is not
// (as a browser would not), but its id still counts, which Statehub never relies on.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.data = data
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue // a comment: keep-alive
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			ev.event = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id = string(value)
			}
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 32); err == nil {
				s.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}
