package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search/applied"
)

const watermarkUsage = `usage: overture watermark

Shows how far the search read model has applied the catalog: the watermark a
read with ?after=<token> waits for (every catalog change at or below it is
searchable), the CDC progress reports recorded at it, and the transactions
whose changes the indexer has not all applied yet — what holds it back.

environment:
  DATABASE_URL   the catalog database (default ` + defaultDatabaseURL + `)
`

// runWatermark prints applied.Explain for the catalog database.
func runWatermark(ctx context.Context, args []string) error {
	return watermark(ctx, args, os.Stdout, os.Stderr, os.Getenv)
}

func watermark(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 {
		fmt.Fprint(stderr, watermarkUsage)
		if args[0] == "-h" || args[0] == "--help" {
			return nil
		}
		return errUsage
	}
	dbURL := databaseURL(getenv)
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := applied.Migrate(ctx, pool.Pool); err != nil {
		return err
	}
	why, err := applied.Explain(ctx, pool.Pool)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, why)
	return nil
}
