package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/telemetry"
)

// runDev runs the embedded platform until Ctrl-C: `overture dev`.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	data := fs.String("data", envOr(platform.KeyDataDir, ".data"), "directory for the dependencies' data (kept between runs)")
	root := fs.String("root", "", "repository root holding brokers/ and triggers/ (default: the module root above the working directory)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: overture dev [-data DIR] [-root DIR]\n\n"+
			"Starts PostgreSQL, Redis, an S3 server and an SMTP sink under DIR (unless DATABASE_URL,\n"+
			"REDIS_URL, S3_ENDPOINT or SMTP_URL point elsewhere), then every function and service,\n"+
			"and prints their URLs. OUTBOX_RELAY=poll|cdc picks the outbox relay.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		r, err := infra.ModuleRoot()
		if err != nil {
			return fmt.Errorf("find brokers/ and triggers/: %w (or pass -root)", err)
		}
		*root = r
	}
	if err := os.Chdir(*root); err != nil {
		return fmt.Errorf("repository root: %w", err)
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv())
	slog.SetDefault(log) // code logging through slog's default logs JSON too
	return platform.Run(ctx, platform.Options{
		Env:     platform.Environ(),
		DataDir: *data,
		Ports:   platform.DefaultPorts(),
		DevPOPs: true,
		Log:     log,
	}, os.Stdout)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
