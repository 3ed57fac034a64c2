package reindex_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/opensearch"
	"github.com/overture-music/overture/internal/search/reindex"
	"github.com/overture-music/overture/internal/search/searchtest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const published = 600

func catalogDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool, "catalog", os.DirFS("../../catalog/migrations")); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, fmt.Sprintf(`
INSERT INTO genre (id, name) VALUES ('rock', 'Rock');
INSERT INTO artist (id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'Аквариум');
INSERT INTO album (id, title, artist_id, release_year) VALUES ('22222222-2222-4222-8222-222222222222', 'Радио Африка', '11111111-1111-4111-8111-111111111111', 1983);
INSERT INTO track (id, title, album_id, genre_id, popularity, state, published_at)
SELECT gen_random_uuid(), 'Song ' || i, '22222222-2222-4222-8222-222222222222', 'rock', i,
       CASE WHEN i <= %d THEN 'published' ELSE 'draft' END, now()
  FROM generate_series(1, %d + 50) i;
INSERT INTO track_artist (track_id, artist_id) SELECT id, '11111111-1111-4111-8111-111111111111' FROM track;`, published, published))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestReindex(t *testing.T) {
	backends := map[string]func(t *testing.T) search.Store{
		"bleve": func(t *testing.T) search.Store {
			st, err := bleve.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
		"opensearch": func(t *testing.T) search.Store {
			st, err := opensearch.Open(t.Context(), testenv.OpenSearch(t), "reindex-"+uuid.NewString()[:8])
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			pool := catalogDB(t)
			st := open(t)
			// The read model has drifted: a document for a track that no
			// longer exists, and nothing for the catalog's tracks.
			ghost := search.Track{ID: uuid.NewString(), Title: "Song ghost", Artists: []search.Artist{{ID: "x", Name: "Ghost"}}}
			var seed []search.Op
			for i := range 50 {
				seed = append(seed, search.Upsert(search.Track{ID: uuid.NewString(), Title: fmt.Sprintf("Song old %d", i)}, 5))
			}
			if err := st.Apply(ctx, append(seed, search.Upsert(ghost, 5))); err != nil {
				t.Fatal(err)
			}

			stop := searchtest.Readers(st, search.Query{Q: "song", Size: 5}, 1, 3)
			stats, err := reindex.Run(ctx, pool, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
			reads := stop()
			if err != nil {
				t.Fatal(err)
			}
			if reads.Failed > 0 {
				t.Fatalf("%d of %d reads failed or found nothing during the reindex: %s", reads.Failed, reads.Total, reads.First)
			}
			if stats.Copied != published || stats.Live != published {
				t.Fatalf("stats %+v, want %d copied", stats, published)
			}
			if n, _ := st.Count(ctx); n != published {
				t.Fatalf("after swap the alias has %d documents, want %d", n, published)
			}
			if got, _ := st.Get(ctx, ghost.ID); len(got) != 0 {
				t.Fatal("a document with no row survived the reindex")
			}
			res, err := st.Search(ctx, search.Query{Q: "akvarium radio afrika", Size: 1})
			if err != nil || res.Total != published || res.Hits[0].Popularity != published {
				t.Fatalf("search after reindex: %+v %v", res, err)
			}
			t.Logf("%s: %d reads during the reindex, none failed; %+v", name, reads.Total, stats)
		})
	}
}
