package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/stats"
)

// runStats is `overture stats rebuild`: the charts are a read model of the
// raw listens, recomputed from them in one transaction (readers keep the old
// charts until it commits).
func runStats(ctx context.Context, args []string) error {
	cfg := function.Config()
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	dbURL := fs.String("database-url", cfg["DATABASE_URL"], "statistics database (DATABASE_URL)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: overture stats rebuild [flags]\n\nRecomputes every global chart (daily and weekly top 50 tracks and artists)\nfrom the raw listens in stats_listen.\n\nflags:")
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "rebuild" {
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dbURL == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "overture stats rebuild: set DATABASE_URL or --database-url")
		return errUsage
	}
	pool, err := postgres.OpenMigrated(ctx, *dbURL, stats.Migrate)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := stats.NewPG(pool.Pool).Rebuild(ctx); err != nil {
		return err
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM stats_chart`).Scan(&n); err != nil {
		return fmt.Errorf("count chart rows: %w", err)
	}
	fmt.Printf("charts rebuilt: %d chart rows\n", n)
	return nil
}
