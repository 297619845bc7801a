package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// Locks for CI and pages (?lock): acquire, renew and release over HTTP.

// DefaultMaxLockWait caps ?wait= of a lock request (Config.MaxLockWait).
const DefaultMaxLockWait = 60 * time.Second

const hdrLockToken = "X-Lock-Token"

// LockAnswer is the JSON answer to an acquisition or a renewal.
type LockAnswer struct {
	Key     string `json:"key"`
	Token   string `json:"token"`   // secret: renew and release send it as X-Lock-Token
	Fence   uint64 `json:"fence"`   // the seq of the acquisition; larger for every later one
	Expires string `json:"expires"` // RFC 3339
	Owner   string `json:"owner"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// lock serves POST /key?lock (acquire, optionally waiting) and POST /key?lock&renew.
func (s *Server) lock(c echo.Context, key string, q url.Values) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	var ttl time.Duration
	if q.Has("ttl") {
		d, err := parseTTL(q.Get("ttl"))
		if err != nil {
			return err
		}
		ttl = d
	}
	var lk hub.Lock
	if q.Has("renew") {
		lk, err = s.opRenew(p, key, c.Request().Header.Get(hdrLockToken), ttl)
	} else {
		opt := hub.LockOptions{TTL: ttl, Owner: q.Get("owner")}
		if q.Has("wait") {
			if opt.Wait, err = parseWait(q.Get("wait")); err != nil {
				return err
			}
		}
		lk, err = s.opLock(c.Request().Context(), p, lockRequest{Key: key, Options: opt})
	}
	if err != nil {
		return err
	}
	setEntryHeaders(c, lk.Revision, lk.Seq)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, LockAnswer{Key: key, Token: lk.Token, Fence: lk.Fence, Expires: formatTime(lk.Expires), Owner: lk.Owner})
}

// unlock serves DELETE /key?lock.
func (s *Server) unlock(c echo.Context, key string) error {
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	res, err := s.opUnlock(p, key, c.Request().Header.Get(hdrLockToken))
	if err != nil {
		return err
	}
	return writeResult(c, res)
}
