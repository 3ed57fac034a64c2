package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search/backend"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/reindex"
	"github.com/overture-music/overture/internal/telemetry"
)

// runReindex rebuilds the search read model from the catalog tables into a
// new index and swaps the alias; readers keep the old index until the swap.
// Defaults come from the same keys the indexer and the query API read.
func runReindex(ctx context.Context, args []string) error {
	cfg := function.Config()
	fs := flag.NewFlagSet("reindex", flag.ContinueOnError)
	backendName := fs.String("backend", orDefault(cfg["SEARCH_BACKEND"], "bleve"), "search backend: bleve or opensearch (SEARCH_BACKEND)")
	dir := fs.String("dir", orDefault(cfg["SEARCH_DIR"], ".data/search"), "Bleve store directory (SEARCH_DIR)")
	url := fs.String("url", orDefault(cfg["OPENSEARCH_URL"], "http://127.0.0.1:9200"), "OpenSearch base URL (OPENSEARCH_URL)")
	index := fs.String("index", orDefault(cfg["OPENSEARCH_INDEX"], "overture-tracks"), "OpenSearch alias readers use (OPENSEARCH_INDEX)")
	dbURL := fs.String("database-url", cfg["DATABASE_URL"], "catalog database (DATABASE_URL)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: overture reindex [flags]\n\nRebuilds the search index from the catalog tables and swaps it in with no\ndowntime for readers. With Bleve the store must not be open in another process\n(stop `make run` first); with OpenSearch the running indexer follows the\nrebuild by itself.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *dbURL == "" {
		fmt.Fprintln(os.Stderr, "overture reindex: no catalog database: set DATABASE_URL or --database-url")
		return errUsage
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("command", "reindex")
	pool, err := postgres.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := backend.Open(ctx, map[string]string{
		"SEARCH_BACKEND": *backendName, "SEARCH_DIR": *dir, "OPENSEARCH_URL": *url, "OPENSEARCH_INDEX": *index,
	})
	if errors.Is(err, bleve.ErrInUse) {
		return fmt.Errorf("%w; with SEARCH_BACKEND=bleve the platform owns the index while it runs", err)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := reindex.Run(ctx, pool.Pool, store, log)
	if err != nil {
		return err
	}
	fmt.Printf("reindexed %d published tracks into %s in %s; readers now use it\n", st.Copied, st.Index, st.Duration.Round(1e6))
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
