// Package jslib is Statehub's browser client: TypeScript sources (src/) and hand-written type
// declarations (statehub.d.ts for the module, global.d.ts for the script tag's globals), embedded in
// the binary and bundled with esbuild's Go API when the server starts, so no build output is
// committed and none can go stale.
//
// [Build] produces three assets, which the server serves as is:
//   - Script: a minified IIFE for <script src>; it defines the globals Statehub and AtomKV and binds
//     the declarative data-statehub-* elements (served at / and /statehub.js).
//   - Module: a minified ES module exporting the same API (served at /statehub.mjs).
//   - Types: statehub.d.ts followed by global.d.ts's globals (served at /statehub.d.ts).
//
// [Bundle.Package] lays the same bundles out as the npm package "statehub" (npm/package.json):
// dist/statehub.mjs with dist/statehub.d.mts, dist/statehub.js with dist/global.d.ts, and the
// README; `go run ./jslib/npm DIR` writes it, with the repository's LICENSE, for `npm pack`.
//
// The client API is documented in README.md; the wire protocol it speaks is PROTOCOL.md at the
// root of the repository, typed in src/protocol.ts. The client holds a Transport: the WebSocket, or
// fetch + EventSource when the WebSocket cannot connect (until a later try of the WebSocket
// connects). `npx tsc -p jslib --noEmit` type-checks the sources strictly and checks, in
// test/types.ts, that the implementation matches statehub.d.ts.
//
// Bundling shortens every property name that ends in "_" (the sources' internal members); public
// names and the protocol's fields never end in "_".
package jslib
