package searchtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/searchtest"
	"github.com/overture-music/overture/internal/testenv"
)

// TestReadersCountFailures: the no-downtime checks of the conformance suite
// and of the reindex test can only fail if Readers counts a read that finds
// too little as failed, and only a read that does.
func TestReadersCountFailures(t *testing.T) {
	t.Parallel()
	st, err := bleve.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	doc := search.Track{ID: searchtest.ID(1), Title: "Reader one", Artists: []search.Artist{{ID: "r", Name: "Readers"}}}
	if err := st.Apply(t.Context(), []search.Op{search.Upsert(doc, 1)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		atLeast  int
		wantFail bool
	}{
		{"EnoughHits", 1, false},
		{"TooFewHits", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop, count := searchtest.ReadersCounting(st, search.Query{Q: "reader", Size: 5}, tc.atLeast, 2)
			testenv.WaitFor(t, 5*time.Minute, "some reads", func() bool { return count() >= 10 })
			r := stop()
			switch {
			case r.Total == 0:
				t.Fatal("no reads in 20 ms")
			case tc.wantFail && (r.Failed != r.Total || !strings.Contains(r.First, "total 1")):
				t.Fatalf("every read finds 1 of %d documents, yet %+v", tc.atLeast, r)
			case !tc.wantFail && (r.Failed != 0 || r.First != ""):
				t.Fatalf("every read finds the document, yet %+v", r)
			}
		})
	}
}
