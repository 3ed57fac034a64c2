package statswriter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) {
	var child childConfig
	if ok, err := testenv.ChildConfig(killChildEnv, &child); ok {
		if err == nil {
			err = killChild(child)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testenv.Main(m)
}

// batch is the event the listens service publishes for n listens of user,
// a minute apart, going back from 1 December 2026 10:00 and so crossing
// into November's partition; batch(u, n+k) repeats batch(u, n) and adds k.
func batch(t *testing.T, user string, n int) event.Event {
	t.Helper()
	end := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sub := &listens.Submission{ListenType: listens.TypeImport}
	for i := range n {
		l := eventtype.Listen{ListenedAt: end.Add(-time.Duration(i) * time.Minute).Unix(), ArtistName: fmt.Sprintf("Artist %d", i%7),
			TrackName: fmt.Sprintf("Track %d", i%31), ReleaseName: "Album", DurationMS: 200_000}
		l.Stream, l.Scrobble = listens.Counts(l.DurationMS, l.PlayedMS)
		l.ID = listens.ListenID(user, l)
		sub.Listens = append(sub.Listens, l)
	}
	e, err := listens.BatchEvent(user, sub)
	require.NoError(t, err)
	return e
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM stats_listen`).Scan(&n))
	return n
}

// At-least-once delivery: the same batch delivered twice (and a batch
// overlapping it) is counted once per listen.
func TestDuplicateDeliveryCountsOnce(t *testing.T) {
	t.Parallel()
	w := statswriter.New()
	w.Log = slog.New(slog.DiscardHandler)
	pool := functiontest.Start(t, w, nil)
	e := batch(t, "u1", 1000)
	for range 2 {
		_, err := w.Handle(context.Background(), e)
		require.NoError(t, err)
	}
	require.Equal(t, 1000, count(t, pool))
	_, err := w.Handle(context.Background(), batch(t, "u1", 1000+200)) // 200 new, 1000 again
	require.NoError(t, err)
	_, err = w.Handle(context.Background(), batch(t, "u2", 10))
	require.NoError(t, err)
	require.Equal(t, 1210, count(t, pool))
	var parts int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_inherits WHERE inhparent = 'stats_listen'::regclass`).Scan(&parts))
	require.Equal(t, 2, parts, "one partition per month")
}

// A write interrupted in the middle of a batch (its connection killed
// after the first 500 rows were inserted) leaves nothing; the redelivery
// stores the batch whole, once. A Handle whose context is cancelled then
// fails, but its group's write — not bound to one Handle's context, as it
// may hold other events' listens — commits; the redelivery adds nothing.
func TestInterruptedBatchIsRedeliveredWhole(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"CancelledContext", "KilledConnection"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pool := postgrestest.Pool(t, stats.Migrate)
			store := stats.NewPG(pool)
			w := statswriter.New()
			w.Store, w.Log = store, slog.New(slog.DiscardHandler)
			admin := postgrestest.Open(t, pool.Config().ConnString())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			interrupted := false
			store.AfterChunk = func(_ context.Context, n int) error {
				if interrupted {
					return nil
				}
				interrupted = true
				require.Equal(t, 500, n)
				if mode == "CancelledContext" {
					cancel()
					return nil
				}
				_, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'`)
				return errors.Join(err, nil)
			}
			e := batch(t, "u1", 1200)
			_, err := w.Handle(ctx, e)
			require.Error(t, err)
			require.True(t, interrupted)
			if mode == "CancelledContext" {
				require.ErrorIs(t, err, context.Canceled)
				testenv.WaitFor(t, 2*time.Minute, "the group's write commits", func() bool { return count(t, pool) == 1200 })
			} else {
				require.Zero(t, count(t, pool), "nothing of the interrupted batch stays")
			}
			_, err = w.Handle(context.Background(), e)
			require.NoError(t, err)
			_, err = w.Handle(context.Background(), e)
			require.NoError(t, err)
			require.Equal(t, 1200, count(t, pool))
		})
	}
}

// The rollup recomputes charts from the raw listens, as often as it runs;
// rebuild gives the same charts from scratch.
func TestRollupAndRebuild(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, stats.Migrate)
	store := stats.NewPG(pool)
	w := statswriter.New()
	w.Store, w.Log = store, slog.New(slog.DiscardHandler)
	w.Now = func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }
	_, err := w.Handle(context.Background(), batch(t, "u1", 1200))
	require.NoError(t, err)
	ping := event.New()
	ping.SetID("tick-1")
	ping.SetType(eventtype.Ping)
	ping.SetSource(statswriter.RollupSource)
	for range 2 {
		_, err = w.Handle(context.Background(), ping)
		require.NoError(t, err)
	}
	c, err := store.Chart(context.Background(), stats.Daily, stats.Tracks, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Len(t, c.Entries, stats.ChartSize)
	c, err = store.Chart(context.Background(), stats.Daily, stats.Artists, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Len(t, c.Entries, 7)
	var total int64
	for _, e := range c.Entries {
		total += e.Count
	}
	require.Equal(t, int64(599), total, "10:00 back to 14:01 the day before: 599 listens on 30 November, counted once however often the rollup ran")
	before, err := store.Chart(context.Background(), stats.Weekly, stats.Artists, time.Time{})
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), `UPDATE stats_chart SET streams = 0`)
	require.NoError(t, err)
	require.NoError(t, store.Rebuild(context.Background()))
	after, err := store.Chart(context.Background(), stats.Weekly, stats.Artists, time.Time{})
	require.NoError(t, err)
	require.Equal(t, before.Entries, after.Entries)
	require.Equal(t, "2026-11-30", after.PeriodStart, "the week of Monday 30 November")
}
