package jslib

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

//go:embed src/*.ts statehub.d.ts global.d.ts README.md npm/package.json
var files embed.FS

// Asset is one served file.
type Asset struct {
	Body        []byte
	ContentType string
	// ETag is a quoted hash of Body.
	ETag string
}

// Bundle holds the client in the forms the server serves.
type Bundle struct {
	Script Asset // minified IIFE for <script src>: globals Statehub and AtomKV, declarative elements
	Module Asset // minified ES module
	Types  Asset // statehub.d.ts, then the script tag's globals (global.d.ts)
}

const jsType = "text/javascript; charset=utf-8"

// mangledProps matches the property names that bundling shortens: those ending in "_".
const mangledProps = `_$`

// Build bundles the embedded sources. It takes a few milliseconds; call it once at start-up.
func Build() (*Bundle, error) {
	script, err := build("src/script.ts", api.FormatIIFE)
	if err != nil {
		return nil, err
	}
	module, err := build("src/module.ts", api.FormatESModule)
	if err != nil {
		return nil, err
	}
	types, err := servedTypes()
	if err != nil {
		return nil, err
	}
	return &Bundle{
		Script: asset(script, jsType),
		Module: asset(module, jsType),
		Types:  asset(types, "application/typescript; charset=utf-8"),
	}, nil
}

// servedTypes is statehub.d.ts (the module's declarations) followed by the declare global block of
// global.d.ts: one file for the module and for the script tag.
func servedTypes() ([]byte, error) {
	module, err := files.ReadFile("statehub.d.ts")
	if err != nil {
		return nil, err
	}
	global, err := files.ReadFile("global.d.ts")
	if err != nil {
		return nil, err
	}
	_, block, ok := strings.Cut(string(global), "\ndeclare global {")
	if !ok {
		return nil, errors.New("jslib: global.d.ts has no declare global block")
	}
	return append(module, "\n// The globals of the script tag (global.d.ts).\ndeclare global {"+block...), nil
}

func asset(body []byte, contentType string) Asset {
	sum := sha256.Sum256(body)
	return Asset{Body: body, ContentType: contentType, ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

func build(entry string, format api.Format) ([]byte, error) {
	r := api.Build(api.BuildOptions{
		EntryPoints:       []string{entry},
		Bundle:            true,
		Format:            format,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsNone,
		Charset:           api.CharsetUTF8,
		LogLevel:          api.LogLevelSilent,
		Plugins:           []api.Plugin{embedded},
		// Internal members end in "_" (Subscription.position_, Client.transport_) and are renamed to
		// short names: readable sources, a small bundle. Public names (statehub.d.ts, AtomKV) and the
		// protocol's field names never end in "_"; TestPublicNames checks that they survive.
		MangleProps: mangledProps,
	})
	if len(r.Errors) > 0 {
		msgs := api.FormatMessages(r.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, errors.New("jslib: bundling " + entry + ": " + strings.Join(msgs, "\n"))
	}
	if len(r.OutputFiles) != 1 {
		return nil, errors.New("jslib: bundling " + entry + ": no output")
	}
	return r.OutputFiles[0].Contents, nil
}

// embedded makes esbuild read the sources from the embedded file system.
var embedded = api.Plugin{
	Name: "embedded",
	Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: `.*`}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
			p := a.Path
			if a.Kind != api.ResolveEntryPoint {
				if !strings.HasPrefix(p, ".") {
					return api.OnResolveResult{}, errors.New("only relative imports are embedded: " + p)
				}
				p = path.Join(path.Dir(a.Importer), p)
			}
			if !strings.HasSuffix(p, ".ts") {
				p += ".ts"
			}
			return api.OnResolveResult{Path: path.Clean(p), Namespace: "embedded"}, nil
		})
		b.OnLoad(api.OnLoadOptions{Filter: `.*`, Namespace: "embedded"}, func(a api.OnLoadArgs) (api.OnLoadResult, error) {
			src, err := fs.ReadFile(files, a.Path)
			if err != nil {
				return api.OnLoadResult{}, err
			}
			s := string(src)
			return api.OnLoadResult{Contents: &s, Loader: api.LoaderTS}, nil
		})
	},
}
