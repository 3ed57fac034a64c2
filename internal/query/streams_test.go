package query_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// counting counts the requests a server answers.
type counting struct {
	n    atomic.Int64
	next http.Handler
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/stream-counts" {
		c.n.Add(1)
	}
	c.next.ServeHTTP(w, r)
}

// listensService starts the real listens service on its own database, with
// streams of track1 (3), track2 (1) and another track (5) in its statistics
// store, and returns its URL and a count of the stream-count requests it
// answered.
func listensService(t *testing.T) (string, *counting) {
	t.Helper()
	ctx := context.Background()
	pool := postgrestest.Pool(t, stats.Migrate)
	store := stats.NewPG(pool)
	var rows []stats.Row
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{track1.ID, track1.ID, track1.ID, track2.ID, "other", "other", "other", "other", "other"} {
		l := eventtype.Listen{ListenedAt: at.Add(time.Duration(i) * time.Minute).Unix(), ArtistName: "Кино", TrackName: "t", TrackID: id,
			DurationMS: 200_000, PlayedMS: 200_000, Stream: true, Scrobble: true}
		l.ID = listens.ListenID("u", l)
		rows = append(rows, stats.Row{UserID: "u", Listen: l})
	}
	// A play of 10 s is no stream.
	skip := eventtype.Listen{ListenedAt: at.Add(-time.Hour).Unix(), ArtistName: "Кино", TrackName: "t", TrackID: track1.ID, DurationMS: 200_000, PlayedMS: 10_000, Skipped: true}
	skip.ID = listens.ListenID("u", skip)
	rows = append(rows, stats.Row{UserID: "u", Listen: skip})
	_, err := store.Write(ctx, rows)
	require.NoError(t, err)

	policies, err := os.ReadFile("../../brokers/eventpolicies.yaml")
	require.NoError(t, err)
	br, err := broker.New(ctx, broker.Config{Pool: pool, Objects: functiontest.Objects(t, brokertest.BrokerYAML+"---\n"+string(policies)),
		Log: slog.New(slog.DiscardHandler), Resolve: func(string) (function.Handler, bool) { return &functiontest.Recorder{}, true }})
	require.NoError(t, err)
	redisURL := testenv.Redis(t)
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	svc := listens.New()
	svc.Pool, svc.Redis, svc.Stats, svc.Verifier = pool, rdb, store, tokentest.New(t).Verifier()
	svc.Publisher, svc.Log = br.As(identity.Subject(listens.Name)), slog.New(slog.DiscardHandler)
	require.NoError(t, svc.Start(ctx, map[string]string{"DATABASE_URL": "unused", "REDIS_URL": redisURL, "PUBLIC_BASE_URL": "http://overture.test"}))
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	c := &counting{next: svc}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv.URL, c
}

// setupStreams is setup with the query service asking listensURL for
// stream counts, cached in the test's Redis.
func setupStreams(t *testing.T, listensURL string) (*env, *redis.Client) {
	t.Helper()
	st, err := bleve.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	redisURL := testenv.Redis(t)
	cache, err := hotcache.Open(t.Context(), redisURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	e := &env{t: t, store: st, cache: cache, redisURL: redisURL}
	e.svc = query.NewWith(st, nil, cache)
	e.svc.Streams = &query.StreamCounts{URL: listensURL, Redis: rdb, Client: &http.Client{Timeout: query.StreamCountTimeout}, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(e.svc)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.apply(10, track1, track2)
	return e, rdb
}

// Track, album and artist cards carry each track's all-time streams (the
// album its tracks' sum) from the listens service: one request per answer
// for all its tracks, then from Redis for a minute.
func TestCardsCarryStreamCounts(t *testing.T) {
	t.Parallel()
	listensURL, asked := listensService(t)
	e, rdb := setupStreams(t, listensURL)

	tc := decode[query.TrackCard](t, e.get("/v1/tracks/"+track1.ID))
	require.NotNil(t, tc.Streams, "the track card has its count")
	require.Equal(t, int64(3), *tc.Streams, "three streams; the 10-second play is none")
	require.Equal(t, int64(1), asked.n.Load())

	r := e.get("/v1/albums/" + album.ID)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	ac := decode[query.AlbumCard](t, r)
	require.Len(t, ac.Tracks, 2)
	got := map[string]int64{}
	for _, tr := range ac.Tracks {
		require.NotNil(t, tr.Streams, "%s", r.body)
		got[tr.ID] = *tr.Streams
	}
	require.Equal(t, map[string]int64{track1.ID: 3, track2.ID: 1}, got)
	require.NotNil(t, ac.Streams)
	require.Equal(t, int64(4), *ac.Streams, "the album's streams are its tracks'")
	require.Equal(t, int64(2), asked.n.Load(), "one request for the album's tracks (track1's count was cached)")

	ar := decode[query.ArtistCard](t, e.get("/v1/artists/"+kino.ID))
	require.Len(t, ar.TopTracks, 2)
	for _, tr := range ar.TopTracks {
		require.NotNil(t, tr.Streams)
	}
	require.Equal(t, int64(2), asked.n.Load(), "every count was in Redis")
	ttl, err := rdb.TTL(t.Context(), "query:streams:"+track2.ID).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, query.StreamCountTTL)

	// Once the cached counts expire, the next answer asks again.
	require.NoError(t, rdb.Del(t.Context(), "query:streams:"+track1.ID, "query:streams:"+track2.ID).Err())
	ac = decode[query.AlbumCard](t, e.get("/v1/albums/"+album.ID))
	require.Equal(t, int64(4), *ac.Streams)
	require.Equal(t, int64(3), asked.n.Load())
}

// Cards without counts, not errors, when the listens service is down,
// still starting (503), or hangs; a failed listens service is left alone
// for a few seconds instead of costing every answer a timeout.
func TestCardsWithoutStreamCountsWhenListensIsDown(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	starting := httptest.NewServer(listens.New()) // not started: 503 problem
	t.Cleanup(starting.Close)
	var hung atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)

	for _, c := range []struct{ name, url string }{{"Down", closed.URL}, {"Starting", starting.URL}, {"Hangs", hang.URL}} {
		t.Run(c.name, func(t *testing.T) {
			e, _ := setupStreams(t, c.url)
			begin := time.Now()
			r := e.get("/v1/albums/" + album.ID)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.NotContains(t, string(r.body), `"streams"`, "no counts rather than wrong ones")
			ac := decode[query.AlbumCard](t, r)
			require.Len(t, ac.Tracks, 2, "the card itself is whole")
			require.Nil(t, ac.Streams)
			require.Less(t, time.Since(begin), 30*time.Second, "bounded by the stream-count timeout (%s), not the listens service", query.StreamCountTimeout)
			r = e.get("/v1/tracks/" + track1.ID)
			require.Equal(t, http.StatusOK, r.status)
			require.False(t, strings.Contains(string(r.body), `"streams"`))
			var tr query.TrackCard
			require.NoError(t, json.Unmarshal(r.body, &tr))
			require.Equal(t, track1.Title, tr.Title)
		})
	}
	require.Equal(t, int64(1), hung.Load(), "after the hung request timed out, the second answer did not ask again")
}
