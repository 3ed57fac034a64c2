// Package cli implements the overture command. Each subcommand lives in its own
// file; this one only dispatches, so that adding a command touches one line here.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/overture-music/overture/internal/telemetry"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "run the whole platform on this machine (what `make run` does)", runDev},
		{"func", "run one CloudEvents function standalone: overture func NAME", runFunc},
		{"serve", "run one HTTP service standalone: overture serve NAME", runServe},
		{"deploy", "Knative manifests: `deploy render` prints every function and service as a Knative Service", runDeploy},
		{"events", "event tooling: `events dlq list|redrive`, `events doc`", runEvents},
		{"admin", "account administration: `admin create --email E`", runAdmin},
		{"upload", "upload audio files or directories as an admin and follow their ingestion", runUpload},
		{"cdc", "run the CDC relay standalone (posts to K_SINK)", runCDC},
		{"reindex", "rebuild the search read model into a new index and swap the alias", runReindex},
		{"stats", "listening statistics: `stats rebuild` recomputes every chart from the raw listens", runStats},
		{"watermark", "how far search has applied the catalog, and what holds ?after= reads back", runWatermark},
		{"edge", "run one CDN edge POP standalone", runEdge},
		{"s3-source", "run the S3 event source standalone (versitygw's webhook; posts to K_SINK)", runS3Source},
		{"gateway", "run the public gateway on a cluster: every service's routes and the web app on one origin", runGateway},
	}
}

// errUsage marks a usage error already explained to the user.
var errUsage = errors.New("usage")

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := c.run(ctx, args[1:]); err != nil {
			if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
				return 2
			}
			telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).Error("overture "+c.name+" failed", "error", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "overture: unknown command %q\n\n", args[0])
	usage()
	return 2
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: overture COMMAND [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
}
