// Package functiontest runs functions the way a host does, for tests: Start
// starts one on a fresh test database and stops it when the test ends;
// RunBroker puts functions behind the embedded broker; Recorder is a
// subscriber that records what reaches it. Tests then only say which
// settings differ and what they deliver.
//
// Packages that use it run their tests under testenv.Main.
package functiontest

import (
	"context"
	"log/slog"
	"maps"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

// Function is a function with a lifecycle.
type Function interface {
	function.Handler
	function.Starter
	function.Stopper
}

// Start starts f the way a host does (lifecycle.Start, with a discarding
// logger unless f has its own, a private registry and pools) with cfg plus the DATABASE_URL of a fresh test database
// (unless cfg names one), stops f when the test ends, and returns a pool on
// f's database for the test's own queries.
func Start(t testing.TB, f Function, cfg map[string]string) *pgxpool.Pool {
	t.Helper()
	cfg = maps.Clone(cfg)
	if cfg == nil {
		cfg = map[string]string{}
	}
	if cfg["DATABASE_URL"] == "" {
		cfg["DATABASE_URL"] = testenv.Postgres(t)
	}
	pools := &postgres.Pools{}
	t.Cleanup(pools.Close)
	env := lifecycle.Env{Name: t.Name(), Log: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry(), Pools: pools}
	if err := function.Start(context.Background(), f, env, cfg); err != nil {
		t.Fatalf("start the function: %v", err)
	}
	t.Cleanup(func() {
		if err := function.Stop(context.Background(), f); err != nil {
			t.Errorf("stop the function: %v", err)
		}
	})
	return postgrestest.Open(t, cfg["DATABASE_URL"])
}
