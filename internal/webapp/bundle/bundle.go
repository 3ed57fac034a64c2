// Package bundle turns the web app's TypeScript and CSS (web/src) and the
// hls.js npm package into the hashed files internal/webapp embeds, with
// esbuild's Go API: no Node at build time, one binary to build.
//
// It is a package of its own, imported only by the build command
// (internal/webapp/build) and tests, so the overture binary never links
// esbuild.
package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// HLSJSVersion is the hls.js release hack/deps/hlsjs.sh unpacks under
// .cache/hlsjs/<version>/package.
const HLSJSVersion = "1.7.4"

// Manifest is what a build wrote: the page's script and style by their
// hashed names, and every file with its size. internal/webapp reads it.
type Manifest struct {
	Script string           `json:"script"`
	Style  string           `json:"style"`
	Files  map[string]int64 `json:"files"`
}

// Options say where the sources are and where the result goes.
type Options struct {
	// Root is the repository root (web/src and .cache/hlsjs are below it).
	Root string
	// Out is the directory to fill; its previous contents are removed
	// except .gitignore.
	Out string
	// HLSJS is the hls.js package directory; default
	// <Root>/.cache/hlsjs/<HLSJSVersion>/package.
	HLSJS string
}

// Build bundles web/src/main.ts (which imports the CSS) with hls.js into
// Out/assets/main-<hash>.js and .css, writes Out/index.html naming them and
// Out/manifest.json. The same sources give the same names.
func Build(o Options) (Manifest, error) {
	var m Manifest
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return m, fmt.Errorf("bundle: %w", err)
	}
	hls := o.HLSJS
	if hls == "" {
		hls = filepath.Join(root, ".cache", "hlsjs", HLSJSVersion, "package")
	}
	hlsEntry := filepath.Join(hls, "dist", "hls.mjs")
	if _, err := os.Stat(hlsEntry); err != nil {
		return m, fmt.Errorf("bundle: hls.js %s is not unpacked (run hack/deps/hlsjs.sh): %w", HLSJSVersion, err)
	}
	res := api.Build(api.BuildOptions{
		AbsWorkingDir:     root,
		EntryPoints:       []string{filepath.Join("web", "src", "main.ts")},
		EntryNames:        "[name]-[hash]",
		AssetNames:        "[name]-[hash]",
		Outdir:            filepath.Join(root, "web-out-virtual", "assets"),
		Bundle:            true,
		Format:            api.FormatESModule,
		Platform:          api.PlatformBrowser,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifySyntax:      true,
		MinifyIdentifiers: true,
		LegalComments:     api.LegalCommentsEndOfFile,
		Write:             false,
		LogLevel:          api.LogLevelSilent,
		Plugins: []api.Plugin{{
			Name: "hls.js",
			Setup: func(b api.PluginBuild) {
				b.OnResolve(api.OnResolveOptions{Filter: `^hls\.js$`}, func(api.OnResolveArgs) (api.OnResolveResult, error) {
					return api.OnResolveResult{Path: hlsEntry}, nil
				})
			},
		}},
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return m, fmt.Errorf("bundle: esbuild: %s", strings.Join(msgs, "\n"))
	}
	if err := clean(o.Out); err != nil {
		return m, err
	}
	m.Files = map[string]int64{}
	for _, f := range res.OutputFiles {
		name := filepath.Base(f.Path)
		switch {
		case strings.HasPrefix(name, "main-") && strings.HasSuffix(name, ".js"):
			m.Script = "/assets/" + name
		case strings.HasPrefix(name, "main-") && strings.HasSuffix(name, ".css"):
			m.Style = "/assets/" + name
		}
		if err := write(filepath.Join(o.Out, "assets", name), f.Contents); err != nil {
			return m, err
		}
		m.Files["/assets/"+name] = int64(len(f.Contents))
	}
	if m.Script == "" || m.Style == "" {
		return m, errors.New("bundle: esbuild wrote no main script or style")
	}
	var page strings.Builder
	if err := indexPage.Execute(&page, m); err != nil {
		return m, fmt.Errorf("bundle: index.html: %w", err)
	}
	if err := write(filepath.Join(o.Out, "index.html"), []byte(page.String())); err != nil {
		return m, err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("bundle: %w", err)
	}
	return m, write(filepath.Join(o.Out, "manifest.json"), raw)
}

// indexPage is the one HTML document of the app: no inline script or style
// (the Content-Security-Policy forbids both), the hashed bundle, and a
// <noscript> for browsers without JavaScript.
var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark light">
<title>Overture</title>
<link rel="stylesheet" href="{{.Style}}">
<script type="module" src="{{.Script}}"></script>
</head>
<body>
<noscript>Overture needs JavaScript. / Для Overture нужен JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`))

// clean empties dir (keeping .gitignore), creating it when missing.
func clean(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	for _, e := range entries {
		if e.Name() == ".gitignore" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}

func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}
