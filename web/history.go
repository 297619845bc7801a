package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// History reads (GET /key?history, the WebSocket's history op): a key's retained past values,
// newest first (PROTOCOL.md, "GET /key?history").

// HistoryAnswer is the JSON answer to a history read. Cursor, when present, reads the next
// (older) page; without it the entries reach the key's first change.
type HistoryAnswer struct {
	Entries []HistoryEntry `json:"entries"`
	Cursor  string         `json:"cursor,omitempty"`
}

// HistoryEntry is one past change of a key: its value, or deleted.
type HistoryEntry struct {
	Revision int64  `json:"revision"`
	Seq      uint64 `json:"seq"`
	// Time is when the change was committed, RFC 3339 in UTC; absent when the server does not
	// know it (see hub.Event.Time).
	Time    string          `json:"time,omitempty"`
	Value   json.RawMessage `json:"value,omitempty"`
	Type    string          `json:"type,omitempty"` // a stored file's content type
	Deleted bool            `json:"deleted,omitempty"`
	// An ephemeral key's change: its owner (on a delete, who left) and why it left or changed
	// hands, as its event said (presence.go).
	Presence *PresenceJSON `json:"presence,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

func historyAnswer(page hub.HistoryPage) HistoryAnswer {
	a := HistoryAnswer{Entries: make([]HistoryEntry, len(page.Entries))}
	for i, e := range page.Entries {
		a.Entries[i] = HistoryEntry{Revision: e.Revision, Seq: e.Seq, Value: e.Value, Type: e.Type, Deleted: e.Deleted,
			Presence: presenceJSON(e.Presence), Reason: e.Reason}
		if e.Time != 0 {
			a.Entries[i].Time = formatTime(time.Unix(0, e.Time))
		}
	}
	if page.Before != 0 {
		a.Cursor = strconv.FormatUint(page.Before, 10)
	}
	return a
}

// parseHistoryLimit reads a history read's limit: absent (0) for the default.
func parseHistoryLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badRequest("invalid_limit", "limit must be a positive integer, got "+strconv.Quote(v))
	}
	return n, nil
}

func (s *Server) history(c echo.Context, key string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	limit, err := parseHistoryLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	page, err := s.opHistory(p, key, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.JSON(http.StatusOK, historyAnswer(page))
}

// wsHistoryAnswer is the WebSocket's answer to a history read: the HTTP answer with id and ok.
type wsHistoryAnswer struct {
	ID json.RawMessage `json:"id,omitempty"`
	OK bool            `json:"ok"`
	HistoryAnswer
}

func (c *wsConn) history(p *auth.Principal, req wsRequest) error {
	if req.Limit < 0 {
		return badRequest("invalid_limit", "limit must be a positive integer")
	}
	page, err := c.s.opHistory(p, req.Key, req.Cursor, req.Limit)
	if err != nil {
		return err
	}
	b, err := json.Marshal(wsHistoryAnswer{ID: req.ID, OK: true, HistoryAnswer: historyAnswer(page)})
	if err != nil {
		return err
	}
	c.send(b)
	return nil
}
