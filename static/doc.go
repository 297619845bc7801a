// Package static holds Statehub's browser pages, embedded in the binary: no build step, plain
// HTML, CSS and JavaScript that use the server's own client script (/statehub.js).
//
//   - console.html, served at "/" to a browser navigation (web.Config.Console = Console): browse
//     the tree, watch values change live, edit with compare-and-swap, delete, increment counters,
//     see locks. An admin token typed into it is kept in sessionStorage only.
//   - /.demo/counter: a live view counter (data-statehub-count) and its SVG badge.
//   - /.demo/board: a collaborative board of draggable notes, moved with compare-and-swap, and a
//     presence list of who is in the room.
//
// Pages (web.Config.Pages) serves /.demo/<name> as <name>.html and the pages' .js and .css files.
// Every page escapes data by writing it with textContent (never innerHTML), and is served with a
// Content-Security-Policy that allows scripts, styles and connections to its own origin only.
package static
