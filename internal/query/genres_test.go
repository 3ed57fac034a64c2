package query_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/search/opensearch"
	"github.com/overture-music/overture/internal/testenv"
)

// TestGenres checks GET /v1/genres on both backends: published tracks only
// (an unpublished one is a delete in the read model), sorted by name, cached
// until the next applied change, and unknown parameters refused.
func TestGenres(t *testing.T) {
	t.Parallel()
	t.Run("Bleve", func(t *testing.T) {
		t.Parallel()
		genresOn(t, setup(t, false))
	})
	t.Run("OpenSearch", func(t *testing.T) {
		t.Parallel()
		e := setup(t, false)
		st, err := opensearch.Open(t.Context(), testenv.OpenSearch(t), "query-genres-"+uuid.NewString()[:8])
		if err != nil {
			t.Fatal(err)
		}
		e.store = st
		e.svc = query.NewWith(st, nil, e.cache)
		srv := httptest.NewServer(e.svc)
		t.Cleanup(srv.Close)
		e.url = srv.URL
		genresOn(t, e)
	})
}

func genresOn(t *testing.T, e *env) {
	if r := e.get("/v1/genres"); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"genres":[]}` {
		t.Fatalf("empty catalog: %d %s", r.status, r.body)
	}
	jazz := &search.Genre{ID: "jazz", Name: "Jazz"}
	ambient := &search.Genre{ID: "ambient", Name: "Ambient"}
	tr := func(title string, g *search.Genre) search.Track {
		return search.Track{ID: uuid.NewString(), Title: title, Artists: []search.Artist{kino}, Genre: g}
	}
	a, b, c, d := tr("Rock one", rock), tr("Rock two", rock), tr("Jazz one", jazz), tr("Ambient one", ambient)
	e.apply(10, a, b, c, d)
	// Unpublishing ambient's only track deletes it from the read model.
	if err := e.store.Apply(t.Context(), []search.Op{search.Delete(d.ID, 20)}); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Bump(t.Context(), hotcache.Search, hotcache.Genre(ambient.ID)); err != nil {
		t.Fatal(err)
	}
	r := e.get("/v1/genres")
	if r.status != 200 || r.header.Get("Cache-Control") != "no-cache" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("genres: %d %v %s", r.status, r.header, r.body)
	}
	want := []search.GenreCount{{Genre: *jazz, Tracks: 1}, {Genre: *rock, Tracks: 2}}
	if got := decode[query.Genres](t, r).Genres; !slices.Equal(got, want) {
		t.Fatalf("genres = %+v, want %+v", got, want)
	}
	if !strings.Contains(string(r.body), `"track_count":2`) {
		t.Fatalf("the count is not track_count: %s", r.body)
	}
	if r := e.get("/v1/genres"); r.header.Get("X-Cache") != "hit" {
		t.Fatalf("second read not a cache hit: %s", r.header.Get("X-Cache"))
	}
	// The next applied change shows at once.
	e.apply(30, tr("Jazz two", jazz))
	if got := decode[query.Genres](t, e.get("/v1/genres")).Genres; len(got) != 2 || got[0].Tracks != 2 {
		t.Fatalf("after publishing a second jazz track: %+v", got)
	}
	for _, path := range []string{"/v1/genres?page=2", "/v1/genres?q=rock", "/v1/genres?after=banana"} {
		r := e.get(path)
		if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.body), "invalid-parameter") {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := e.get("/v1/genres?page=2"); !strings.Contains(string(r.body), "parameter page: unknown") {
		t.Errorf("the problem does not name the parameter: %s", r.body)
	}
}
