package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/feed"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type bundle struct {
	srv     *httptest.Server
	auth    *tokentest.Authority
	results result.Store
	stats   stats.Store
}

// setup starts the service on a new database; the statistics store is the
// one Start opens (stats.Open): PostgreSQL on that database, or what the
// settings given name.
func setup(t *testing.T, settings ...map[string]string) *bundle {
	t.Helper()
	ctx := context.Background()
	pool := postgrestest.Pool(t)
	b := &bundle{auth: tokentest.New(t)}
	svc := feed.New()
	svc.Pool, svc.Verifier, svc.Log = pool, b.auth.Verifier(), slog.New(slog.DiscardHandler)
	cfg := map[string]string{"DATABASE_URL": "unused", "PUBLIC_BASE_URL": "http://overture.test"}
	for _, m := range settings {
		maps.Copy(cfg, m)
	}
	require.NoError(t, svc.Start(ctx, cfg))
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	b.stats = svc.Stats
	b.results = result.Store{Pool: pool}
	b.srv = httptest.NewServer(svc)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bundle) get(t *testing.T, user string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/v1/me/recommendations", nil)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+b.auth.Token(t, user, tokentest.Options{}))
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, raw
}

// TestStoredRecommendationsAreServedWithTheirETag: the listener gets the
// bytes the recompute stored, with the stored validator; asking again with
// it answers 304 with no body.
func TestStoredRecommendationsAreServedWithTheirETag(t *testing.T) {
	b := setup(t)
	stored, err := result.New(result.Body{UserID: "ana", Model: "als+cooccurrence-tracks", Version: "run-7", MadeAt: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC),
		Sections: []result.Section{{ID: "because-you-listened", Model: "cooccurrence-tracks", Reason: "often played by the listeners of tracks you played",
			Tracks: []result.Track{{TrackID: "t2", Score: 0.7, Because: "t1"}}}}})
	require.NoError(t, err)
	_, err = b.results.Put(context.Background(), []result.Result{stored})
	require.NoError(t, err)

	res, raw := b.get(t, "ana", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
	require.Equal(t, stored.Body, raw, "served as stored, byte for byte")
	require.Equal(t, stored.ETag, res.Header.Get("ETag"))
	require.Equal(t, "private, max-age=300", res.Header.Get("Cache-Control"))
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))

	res, raw = b.get(t, "ana", map[string]string{"If-None-Match": stored.ETag})
	require.Equal(t, http.StatusNotModified, res.StatusCode)
	require.Empty(t, raw)
	res, _ = b.get(t, "ana", map[string]string{"If-None-Match": `"something-else"`})
	require.Equal(t, http.StatusOK, res.StatusCode, "another validator gets the body")
}

// TestColdStartGetsTheChartsWithoutWhatTheyPlayed: a listener without a
// stored result gets the week's chart, minus the tracks they already played,
// saying why — never an empty page, and never another listener's result;
// the same on either statistics backend (STATS_BACKEND=clickhouse: the
// embedded chDB).
func TestColdStartGetsTheChartsWithoutWhatTheyPlayed(t *testing.T) {
	t.Run("Postgres", func(t *testing.T) { coldStart(t, setup(t)) })
	t.Run("ClickHouse", func(t *testing.T) { coldStart(t, setup(t, statstest.Config(t))) })
}

func coldStart(t *testing.T, b *bundle) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	var rows []stats.Row
	for k, plays := range []int{5, 4, 3} { // t0 most played
		for p := range plays {
			user := fmt.Sprintf("fan%d", p)
			rows = append(rows, stats.Row{UserID: user, Listen: eventtype.Listen{ID: fmt.Sprintf("l-%d-%d", k, p), ListenedAt: now.Add(-time.Duration(k*10+p) * time.Minute).Unix(),
				ArtistName: "a", TrackName: fmt.Sprintf("track %d", k), TrackID: fmt.Sprintf("t%d", k), Stream: true, Scrobble: true}})
		}
	}
	rows = append(rows, stats.Row{UserID: "new", Listen: eventtype.Listen{ID: "l-new", ListenedAt: now.Add(-time.Minute).Unix(), ArtistName: "a", TrackName: "track 0", TrackID: "t0", Stream: true, Scrobble: true}})
	_, err := b.stats.Write(ctx, rows)
	require.NoError(t, err)
	require.NoError(t, b.stats.Rollup(ctx, now.AddDate(0, 0, -7), now))

	res, raw := b.get(t, "new", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
	require.NotEmpty(t, res.Header.Get("ETag"))
	var body result.Body
	require.NoError(t, json.Unmarshal(raw, &body))
	require.Equal(t, "new", body.UserID)
	require.Equal(t, feed.FallbackModel, body.Model)
	require.Len(t, body.Sections, 1)
	require.Contains(t, body.Sections[0].Reason, "not played yet")
	var ids []string
	for _, tr := range body.Sections[0].Tracks {
		ids = append(ids, tr.TrackID)
	}
	require.Equal(t, []string{"t1", "t2"}, ids, "the chart in order, without t0 which they played")

	res, raw = b.get(t, "stranger", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.Unmarshal(raw, &body))
	require.Len(t, body.Sections[0].Tracks, 3, "no plays: the whole chart")
	require.Contains(t, body.Sections[0].Reason, "first recompute")
}

func TestRecommendationsNeedAToken(t *testing.T) {
	b := setup(t)
	res, raw := b.get(t, "", nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), "%s", raw)
}
