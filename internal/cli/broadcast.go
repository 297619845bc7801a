package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

var cmdBroadcast = &command{
	name:     "broadcast",
	synopsis: "[-string] PATH [MSG]",
	summary:  "send a JSON message to the subscribers of a key or subtree, without storing it",
	about: `Broadcast sends MSG, a JSON document, to whoever watches PATH (a key, or a subtree ending in
/) or a subtree above it right now: statehub broadcast /room/1/typing/ann true. Nothing is stored,
and a watcher that is not connected at that moment never sees it ("statehub watch -broadcasts"
prints them). Without MSG (or with -) it reads the message from stdin; -string sends MSG (or
stdin, less one final newline) as a JSON string.`,
	run: func(r *runner) error {
		asString := r.fs.Bool("string", false, "send the message as a JSON string")
		args, err := r.parse(r.args, 1, 2)
		if err != nil {
			return err
		}
		var msg []byte
		fromStdin := len(args) == 1 || args[1] == "-"
		if fromStdin {
			if r.env.Stdin == nil {
				return r.usageError("no MSG, and no stdin to read it from")
			}
			if msg, err = io.ReadAll(r.env.Stdin); err != nil {
				return err
			}
		} else {
			msg = []byte(args[1])
		}
		if *asString {
			text := string(msg)
			if fromStdin {
				text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
			}
			msg, _ = json.Marshal(text)
		} else if !json.Valid(msg) {
			return fmt.Errorf("the message is not JSON: %.40q; send text with -string (or quote it: '\"text\"')", msg)
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		return c.Broadcast(r.ctx, args[0], json.RawMessage(bytes.TrimSpace(msg)))
	},
}
