// Command build bundles the web app (web/src, hls.js) into
// internal/webapp/dist, which the overture binary embeds. hack/deps/webapp.sh
// runs it from the repository root after hack/deps/hlsjs.sh.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/overture-music/overture/internal/webapp/bundle"
)

func main() {
	root := flag.String("root", ".", "repository root")
	out := flag.String("out", "internal/webapp/dist", "output directory (embedded by internal/webapp)")
	flag.Parse()
	m, err := bundle.Build(bundle.Options{Root: *root, Out: *out})
	if err != nil {
		slog.Error("web app build failed", "err", err)
		os.Exit(1)
	}
	var total int64
	for _, n := range m.Files {
		total += n
	}
	fmt.Fprintf(os.Stderr, "webapp: %s, %s (%d files, %d KB) in %s\n", m.Script, m.Style, len(m.Files), total/1024, *out)
}
