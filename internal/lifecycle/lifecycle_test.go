package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// widget is a database-backed component the way every Overture component is
// written: it embeds Base and acquires its dependencies through it.
type widget struct {
	lifecycle.Base
	failAfterPool error // Start fails after the pool was acquired
	closed        []string
}

func (w *widget) Start(ctx context.Context, cfg map[string]string) error {
	if _, err := w.OpenPool(ctx, cfg["DATABASE_URL"], func(ctx context.Context, p *pgxpool.Pool) error {
		_, err := p.Exec(ctx, `CREATE TABLE IF NOT EXISTS widget (id int); INSERT INTO widget VALUES (1)`)
		return err
	}); err != nil {
		return err
	}
	w.Hold("cache", func() error { w.closed = append(w.closed, "cache"); return nil }, nil)
	w.Log.Info("widget started")
	return w.failAfterPool
}

const wait = 2 * time.Minute

func env(pools *postgres.Pools, log *slog.Logger) lifecycle.Env {
	return lifecycle.Env{Name: "widget", Log: log, Metrics: prometheus.NewRegistry(), Pools: pools}
}

// A database-backed component is ready only while its database answers:
// not ready during an outage, ready again once the database is back.
func TestReadyFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.NewOutage(t, testenv.Postgres(t))
	pools := &postgres.Pools{}
	t.Cleanup(pools.Close)
	w := &widget{}
	require.NoError(t, lifecycle.Start(ctx, w, env(pools, nil), map[string]string{"DATABASE_URL": db.URL}))
	t.Cleanup(func() { require.NoError(t, lifecycle.Stop(context.Background(), w)) })

	ok, err := lifecycle.Ready(ctx, w)
	require.NoError(t, err)
	require.True(t, ok, "started with its database up, but not ready")

	db.Down()
	testenv.WaitFor(t, wait, "the component to report not ready with the database down", func() bool {
		ok, err := lifecycle.Ready(ctx, w)
		return !ok && err != nil
	})
	_, err = lifecycle.Ready(ctx, w)
	require.ErrorContains(t, err, "database", "the readiness error does not name the dependency")

	db.Up(t)
	testenv.WaitFor(t, wait, "the component to report ready with the database back", func() bool {
		ok, err := lifecycle.Ready(ctx, w)
		return ok && err == nil
	})
}

// A Start that fails gives back everything it acquired: no connection to
// its database remains, and what it held was closed. A failed migration is
// such a failure too.
func TestFailedStartReleases(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		w       *widget
		prepare string // SQL run first on the database
		closed  []string
	}{
		{name: "fails after acquiring", w: &widget{failAfterPool: errors.New("bad setting")}, closed: []string{"cache"}},
		{name: "migration fails", w: &widget{}, prepare: `CREATE VIEW widget AS SELECT 1 AS id`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url := testenv.Postgres(t)
			if c.prepare != "" {
				_, err := postgrestest.Open(t, url).Exec(t.Context(), c.prepare)
				require.NoError(t, err)
			}
			pools := &postgres.Pools{}
			t.Cleanup(pools.Close)
			err := lifecycle.Start(t.Context(), c.w, env(pools, nil), map[string]string{"DATABASE_URL": url})
			require.Error(t, err)
			require.Equal(t, c.closed, c.w.closed)
			require.Zero(t, pools.Held(), "the host still holds a pool for the failed component")
			testenv.WaitFor(t, wait, "at most the test's own session to remain after a failed start", func() bool { return postgrestest.Connections(t, url) <= 1 })
			// The one session left, if any, is the test's own (prepare).
			if c.prepare == "" {
				testenv.WaitFor(t, wait, "no connection to remain after a failed start",
					func() bool { return postgrestest.Connections(t, url) == 0 })
			}
		})
	}
}

// The host's logger reaches the component; a component (or its test) that
// set its own keeps it; Stop is safe before Start and twice.
func TestEnvAndStop(t *testing.T) {
	t.Parallel()
	var hostLogs, ownLogs bytes.Buffer
	url := testenv.Postgres(t)
	pools := &postgres.Pools{}
	t.Cleanup(pools.Close)

	unstarted := &widget{}
	require.NoError(t, lifecycle.Stop(t.Context(), unstarted), "Stop before Start")

	hosted := &widget{}
	require.NoError(t, lifecycle.Start(t.Context(), hosted, env(pools, slog.New(slog.NewTextHandler(&hostLogs, nil))), map[string]string{"DATABASE_URL": url}))
	require.Contains(t, hostLogs.String(), "widget started")

	own := &widget{}
	own.Log = slog.New(slog.NewTextHandler(&ownLogs, nil))
	require.NoError(t, lifecycle.Start(t.Context(), own, env(pools, slog.New(slog.NewTextHandler(&hostLogs, nil))), map[string]string{"DATABASE_URL": url}))
	require.Contains(t, ownLogs.String(), "widget started")
	require.Equal(t, 1, pools.Held(), "two components of one host on one database got two pools")

	require.NoError(t, lifecycle.Stop(t.Context(), hosted))
	require.NoError(t, lifecycle.Stop(t.Context(), hosted))
	require.Equal(t, []string{"cache"}, hosted.closed, "a second Stop released again")
	require.NoError(t, lifecycle.Stop(t.Context(), own))
	require.Zero(t, pools.Held())

	// Without a host the component still gets a logger, a registry and
	// pools, all its own, and gives them back at Stop.
	alone := &widget{}
	require.NoError(t, alone.Start(t.Context(), map[string]string{"DATABASE_URL": url}))
	require.NoError(t, alone.Stop(t.Context()))
	testenv.WaitFor(t, wait, "no connection to remain after Stop", func() bool { return postgrestest.Connections(t, url) == 0 })
}
