package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/statehub/statehub/client"
)

// DefaultURL is the server the commands talk to when STATEHUB_URL is not set.
const DefaultURL = "http://127.0.0.1:8000"

// Env is what a command reads and writes besides its arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Environ is the environment as os.Environ gives it (NAME=value): STATEHUB_URL and
	// STATEHUB_TOKEN are read from it, and lock's command runs with it.
	Environ []string
}

// Getenv returns the value of the last NAME=value entry of e.Environ, "" when none.
func (e Env) Getenv(name string) string {
	for i := len(e.Environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(e.Environ[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// command is one subcommand.
type command struct {
	name     string
	synopsis string // the arguments, after "statehub NAME "
	summary  string // one line for the list
	about    string // what statehub help NAME says before the flags
	run      func(r *runner) error
}

// commands in the order help lists them; init fills it, as help refers to it.
var commands []*command

func init() {
	commands = []*command{cmdGet, cmdSet, cmdDel, cmdIncr, cmdLs, cmdHistory, cmdWatch, cmdBroadcast, cmdLock, cmdBackup, cmdRestore, cmdHelp}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// IsCommand reports whether name (the binary's first argument) is a command of this package.
func IsCommand(name string) bool { return lookup(name) != nil }

// Main runs the command of args (args[0] is its name) with the process's streams and
// environment, and returns the exit status. SIGINT and SIGTERM cancel it: watch ends, lock
// passes SIGTERM on to its command and releases the lock once it has exited.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}, args)
}

// Errors that set the exit status.
var (
	errUsage = errors.New("usage") // the usage has been printed: exit 2
	errHelp  = errors.New("help")  // -h: the usage has been printed: exit 0
)

// exitError ends a command with a given status, after its message (if any) was printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run runs the command of args (args[0] is its name) and returns the exit status.
func Run(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || lookup(args[0]) == nil {
		printUsage(env.Stderr)
		return 2
	}
	c := lookup(args[0])
	r := &runner{ctx: ctx, env: env, cmd: c, args: args[1:]}
	r.fs = flag.NewFlagSet("statehub "+c.name, flag.ContinueOnError)
	r.fs.SetOutput(io.Discard) // r.usage prints, once
	err := c.run(r)
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(env.Stderr, "statehub %s: %s\n", c.name, describe(err, env))
	return 1
}

// describe says what went wrong for a person: the server's message rather than the client's
// wrapping, and a hint where the cause is usually the configuration.
func describe(err error, env Env) string {
	var e *client.Error
	if errors.As(err, &e) {
		msg := e.Message
		if e.Code != "" {
			msg += " (" + e.Code + ")"
		}
		switch {
		case errors.Is(err, client.ErrLocked):
			msg += fmt.Sprintf("; held by %q until %s", e.Owner, e.Expires.Local().Format("2006-01-02 15:04:05 MST"))
		case errors.Is(err, client.ErrUnauthorized) && env.Getenv("STATEHUB_TOKEN") == "":
			msg += "; set STATEHUB_TOKEN to a token of the server"
		}
		return msg
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Sprintf("%v (is a server running at %s? set STATEHUB_URL)", err, serverURL(env))
	}
	return err.Error()
}

func serverURL(env Env) string {
	if u := env.Getenv("STATEHUB_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// runner is one command's invocation.
type runner struct {
	ctx  context.Context
	env  Env
	cmd  *command
	args []string
	fs   *flag.FlagSet
}

// parse parses r.args with r.fs, flags and arguments in any order ("--" ends the flags), and
// returns the arguments, of which there must be between min and max (-1: any number).
func (r *runner) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := r.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				r.usage(r.env.Stdout)
				return nil, errHelp
			}
			return nil, r.usageError("%v", err)
		}
		rest := r.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, r.usageError("too few arguments")
	case max >= 0 && len(pos) > max:
		return nil, r.usageError("unexpected argument %q", pos[max])
	}
	return pos, nil
}

// usageError prints the problem and the command's usage.
func (r *runner) usageError(format string, a ...any) error {
	fmt.Fprintf(r.env.Stderr, "statehub %s: %s\n", r.cmd.name, fmt.Sprintf(format, a...))
	r.usage(r.env.Stderr)
	return errUsage
}

// usage prints the command's synopsis, text and flags.
func (r *runner) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: statehub %s %s\n\n%s\n", r.cmd.name, r.cmd.synopsis, r.cmd.about)
	hasFlags := false
	r.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		r.fs.SetOutput(w)
		r.fs.PrintDefaults()
		r.fs.SetOutput(io.Discard)
	}
}

// client makes the client of $STATEHUB_URL with $STATEHUB_TOKEN; reconnections are logged on
// stderr.
func (r *runner) client() (*client.Client, error) {
	log := slog.New(slog.NewTextHandler(r.env.Stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	}))
	opts := []client.Option{client.WithLogger(log)}
	if tok := r.env.Getenv("STATEHUB_TOKEN"); tok != "" {
		opts = append(opts, client.WithToken(client.StaticToken(tok)))
	}
	c, err := client.New(serverURL(r.env), opts...)
	if err != nil {
		return nil, fmt.Errorf("STATEHUB_URL: %w", err)
	}
	return c, nil
}

var cmdHelp = &command{
	name:     "help",
	synopsis: "[COMMAND]",
	summary:  "list the commands, or show one's arguments and flags",
	about:    "Help lists the commands, or shows the arguments and flags of one.",
	run: func(r *runner) error {
		args, err := r.parse(r.args, 0, 1)
		if err != nil {
			return err
		}
		if len(args) == 0 {
			printUsage(r.env.Stdout)
			return nil
		}
		c := lookup(args[0])
		if c == nil {
			return r.usageError("no command %q", args[0])
		}
		// A command's -h prints its usage with its flags.
		sub := &runner{ctx: r.ctx, env: r.env, cmd: c, args: []string{"-h"}}
		sub.fs = flag.NewFlagSet("statehub "+c.name, flag.ContinueOnError)
		sub.fs.SetOutput(io.Discard)
		if err := c.run(sub); !errors.Is(err, errHelp) {
			return err
		}
		return nil
	},
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: statehub COMMAND [ARGUMENTS]   talk to a Statehub server
       statehub [FLAGS]               serve (statehub -h lists the server's flags)

The commands talk to the server at $STATEHUB_URL (default %s) with the bearer
token $STATEHUB_TOKEN. Flags may come before or after the arguments; "--" ends them.

Commands:
`, DefaultURL)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nstatehub help COMMAND shows a command's arguments and flags.")
}
