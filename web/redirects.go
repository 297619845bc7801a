package web

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// Counted redirects (?go): a link that counts its clicks in a key and redirects to a stored URL.

// click serves GET /key?go: when the key holds {"url": "http(s)://..."} it counts the click in
// /key/clicks and redirects there. The target is only ever the stored URL.
func (s *Server) click(c echo.Context, key string) error {
	if err := s.authorize(c, auth.Read, key); err != nil {
		return err
	}
	clicks := key + "/clicks"
	if err := s.authorize(c, auth.Incr, clicks); err != nil {
		return err
	}
	e, err := s.hub.Get(key)
	if err != nil {
		return err
	}
	var link struct {
		URL *string `json:"url"`
	}
	if e.Type != "" || json.Unmarshal(e.Value, &link) != nil || link.URL == nil {
		return &apiError{http.StatusNotFound, "no_url", key + ` holds no {"url": ...} to redirect to`}
	}
	u, err := url.Parse(*link.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return &apiError{http.StatusUnprocessableEntity, "invalid_url", "the stored url must be an absolute http or https URL without credentials"}
	}
	if _, err := s.hub.Incr(clicks, 1, hub.WriteOptions{}); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusFound, u.String())
}
