package opensearch_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/opensearch"
	"github.com/overture-music/overture/internal/search/searchtest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var seq atomic.Int64

// open gives each test its own alias (and so its own indices) on the
// package's node.
func open(t *testing.T) search.Store {
	url := testenv.OpenSearch(t)
	alias := fmt.Sprintf("t%d-%s", seq.Add(1), strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())))
	st, err := opensearch.Open(t.Context(), url, alias)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	searchtest.Run(t, open)
}
