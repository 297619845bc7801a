package web

import (
	"bytes"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub"
)

// opOnDisconnect registers, replaces or cancels a connection's on-disconnect write (PROTOCOL.md,
// "ondisconnect"): {"key", "value"} sets key to value, {"key", "delete": true} deletes it, once
// the connection has been gone for the grace period or its node is lost; {"key", "cancel": true}
// drops the registration ({"cancel": true} without key: all of the connection's). The write is
// authorized now, with the write grant on key, and made later without another check.
func (s *Server) opOnDisconnect(p *auth.Principal, sess *hub.Session, req wsRequest) error {
	hasValue := len(req.Value) > 0
	if req.Cancel {
		if hasValue || req.Delete {
			return badRequest("bad_request", "ondisconnect with cancel takes no value and no delete")
		}
		if req.Key != "" {
			if err := s.hub.Limits().CheckKey(req.Key); err != nil {
				return err
			}
		}
		return s.hub.CancelDisconnect(sess, req.Key)
	}
	if req.Key == "" {
		return badRequest("bad_request", "ondisconnect needs a key")
	}
	if err := s.permit(p, auth.Write, req.Key); err != nil {
		return err
	}
	w := hub.DisconnectWrite{Key: req.Key, Delete: req.Delete}
	switch {
	case req.Delete && hasValue:
		return badRequest("bad_request", "ondisconnect takes a value or delete, not both")
	case !req.Delete && !hasValue:
		return badRequest("bad_request", "ondisconnect needs a value (a set), delete: true, or cancel: true")
	case !req.Delete:
		value, err := s.readValue(bytes.NewReader(req.Value))
		if err != nil {
			return err
		}
		w.Value = value
	}
	return s.hub.OnDisconnect(sess, w)
}
