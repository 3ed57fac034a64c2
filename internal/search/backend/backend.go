// Package backend opens the search store a process is configured for, so the
// indexer, the query API and `overture reindex` pick the same one from the
// same keys:
//
//	SEARCH_BACKEND   bleve (default) | opensearch
//	SEARCH_DIR       Bleve store directory (required for bleve)
//	OPENSEARCH_URL   OpenSearch base URL (required for opensearch)
//	OPENSEARCH_INDEX alias readers use (default overture-tracks)
//
// There are no development defaults here: `make run` sets SEARCH_DIR under
// its data directory (internal/platform), and anywhere else a missing
// directory or URL stops the component at start, naming the key.
package backend

import (
	"context"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/opensearch"
)

// Config names the store.
type Config struct {
	Backend string // SEARCH_BACKEND: bleve or opensearch
	Dir     string // SEARCH_DIR (bleve)
	URL     string // OPENSEARCH_URL (opensearch)
	Index   string // OPENSEARCH_INDEX (opensearch; empty: the package's default)
}

// Read fills c from r; every problem is recorded on r.
// Every key is read whatever the backend (so the keys a component declares
// do not depend on the values it is given); the chosen backend's key is
// then required.
func (c *Config) Read(r *config.Reader) {
	c.Backend = r.StringOr("SEARCH_BACKEND", "bleve")
	c.Dir = r.StringOr("SEARCH_DIR", "")
	c.URL = r.URLOr("OPENSEARCH_URL", "")
	c.Index = r.StringOr("OPENSEARCH_INDEX", "")
	switch {
	case c.Backend == "bleve" && c.Dir == "":
		r.Fail("SEARCH_DIR", "is required with SEARCH_BACKEND=bleve (the index directory)")
	case c.Backend == "opensearch" && c.URL == "":
		r.Fail("OPENSEARCH_URL", "is required with SEARCH_BACKEND=opensearch")
	case c.Backend != "bleve" && c.Backend != "opensearch":
		r.Fail("SEARCH_BACKEND", "%q: want bleve or opensearch", c.Backend)
	}
}

// Open returns the configured store. In one process every Bleve user shares
// one store per directory.
func (c Config) Open(ctx context.Context) (search.Store, error) {
	if c.Backend == "opensearch" {
		return opensearch.Open(ctx, c.URL, c.Index)
	}
	return bleve.Open(c.Dir)
}
