// Command overture is the operator's and developer's entry point: `overture dev`
// brings up the whole platform on one machine; the other subcommands run one
// function or service standalone, inspect the dead-letter queue, create admins
// and rebuild read models. See `overture help`.
package main

import (
	"os"

	"github.com/overture-music/overture/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
