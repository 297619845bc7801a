// Package static holds Statehub's browser pages, embedded in the binary: no build step, plain
// HTML, CSS and JavaScript.
//
//   - console.html (console.js, console.css), served at "/" to a browser navigation
//     (web.Config.Console = Console): a tree of the browsed path whose subtrees expand in place
//     (a children listing each), a filter over the loaded keys, and a detail pane that edits a
//     value as JSON text with compare-and-swap, creates keys (a JSON value or a file, with an
//     optional TTL), deletes them (conditional on the revision shown) and increments counters.
//     Stored files show their type, size, SHA-256, a download link and an image preview; locks
//     their owner, fence and expiry in the browser's local time. A pane logs the live events of
//     the browsed subtree; the header shows /.health (status, key count, seq) and the stream's
//     state. The keyboard works throughout (arrows in the tree, "/" to filter).
//   - /.demo/counter: a live view counter (data-statehub-count) and its SVG badge.
//   - /.demo/board: a collaborative board of draggable notes, moved with compare-and-swap, and a
//     presence list of who is in the room.
//
// The console's transports: one WebSocket (/.ws) for listings, the subscription to the browsed
// subtree (resumed from its last position after a reconnect; a reset reloads) and write checks;
// HTTP for one key's bytes (GET, PUT with X-Revision, DELETE, ?incr, downloads and uploads).
//
// Values stay JSON text from the server to the screen and back: the console never turns a value
// into JavaScript numbers and back. The editor holds the text GET answered and sends the
// textarea's text as the PUT body; listings and frames are split by a small scanner that keeps
// each value's source text; Format re-indents the text token by token. So 12345678901234567890
// and 1.50 are shown and saved as written.
//
// Edit controls appear only where the token may write. The check is cheap and writes nothing: a
// compare-and-swap to revision 2^62, which no key can be at, over the WebSocket, once per
// browsed or expanded prefix (for a key directly under it) and once per opened key, cached until
// the token changes. The server checks the grant first, so revision_conflict means "may write"
// and 401/403 "may not". A write answered 401 or 403 also hides the controls of its key.
//
// A token pasted into the console is kept in sessionStorage only (per tab), sent as
// Authorization: Bearer and in the WebSocket's first message, and in a download link's token
// query parameter. Listing "/" needs the admin token; the page says so.
//
// TTLs: a TTL is set on create and save (?ttl=); a save without one makes the key permanent, as
// every plain write does. The API does not report a key's expiry yet: the console shows one
// where a listing entry carries "expires" (RFC 3339).
//
// Pages (web.Config.Pages) serves /.demo/<name> as <name>.html and the pages' .js and .css files.
// Every page writes data with textContent or attributes (never innerHTML), and is served with a
// Content-Security-Policy that allows scripts, styles and connections to its own origin only.
package static
