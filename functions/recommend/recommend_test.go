package recommendfn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	recommendfn "github.com/overture-music/overture/functions/recommend"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(killChildEnv) != "" {
		os.Exit(killChild())
	}
	testenv.Main(m)
}

// seed stores planted listening in the statistics store st, as the
// stats-writer would, and returns the generator (its catalogue's clusters).
func seed(t *testing.T, st stats.Store) *listengen.Generator {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	g, err := listengen.New(listengen.Config{Seed: 3, Listeners: 300, Artists: 80, Tracks: 1200, Listens: 24_000, Start: start, End: start.AddDate(0, 0, 28), Clusters: 4})
	require.NoError(t, err)
	var rows []stats.Row
	flush := func() {
		_, err := st.Write(ctx, rows)
		require.NoError(t, err)
		rows = rows[:0]
	}
	tracks := g.Tracks()
	require.NoError(t, g.Each(ctx, func(l listengen.Listen) error {
		tr := tracks[l.Track]
		stream, scrobble := listens.Counts(l.DurationMS, l.PlayedMS)
		el := eventtype.Listen{ListenedAt: l.At.Unix(), ArtistName: tr.ArtistName, TrackName: tr.Name, TrackID: tr.ID,
			DurationMS: l.DurationMS, PlayedMS: l.PlayedMS, Stream: stream, Scrobble: scrobble, Skipped: l.Skipped}
		el.ID = listens.ListenID(l.UserID, el)
		rows = append(rows, stats.Row{UserID: l.UserID, Listen: el})
		if len(rows) == 2000 {
			flush()
		}
		return nil
	}))
	flush()
	return g
}

func tick(at time.Time) event.Event {
	e := event.New()
	e.SetID(fmt.Sprintf("tick-%d", at.Unix()))
	e.SetType(eventtype.Ping)
	e.SetSource(recommendfn.RecomputeSource)
	e.SetTime(at)
	return e
}

// TestRecomputeStoresEveryListenersRecommendations: a tick turns the
// statistics' listens into stored results for every listener with history —
// tracks they have not played, "because" tracks they have, of the same
// planted taste — and a redelivered tick rewrites nothing, a later one
// replaces everything.
func TestRecomputeStoresEveryListenersRecommendations(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Pool(t)
	f := recommendfn.New()
	f.Pool, f.Log, f.Size = pool, slog.New(slog.DiscardHandler), 20
	require.NoError(t, f.Start(ctx, map[string]string{"DATABASE_URL": "unused"}))
	t.Cleanup(func() { _ = f.Stop(ctx) })
	g := seed(t, f.Stats) // STATS_BACKEND unset: postgres, on the same database

	at := g.Config().End
	_, err := f.Handle(ctx, tick(at))
	require.NoError(t, err)

	var users int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT user_id) FROM stats_listen WHERE scrobble OR skipped`).Scan(&users))
	var stored int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM recommend_result WHERE made_at = $1`, at).Scan(&stored))
	require.Equal(t, users, stored, "every listener with counted listens has a result")

	cluster := map[string]int{}
	for _, tr := range g.Tracks() {
		cluster[tr.ID] = tr.Cluster
	}
	store := result.Store{Pool: pool}
	same, total := 0, 0
	for _, l := range g.Listeners()[:40] {
		r, err := store.Get(ctx, l.ID)
		if err != nil {
			continue // joined late, nothing counted
		}
		var body result.Body
		require.NoError(t, json.Unmarshal(r.Body, &body))
		played := map[string]bool{}
		rows, err := pool.Query(ctx, `SELECT DISTINCT track_id FROM stats_listen WHERE user_id = $1 AND (scrobble OR skipped)`, l.ID)
		require.NoError(t, err)
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			played[id] = true
		}
		require.NoError(t, rows.Err())
		require.Len(t, body.Sections, 2)
		require.Len(t, body.Sections[0].Tracks, 20, "the daily mix is full")
		for _, sec := range body.Sections {
			for _, tr := range sec.Tracks {
				require.False(t, played[tr.TrackID], "%s recommends %s, which %s played", sec.ID, tr.TrackID, l.ID)
				if tr.Because != "" {
					require.True(t, played[tr.Because], "because of %s, which %s never played", tr.Because, l.ID)
					total++
					if cluster[tr.Because] == cluster[tr.TrackID] {
						same++
					}
				}
			}
		}
	}
	require.Greater(t, total, 100)
	require.Greater(t, float64(same)/float64(total), 0.7, "'because you listened to' names a track of the same taste")

	run, err := f.Recompute(ctx, at)
	require.NoError(t, err)
	require.Zero(t, run.Stored, "the same tick again rewrites nothing")
	run, err = f.Recompute(ctx, at.Add(6*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, users, run.Stored, "a later tick replaces every result")
}

// results is every stored result's listener and ETag (a hash of the body).
func results(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT user_id, etag FROM recommend_result`)
	require.NoError(t, err)
	out := map[string]string{}
	var user, etag string
	_, err = pgx.ForEachRow(rows, []any{&user, &etag}, func() error { out[user] = etag; return nil })
	require.NoError(t, err)
	return out
}

// On STATS_BACKEND=clickhouse (the embedded chDB) the recompute reads the
// listens from ClickHouse and stores, byte for byte, the results it stores
// from the same listens on PostgreSQL: the store's Scan hands both the
// same listens in the same order.
func TestRecomputeOnClickHouse(t *testing.T) {
	ctx := context.Background()
	start := func(cfg map[string]string) (*recommendfn.Function, *pgxpool.Pool) {
		pool := postgrestest.Pool(t)
		f := recommendfn.New()
		f.Pool, f.Log, f.Size = pool, slog.New(slog.DiscardHandler), 20
		require.NoError(t, f.Start(ctx, cfg))
		t.Cleanup(func() { _ = f.Stop(ctx) })
		return f, pool
	}
	cfg := statstest.Config(t)
	cfg["DATABASE_URL"] = "unused" // the results' database is the pool set
	ch, chPool := start(cfg)
	pg, pgPool := start(map[string]string{"DATABASE_URL": "unused"})
	ok, err := ch.Ready(ctx)
	require.NoError(t, err)
	require.True(t, ok)

	g := seed(t, ch.Stats)
	seed(t, pg.Stats)
	at := g.Config().End
	_, err = ch.Handle(ctx, tick(at))
	require.NoError(t, err)
	run, err := pg.Recompute(ctx, at)
	require.NoError(t, err)

	require.Greater(t, run.Listeners, 200, "the planted listeners were read")
	fromCH := results(t, chPool)
	require.Len(t, fromCH, run.Listeners, "every listener with counted listens has a result")
	require.Equal(t, results(t, pgPool), fromCH)
}

// A statistics backend that does not exist fails the start, naming the
// setting.
func TestUnknownBackendFailsStart(t *testing.T) {
	_, err := recommendfn.ReadConfig(map[string]string{"DATABASE_URL": "postgres://x", "STATS_BACKEND": "mysql"})
	require.ErrorContains(t, err, "STATS_BACKEND")
}
