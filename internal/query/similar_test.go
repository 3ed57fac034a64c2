package query_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/search"
)

// similarEnv is the query service with similar items on its database, and
// a catalogue of three artists: Кино (track1, track2), Ария (aria1) and
// Алиса (alisa1).
func similarEnv(t *testing.T) (*env, *query.SimilarItems, search.Artist, search.Artist, search.Track, search.Track) {
	t.Helper()
	ctx := context.Background()
	e := setup(t, true)
	require.NoError(t, result.Migrate(ctx, e.pool.Pool))
	aria, alisa := search.Artist{ID: uuid.NewString(), Name: "Ария"}, search.Artist{ID: uuid.NewString(), Name: "Алиса"}
	aria1 := search.Track{ID: uuid.NewString(), Title: "Беспечный ангел", Artists: []search.Artist{aria}, Popularity: 300}
	alisa1 := search.Track{ID: uuid.NewString(), Title: "Трасса Е95", Artists: []search.Artist{alisa}, Popularity: 200}
	e.apply(10, track1, track2, aria1, alisa1)
	at := time.Date(2026, 12, 7, 0, 17, 0, 0, time.UTC)
	// What a recompute stores: track1's neighbours (one not published), and
	// Кино's (by the name listens carry, each with their most played track).
	for _, row := range []struct {
		kind, key          string
		neighbours, tracks []string
		scores             []float32
	}{
		{artifact.Track, track1.ID, []string{aria1.ID, unknown, track2.ID}, nil, []float32{0.6, 0.5, 0.4}},
		{artifact.Artist, kino.Name, []string{"Алиса", "Ария", "Nobody Published"}, []string{alisa1.ID, aria1.ID, unknown}, []float32{0.7, 0.3, 0.2}},
	} {
		_, err := e.pool.Exec(ctx, `INSERT INTO recommend_similar (kind, key, version, made_at, neighbours, scores, tracks) VALUES ($1, $2, 'run-1', $3, $4, $5, $6)`,
			row.kind, row.key, at, row.neighbours, row.scores, row.tracks)
		require.NoError(t, err)
	}
	opt, err := redis.ParseURL(e.redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	x := &query.SimilarItems{Store: &artifact.Store{Pool: e.pool.Pool}, Redis: rdb}
	e.svc.Similar = x
	return e, x, aria, alisa, aria1, alisa1
}

// TestSimilarOnPages: a track's page lists the published tracks listeners
// of it also play, with titles and artists, most similar first; an
// artist's page the similar artists with their ids and names; an item
// without stored neighbours has no "similar".
func TestSimilarOnPages(t *testing.T) {
	e, _, aria, alisa, aria1, _ := similarEnv(t)

	r := e.get("/v1/tracks/" + track1.ID)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	page := decode[query.TrackPage](t, r)
	require.Equal(t, track1.Title, page.Title, "the card is as before")
	require.Equal(t, []query.SimilarTrack{
		{ID: aria1.ID, Title: aria1.Title, Artists: aria1.Artists, Score: 0.6},
		{ID: track2.ID, Title: track2.Title, Artists: track2.Artists, Album: track2.Album, Score: 0.4},
	}, page.Similar, "most similar first, the unpublished one left out")

	r = e.get("/v1/tracks/" + track2.ID)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), `"similar"`, "no neighbours stored")

	r = e.get("/v1/artists/" + kino.ID)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	artist := decode[query.ArtistPage](t, r)
	require.Equal(t, kino.Name, artist.Name)
	require.Equal(t, []query.SimilarArtist{{ID: alisa.ID, Name: alisa.Name, Score: 0.7}, {ID: aria.ID, Name: aria.Name, Score: 0.3}}, artist.Similar)
}

// TestSimilarDegradesWhenTheDatabaseIsDown: with the database unreachable
// the pages answer at once without "similar"; lists already in the cache
// are still shown.
func TestSimilarDegradesWhenTheDatabaseIsDown(t *testing.T) {
	e, x, _, _, aria1, _ := similarEnv(t)
	r := e.get("/v1/tracks/" + track1.ID) // cached now
	require.Len(t, decode[query.TrackPage](t, r).Similar, 2)

	dead, err := pgxpool.New(context.Background(), "postgres://overture@127.0.0.1:1/none?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(dead.Close)
	x.Store = &artifact.Store{Pool: dead}

	began := time.Now()
	r = e.get("/v1/artists/" + kino.ID)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.NotContains(t, string(r.body), `"similar"`)
	require.Less(t, time.Since(began), query.SimilarTimeout+time.Second)
	r = e.get("/v1/tracks/" + aria1.ID)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), `"similar"`)

	r = e.get("/v1/tracks/" + track1.ID)
	require.Len(t, decode[query.TrackPage](t, r).Similar, 2, "from the cache")
}
