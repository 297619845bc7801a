package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/statehub/statehub/client"
)

var cmdWatch = &command{
	name:     "watch",
	synopsis: "[-snapshot] [-since POS] [-throttle D] [-broadcasts] [-count N] PATH",
	summary:  "print every change of a key or subtree as a JSON line, resuming after disconnects",
	about: `Watch prints one JSON object a line for every event of PATH (a key, or a subtree ending in /),
until interrupted or, with -count, after N changes:

  {"type":"set","key":..,"value":..,"revision":..,"seq":..,"id":..}
  {"type":"delete","key":..,"revision":..,"seq":..,"id":..}
  {"type":"ready","seq":..,"id":..}     the stream is live (at the start of every connection)
  {"type":"reset","seq":..}             resuming was impossible: the current state follows
  {"type":"broadcast","path":..,"msg":..}  with -broadcasts: a message sent to PATH or below

It reconnects by itself (saying so on stderr) and resumes after the last event it printed, so
each change is printed once, across disconnections and server restarts. An event's "id" given to
-since resumes after it in a later watch. -throttle 250ms prints at most one change per key per
250 ms: the key's latest, and its last change always comes (each still counts for -count).
-broadcasts also prints the messages "statehub broadcast" sends while the watch is connected
(they are never replayed, and do not count for -count). -broadcasts-only prints ready, then those
messages alone: the server sends the watch no change.`,
	run: func(r *runner) error {
		snapshot := r.fs.Bool("snapshot", false, `first print the current entries ("snapshot":true), then ready`)
		since := r.fs.String("since", "", "resume after this event id (the \"id\" of a printed event)")
		count := r.fs.Int("count", 0, "exit after this many changes (set and delete events, not snapshot entries); 0: never")
		throttle := r.fs.Duration("throttle", 0, "at most one change per key per this long (10ms to 1m), the latest; 0: every change")
		broadcasts := r.fs.Bool("broadcasts", false, "print broadcast messages too")
		only := r.fs.Bool("broadcasts-only", false, "print broadcast messages alone, no change (no -since, -snapshot or -throttle)")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		if *only && (*since != "" || *snapshot || *throttle != 0) {
			return r.usageError("-broadcasts-only takes no -since, -snapshot or -throttle: broadcasts are never replayed")
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		changes := 0
		for ev, err := range c.Watch(r.ctx, args[0], client.WatchOptions{Since: *since, Snapshot: *snapshot, Throttle: *throttle, Broadcasts: *broadcasts, BroadcastsOnly: *only}) {
			if err != nil {
				if errors.Is(err, context.Canceled) && r.ctx.Err() != nil {
					return nil // interrupted: a normal end
				}
				return err
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(r.env.Stdout, "%s\n", b); err != nil {
				return err // stdout is gone (a closed pipe)
			}
			if (ev.Type == client.EventSet || ev.Type == client.EventDelete) && !ev.Snapshot {
				if changes++; *count > 0 && changes >= *count {
					return nil
				}
			}
		}
		return nil
	},
}
