// Package backend opens the search store a process is configured for, so the
// indexer, the query API and `overture reindex` pick the same one from the
// same keys:
//
//	SEARCH_BACKEND   bleve (default) | opensearch
//	SEARCH_DIR       Bleve store directory (default .data/search)
//	OPENSEARCH_URL   OpenSearch base URL (default http://127.0.0.1:9200)
//	OPENSEARCH_INDEX alias readers use (default overture-tracks)
package backend

import (
	"context"
	"fmt"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/opensearch"
)

// Open returns the configured store. In one process every Bleve user shares
// one store per directory.
func Open(ctx context.Context, cfg map[string]string) (search.Store, error) {
	switch b := cfg["SEARCH_BACKEND"]; b {
	case "", "bleve":
		dir := cfg["SEARCH_DIR"]
		if dir == "" {
			dir = ".data/search"
		}
		return bleve.Open(dir)
	case "opensearch":
		url := cfg["OPENSEARCH_URL"]
		if url == "" {
			url = "http://127.0.0.1:9200"
		}
		return opensearch.Open(ctx, url, cfg["OPENSEARCH_INDEX"])
	default:
		return nil, fmt.Errorf("SEARCH_BACKEND %q: want bleve or opensearch", b)
	}
}
