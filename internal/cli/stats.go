package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/stats"
)

// runStats is `overture stats rebuild`: the charts are a read model of the
// raw listens, recomputed from them (PostgreSQL: in one transaction, readers
// keep the old charts until it commits; ClickHouse: a new version of each
// chart, readers see the old one until the new one is in). The store is the
// one stats.Open names (STATS_BACKEND and its settings).
func runStats(ctx context.Context, args []string) error {
	cfg := function.Config()
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "statistics database (backend postgres; default DATABASE_URL)")
	backend := fs.String("backend", "", "postgres or clickhouse (default "+stats.KeyBackend+", else postgres)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: overture stats rebuild [flags]\n\nRecomputes every global chart (daily and weekly top 50 tracks and artists)\nfrom the raw listens. ClickHouse: CLICKHOUSE_URL for a server, else the embedded\nchDB at CHDB_LIB_PATH with CHDB_DATA_DIR (not while a platform holds that directory).\n\nflags:")
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "rebuild" {
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	// The flags override the environment; stats.Open reads the result
	// (stats.Config), naming any key that is missing or wrong.
	if *dbURL != "" {
		cfg[postgres.KeyDatabaseURL] = *dbURL
	}
	if *backend != "" {
		cfg[stats.KeyBackend] = *backend
	}
	o, err := stats.Open(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "overture stats rebuild: %v\n", err)
		return errUsage
	}
	defer o.Close()
	began := time.Now()
	if err := o.Rebuild(ctx); err != nil {
		return err
	}
	fmt.Printf("charts rebuilt (%s) in %s\n", o.Backend, time.Since(began).Round(time.Millisecond))
	return nil
}
