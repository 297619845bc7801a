package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/statehub/statehub/client"
)

var cmdGet = &command{
	name:     "get",
	synopsis: "[-raw] KEY",
	summary:  "print a key's JSON value (a stored file's bytes)",
	about: `Get prints the key's value as compact JSON and a newline, or the bytes of a stored file as
they were stored. An absent key exits 1.`,
	run: func(r *runner) error {
		raw := r.fs.Bool("raw", false, "print a string value as its text, without quotes and escapes")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		e, err := c.Get(r.ctx, args[0])
		if errors.Is(err, client.ErrFile) {
			f, err := c.GetFile(r.ctx, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(r.env.Stdout, f)
			return err
		}
		if err != nil {
			return err
		}
		var s string
		if *raw && json.Unmarshal(e.Value, &s) == nil {
			_, err = fmt.Fprintln(r.env.Stdout, s)
			return err
		}
		_, err = fmt.Fprintf(r.env.Stdout, "%s\n", e.Value)
		return err
	},
}

var cmdSet = &command{
	name:     "set",
	synopsis: "[-ttl D] [-if-revision N] [-fence N [-fence-lock KEY]] [-string] KEY [VALUE] | set -file PATH [-type TYPE] KEY",
	summary:  "set a key to a JSON value, a string or a file",
	about: `Set stores VALUE, a JSON document, at KEY; without VALUE (or with -) it reads the value from
stdin. -string stores VALUE (or stdin, less one final newline) as a JSON string instead:
statehub set -string /ci/app/sha "$GITHUB_SHA". -file stores a file's bytes, served back by GET
with its content type. Put "--" before a VALUE that starts with "-": statehub set /n -- -1.

-fence makes the write hold only while the lock -fence-lock is held with that fence: under
"statehub lock", -fence "$STATEHUB_FENCE" (-fence-lock defaults to $STATEHUB_LOCK, the lock's
key). Once the lock was released, expired or taken again the write is refused (fence_stale) and
changes nothing, so a job that stalled past its lock cannot overwrite the next one's work.`,
	run: func(r *runner) error {
		ttl := r.fs.Duration("ttl", 0, "delete the key this long after the write (e.g. 30s, 1h30m)")
		asString := r.fs.Bool("string", false, "store the value as a JSON string")
		file := r.fs.String("file", "", "store this file's bytes (- for stdin) instead of a JSON value")
		typ := r.fs.String("type", "", "the file's content type (default: from its extension, else application/octet-stream)")
		rev := ifRevisionFlag(r, "only if the key is at this revision now (-1: only if it is absent)")
		fence := fenceFlags(r)
		args, err := r.parse(r.args, 1, 2)
		if err != nil {
			return err
		}
		var opts []client.WriteOption
		if *ttl != 0 {
			opts = append(opts, client.TTL(*ttl))
		}
		opts = rev.option(opts)
		if opts, err = fence.option(r, opts); err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		key := args[0]
		if *file != "" {
			if len(args) > 1 {
				return r.usageError("-file takes no VALUE")
			}
			return setFile(r, c, key, *file, *typ, opts)
		}
		var value []byte
		fromStdin := len(args) == 1 || args[1] == "-"
		if fromStdin {
			if r.env.Stdin == nil {
				return r.usageError("no VALUE, and no stdin to read it from")
			}
			if value, err = io.ReadAll(r.env.Stdin); err != nil {
				return err
			}
		} else {
			value = []byte(args[1])
		}
		if *asString {
			text := string(value)
			if fromStdin {
				text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
			}
			value, _ = json.Marshal(text)
		} else if !json.Valid(value) {
			return fmt.Errorf("the value is not JSON: %.40q; store text with -string (or quote it: '\"text\"'), a file with -file", value)
		}
		_, err = c.Set(r.ctx, key, json.RawMessage(bytes.TrimSpace(value)), opts...)
		return err
	},
}

func setFile(r *runner, c *client.Client, key, path, typ string, opts []client.WriteOption) error {
	var body io.Reader = r.env.Stdin
	if path == "-" && body == nil {
		return r.usageError("-file -: no stdin to read from")
	}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		body = f
		if typ == "" {
			typ = mime.TypeByExtension(filepath.Ext(path))
		}
	}
	if typ == "" {
		typ = "application/octet-stream"
	}
	_, err := c.PutFile(r.ctx, key, typ, body, opts...)
	return err
}

