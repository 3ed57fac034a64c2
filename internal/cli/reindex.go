package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search/backend"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/reindex"
	"github.com/overture-music/overture/internal/telemetry"
)

// reindexConfig is what `overture reindex` reads: the catalog database and
// the search store, from the same keys the indexer and the query API read
// (backend.Config). There is no default store: outside `make run` the
// command rebuilds the store it is told to, or stops naming the key.
type reindexConfig struct {
	DatabaseURL string
	Search      backend.Config
}

// Read fills c from r; every problem is recorded on r.
func (c *reindexConfig) Read(r *config.Reader) {
	c.DatabaseURL = r.String(postgres.KeyDatabaseURL)
	c.Search.Read(r)
}

// runReindex rebuilds the search read model from the catalog tables into a
// new index and swaps the alias; readers keep the old index until the swap.
// The flags override the environment's keys (reindexConfig).
func runReindex(ctx context.Context, args []string) error {
	cfg := function.Config()
	fs := flag.NewFlagSet("reindex", flag.ContinueOnError)
	flags := []struct {
		key string
		v   *string
	}{
		{"SEARCH_BACKEND", fs.String("backend", "", "search backend: bleve or opensearch (default SEARCH_BACKEND, else bleve)")},
		{"SEARCH_DIR", fs.String("dir", "", "Bleve store directory (default SEARCH_DIR)")},
		{"OPENSEARCH_URL", fs.String("url", "", "OpenSearch base URL (default OPENSEARCH_URL)")},
		{"OPENSEARCH_INDEX", fs.String("index", "", "OpenSearch alias readers use (default OPENSEARCH_INDEX, else overture-tracks)")},
		{postgres.KeyDatabaseURL, fs.String("database-url", "", "catalog database (default DATABASE_URL)")},
	}
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
	for _, f := range flags {
		if *f.v != "" {
			cfg[f.key] = *f.v
		}
	}
	c, err := config.Parse[reindexConfig](cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "overture reindex: %v (set the key or its flag)\n", err)
		return errUsage
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("command", "reindex")
	pool, err := postgres.Open(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := c.Search.Open(ctx)
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
