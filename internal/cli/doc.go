// Package cli is the client side of the statehub binary: "statehub get|set|del|incr|ls|watch|
// broadcast|lock|backup|restore|help ...", for CI jobs and operators. main dispatches to Main when
// its first argument is one of these commands (IsCommand); every other invocation serves.
//
// Every command but restore talks to the server at $STATEHUB_URL (default
// http://127.0.0.1:8000) with the bearer token $STATEHUB_TOKEN, through package client, and
// prints what scripts need on stdout (values, numbers, JSON lines), diagnostics on stderr.
//
// Exit status: 0 on success; 1 when the command failed (an absent key, a refusal, a lock held
// past -wait, a server that cannot be reached); 2 for a usage error; lock exits with its
// command's status (128+N when a signal N ended it).
//
// Concurrency: Run serves one command and returns; it keeps no state between calls, so tests
// run many at once, each with its own Env.
package cli
