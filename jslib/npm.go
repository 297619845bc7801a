package jslib

import (
	"errors"
	"strings"
)

// Package returns the files of the client's npm package (npm/package.json), by their path in the
// package: the same bundles the server serves, under dist/, with their declarations, and the
// README. The package's LICENSE is the repository's, which the caller adds (go run ./jslib/npm).
//
//   - dist/statehub.mjs: the ES module (exports "." for import), typed by dist/statehub.d.mts;
//   - dist/statehub.js: the classic script (the globals Statehub and AtomKV), typed by dist/global.d.ts
//     (exports "./global", types only);
//   - package.json and README.md.
func (b *Bundle) Package() (map[string][]byte, error) {
	manifest, err := files.ReadFile("npm/package.json")
	if err != nil {
		return nil, err
	}
	readme, err := files.ReadFile("README.md")
	if err != nil {
		return nil, err
	}
	module, err := files.ReadFile("statehub.d.ts")
	if err != nil {
		return nil, err
	}
	global, err := files.ReadFile("global.d.ts")
	if err != nil {
		return nil, err
	}
	// Next to statehub.d.mts, "./statehub.mjs" is how an ES module's declarations name the module.
	const from, to = `from "./statehub";`, `from "./statehub.mjs";`
	if !strings.Contains(string(global), from) {
		return nil, errors.New("jslib: global.d.ts does not import " + from)
	}
	return map[string][]byte{
		"package.json":        manifest,
		"README.md":           readme,
		"dist/statehub.mjs":   b.Module.Body,
		"dist/statehub.js":    b.Script.Body,
		"dist/statehub.d.mts": module,
		"dist/global.d.ts":    []byte(strings.Replace(string(global), from, to, 1)),
	}, nil
}
