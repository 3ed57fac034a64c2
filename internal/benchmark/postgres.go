package benchmark

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/infra"
)

// Server is a PostgreSQL server started for one benchmark run.
type Server struct {
	pg *infra.Postgres
}

// Postgres starts a PostgreSQL server in a temporary directory with fsync
// and synchronous_commit on (its defaults: durable, as in production, where
// internal/testenv's servers run with fsync off), and stops it and removes
// the directory when the test ends.
func Postgres(tb testing.TB) *Server {
	tb.Helper()
	dir, err := os.MkdirTemp("", "overture-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	tb.Cleanup(func() { os.RemoveAll(dir) })
	pg, err := infra.StartPostgres(context.Background(), infra.PostgresOptions{Dir: filepath.Join(dir, "pg")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pg.Stop(10 * time.Second) })
	return &Server{pg: pg}
}

// Database creates an empty database and returns its URL.
func (s *Server) Database(tb testing.TB, name string) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.pg.URL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	return s.pg.URL(name)
}
