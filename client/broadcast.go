package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Broadcast sends msg (marshaled with encoding/json; a json.RawMessage is sent as it is) to the
// current subscribers of path, a key or a prefix ending in "/", and of every prefix above it,
// without storing it (PROTOCOL.md, "Broadcast"): for cursors, reactions and typing indicators. It
// returns once the server has handed it to its subscribers (in a cluster, those of other nodes
// get it a moment later); a Watch with WatchOptions.Broadcasts yields it as EventBroadcast. A
// subscriber that is not connected when it comes never gets it.
//
// The server bounds a message's size (ErrTooLarge) and each client's rate (ErrTooManyRequests,
// not retried here), and needs the broadcast grant (which write implies) on path.
func (c *Client) Broadcast(ctx context.Context, path string, msg any) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("client: a broadcast's path must start with /, not %q", path)
	}
	body, err := jsonBody(msg)
	if err != nil {
		return err
	}
	r := request{method: http.MethodPost, path: path, query: query{}.flag("broadcast"), body: body,
		header: http.Header{"Content-Type": {"application/json"}}}
	res, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	return res.Body.Close()
}