var cmdDel = &command{
	name:     "del",
	synopsis: "[-f] [-if-revision N] [-fence N [-fence-lock KEY]] KEY | del -r PREFIX/",
	summary:  "delete a key, or every key under a prefix",
	about: `Del deletes KEY; an absent key exits 1, unless -f. With -r it deletes every key under PREFIX/
(which ends in /) in one commit, and says how many on stderr. -fence and -fence-lock as for set.`,
	run: func(r *runner) error {
		force := r.fs.Bool("f", false, "no error when the key is absent")
		recursive := r.fs.Bool("r", false, "delete every key under a PREFIX/ (which ends in /)")
		rev := ifRevisionFlag(r, "only if the key is at this revision now")
		fence := fenceFlags(r)
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		path := args[0]
		if *recursive && fence.n != 0 {
			return r.usageError("-r takes no -fence")
		}
		if *recursive != strings.HasSuffix(path, "/") {
			if *recursive {
				return r.usageError("-r deletes a prefix, which ends in /: %s/", path)
			}
			return r.usageError("%s is a prefix: delete every key under it with -r", path)
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		if *recursive {
			n, _, err := c.DeleteTree(r.ctx, path)
			if err == nil {
				fmt.Fprintf(r.env.Stderr, "deleted %d %s under %s\n", n, plural(n, "key", "keys"), path)
			}
			return err
		}
		var opts []client.WriteOption
		opts = rev.option(opts)
		if opts, err = fence.option(r, opts); err != nil {
			return err
		}
		_, err = c.Delete(r.ctx, path, opts...)
		if *force && errors.Is(err, client.ErrNotFound) {
			return nil
		}
		return err
	},
}

var cmdIncr = &command{
	name:     "incr",
	synopsis: "[-by N] [-ttl D] KEY",
	summary:  "add to an integer key atomically and print the new value",
	about: `Incr adds 1 (or N) to the integer at KEY, an absent key counting as 0, and prints the new value:
BUILD=$(statehub incr /ci/app/builds/main) numbers builds 1, 2, 3, ... however many jobs run at
once.`,
	run: func(r *runner) error {
		by := r.fs.Int64("by", 1, "the amount to add (may be negative)")
		ttl := r.fs.Duration("ttl", 0, "delete the key this long after the increment")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		var opts []client.WriteOption
		if *ttl != 0 {
			opts = append(opts, client.TTL(*ttl))
		}
		n, err := c.Incr(r.ctx, args[0], *by, opts...)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(r.env.Stdout, n)
		return err
	},
}

var cmdLs = &command{
	name:     "ls",
	synopsis: "[-l] [-children] PREFIX/",
	summary:  "list the keys under a prefix",
	about: `Ls prints the keys under PREFIX/ in key order, one a line (a PREFIX without its final / gets
one). -l prints one JSON object a line instead: {"key","value","revision","seq"}. -children
lists the immediate children only, a child subtree as its prefix (ending in /).`,
	run: func(r *runner) error {
		long := r.fs.Bool("l", false, `print {"key","value","revision","seq"} JSON lines`)
		children := r.fs.Bool("children", false, "list immediate children only")
		limit := r.fs.Int("page", 0, "entries per request (default the server's, 100; at most 1000)")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		prefix := args[0]
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		opts := client.ListOptions{Limit: *limit, KeysOnly: !*long, Children: *children}
		for e, err := range c.List(r.ctx, prefix, opts) {
			if err != nil {
				return err
			}
			if !*long {
				fmt.Fprintln(r.env.Stdout, e.Key)
				continue
			}
			line := entryLine{Key: e.Key, Value: e.Value}
			if !strings.HasSuffix(e.Key, "/") {
				line.Revision, line.Seq = &e.Revision, &e.Seq
			}
			b, err := json.Marshal(line)
			if err != nil {
				return err
			}
			fmt.Fprintf(r.env.Stdout, "%s\n", b)
		}
		return nil
	},
}

// fence is the -fence and -fence-lock flags of a write.
type fence struct {
	n    uint64
	lock string
}

// ifRevision is an -if-revision flag: the write's precondition, when given.
type ifRevision struct{ n *int64 }

func ifRevisionFlag(r *runner, usage string) *ifRevision {
	f := &ifRevision{}
	r.fs.Func("if-revision", usage, func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		f.n = &n
		return err
	})
	return f
}

// option adds the IfRevision option to opts when -if-revision was given.
func (f *ifRevision) option(opts []client.WriteOption) []client.WriteOption {
	if f.n == nil {
		return opts
	}
	return append(opts, client.IfRevision(*f.n))
}

func fenceFlags(r *runner) *fence {
	f := &fence{}
	r.fs.Func("fence", "only while the lock -fence-lock is held with this fence ($STATEHUB_FENCE under statehub lock)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return errors.New("a fence is a positive integer")
		}
		f.n = n
		return nil
	})
	r.fs.StringVar(&f.lock, "fence-lock", "", "the key of -fence's lock (default $STATEHUB_LOCK, set by statehub lock)")
	return f
}

// option adds the Fenced option to opts when -fence was given.
func (f *fence) option(r *runner, opts []client.WriteOption) ([]client.WriteOption, error) {
	if f.n == 0 {
		if f.lock != "" {
			return nil, r.usageError("-fence-lock needs -fence")
		}
		return opts, nil
	}
	lock := f.lock
	if lock == "" {
		lock = r.env.Getenv("STATEHUB_LOCK")
	}
	if lock == "" {
		return nil, r.usageError("-fence needs its lock's key: -fence-lock KEY (or $STATEHUB_LOCK, as statehub lock sets it)")
	}
	return append(opts, client.Fenced(lock, f.n)), nil
}

// entryLine is one line of ls -l.
type entryLine struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Revision *int64          `json:"revision,omitempty"`
	Seq      *uint64         `json:"seq,omitempty"`
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
