package bleve_test

import (
	"context"
	"fmt"

	"testing"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/searchtest"
)

func TestConformance(t *testing.T) {
	searchtest.Run(t, func(t *testing.T) search.Store {
		st, err := bleve.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// TestReopen checks that versions and the current generation survive a
// restart: a replay after reopening must not regress anything.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	doc := search.Track{ID: searchtest.ID(1), Title: "Persisted", Artists: []search.Artist{{ID: "p", Name: "P"}}}
	if err := st.Apply(ctx, []search.Op{search.Upsert(doc, 10), search.Delete(searchtest.ID(2), 10)}); err != nil {
		t.Fatal(err)
	}
	rb, err := st.BeginRebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.Apply(ctx, []search.Op{search.Upsert(doc, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := rb.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := doc
	old.Title = "Old"
	if err := st.Apply(ctx, []search.Op{search.Upsert(old, 5), search.Upsert(old, 10)}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got[doc.ID].Title != "Persisted" {
		t.Fatalf("after reopen a replayed older version regressed the document: %+v", got)
	}
}

// BenchmarkApply measures one versioned batch of 50 upserts (what the
// indexer writes per group commit under moderate load) on a 5,000-document
// index; the batch is persisted before Apply returns.
const benchBatch = 50

func BenchmarkApply(b *testing.B) {
	st, err := bleve.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	docs := func(v uint64, n, from int) []search.Op {
		ops := make([]search.Op, n)
		for i := range ops {
			ops[i] = search.Upsert(search.Track{ID: searchtest.ID(from + i), Title: fmt.Sprintf("Song %d", from+i), Artists: []search.Artist{{ID: "a", Name: "Band"}}}, v)
		}
		return ops
	}
	if err := st.Apply(ctx, docs(1, 5000, 0)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := st.Apply(ctx, docs(uint64(i+2), benchBatch, (i*benchBatch)%5000)); err != nil {
			b.Fatal(err)
		}
	}
}
