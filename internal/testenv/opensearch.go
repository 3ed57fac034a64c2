package testenv

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/infra"
)

var (
	osOnce sync.Once
	osNode *infra.OpenSearch
	osErr  error
)

// OpenSearch returns the base URL of the test package's OpenSearch node,
// starting it on first use (one JVM per test package: a node takes seconds to
// start and half a gigabyte of heap). Tests share the node, so each must use
// its own index names. testenv.Main stops it.
func OpenSearch(t testing.TB) string {
	t.Helper()
	osOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		osNode, osErr = infra.StartOpenSearch(ctx, infra.OpenSearchOptions{Dir: filepath.Join(Dir(), "opensearch"), QuickStart: true})
		if osErr == nil {
			group.Add(osNode.Process)
		}
	})
	if osErr != nil {
		t.Fatalf("start test OpenSearch: %v", osErr)
	}
	return osNode.URL()
}
