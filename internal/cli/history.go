package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/statehub/statehub/client"
)

var cmdHistory = &command{
	name:     "history",
	synopsis: "[-limit N] [-before SEQ] KEY",
	summary:  "print a key's past values, newest first, as JSON lines",
	about: `History prints the past changes of KEY, newest first, one JSON object a line:

  {"revision":..,"seq":..,"time":"2026-05-01T12:00:00Z","value":..}
  {"revision":..,"seq":..,"time":..,"deleted":true}

as far back as the server retains them (its history of changes; in a cluster, etcd's until it
compacts), at most -limit of them. "time" is absent when the server does not know it. When the
server no longer holds older changes it says so on stderr (with the oldest seq it holds); a
-before below what it holds exits 1.`,
	run: func(r *runner) error {
		limit := r.fs.Int("limit", 20, "print at most this many changes; 0: all the server retains")
		before := r.fs.Uint64("before", 0, "only changes below this seq (a printed \"seq\"), to go on from an earlier run")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		if *limit < 0 {
			return r.usageError("-limit must not be negative")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		opts := client.HistoryOptions{Before: *before}
		if *limit > 0 {
			opts.Limit = min(*limit, 1000)
		}
		n := 0
		for e, err := range c.History(r.ctx, args[0], opts) {
			var ce *client.Error
			if n > 0 && errors.As(err, &ce) && errors.Is(err, client.ErrHistoryGone) {
				fmt.Fprintf(r.env.Stderr, "statehub history: older changes are no longer retained (the server holds them from seq %d)\n", ce.Oldest)
				return nil
			}
			if err != nil {
				return err
			}
			line := historyLine{Revision: e.Revision, Seq: e.Seq, Value: e.Value, Type: e.Type, Deleted: e.Deleted}
			if !e.Time.IsZero() {
				line.Time = e.Time.UTC().Format(time.RFC3339Nano)
			}
			b, err := json.Marshal(line)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(r.env.Stdout, "%s\n", b); err != nil {
				return err
			}
			if n++; *limit > 0 && n >= *limit {
				return nil
			}
		}
		return nil
	},
}

// historyLine is one line of history, as the server's history answer has it.
type historyLine struct {
	Revision int64           `json:"revision"`
	Seq      uint64          `json:"seq"`
	Time     string          `json:"time,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	Type     string          `json:"type,omitempty"`
	Deleted  bool            `json:"deleted,omitempty"`
}
