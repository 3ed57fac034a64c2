// Package postgrestest opens pools on fresh test databases with an owner's
// tables already in place: the first lines of almost every database test,
// kept in one place so each test shows only what it checks.
//
// Packages that use it run their tests under testenv.Main.
package postgrestest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/testenv"
)

// Migration creates an owner's tables, like inbox.Migrate or payment.Migrate.
type Migration func(ctx context.Context, pool *pgxpool.Pool) error

// Pool opens a pool on a fresh test database, runs migrations in order and
// closes the pool when the test ends.
func Pool(t testing.TB, migrations ...Migration) *pgxpool.Pool {
	t.Helper()
	pool := Open(t, testenv.Postgres(t))
	for _, m := range migrations {
		if err := m(context.Background(), pool); err != nil {
			t.Fatalf("migrate the test database: %v", err)
		}
	}
	return pool
}

// Open opens a pool on the database at url and closes it when the test ends.
func Open(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("open a pool on the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
