// Command npm writes the npm package of the browser client into a directory: the bundles that
// jslib.Build makes for the server (no other bundler configuration), their declarations,
// package.json, README.md and the repository's LICENSE. Run it from the repository's root:
//
//	go run ./jslib/npm DIR && npm pack ./DIR
//
// e2e/npm.test.mjs packs, installs and uses the package.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/statehub/statehub/jslib"
)

func main() {
	license := flag.String("license", "LICENSE", "the licence file to include")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./jslib/npm [-license FILE] DIR\n\nWrites the npm package of the browser client into DIR.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(flag.Arg(0), *license); err != nil {
		fmt.Fprintln(os.Stderr, "npm:", err)
		os.Exit(1)
	}
}

func write(dir, license string) error {
	b, err := jslib.Build()
	if err != nil {
		return err
	}
	files, err := b.Package()
	if err != nil {
		return err
	}
	if files["LICENSE"], err = os.ReadFile(license); err != nil {
		return err
	}
	// A stale file of an earlier package must not be packed: dist/ is written afresh.
	if err := os.RemoveAll(filepath.Join(dir, "dist")); err != nil {
		return err
	}
	for name, body := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return err
		}
	}
	return nil
}
