// Package testenv gives tests real dependencies: a private PostgreSQL server
// (wal_level=logical) per test package, a fresh database per test, and a
// private Redis per test, all on loopback with data under a temporary directory
// that is removed afterwards.
//
// A package that uses it declares
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so that its servers stop when its tests end. Servers are also started with a
// parent-death signal, so an interrupted `go test` leaves nothing running.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/infra"
)

var (
	root     string
	rootOnce sync.Once
	group    infra.Group

	pgOnce sync.Once
	pg     *infra.Postgres
	pgErr  error
	dbSeq  atomic.Int64
)

// Main runs the package's tests and then stops every server they started.
func Main(m *testing.M) {
	code := m.Run()
	exitMu.Lock()
	for i := len(atExit) - 1; i >= 0; i-- {
		atExit[i]()
	}
	exitMu.Unlock()
	_ = group.Stop()
	if root != "" {
		_ = os.RemoveAll(root)
	}
	os.Exit(code)
}

var (
	exitMu sync.Mutex
	atExit []func()
)

// AtExit registers f to run once the package's tests have ended, before
// Main stops the servers (last registered, first run): for what lives in
// the test process itself, such as the embedded ClickHouse (chDB) session,
// which must be closed before a -race binary exits.
func AtExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	atExit = append(atExit, f)
}

// Dir returns a private directory for this test package's servers.
func Dir() string {
	rootOnce.Do(func() {
		var err error
		root, err = os.MkdirTemp("", "overture-test-")
		if err != nil {
			panic(err)
		}
		_ = os.Chmod(root, 0o755)
	})
	return root
}

// PostgresServer returns the package's PostgreSQL server, starting it on first use.
func PostgresServer(t testing.TB) *infra.Postgres {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pg, pgErr = infra.StartPostgres(ctx, infra.PostgresOptions{Dir: filepath.Join(Dir(), "pg"), Fast: true})
		if pgErr == nil {
			group.Add(pg.Process)
		}
	})
	if pgErr != nil {
		t.Fatalf("start test PostgreSQL: %v", pgErr)
	}
	return pg
}

// Postgres creates a fresh, empty database for the test and returns its URL.
func Postgres(t testing.TB) string {
	t.Helper()
	srv := PostgresServer(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	return srv.URL(name)
}

// Redis starts a private redis-server for the test and returns its URL.
func Redis(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(Dir(), "redis-")
	if err != nil {
		t.Fatalf("redis dir: %v", err)
	}
	r, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: dir})
	if err != nil {
		t.Fatalf("start test Redis: %v", err)
	}
	t.Cleanup(func() { _ = r.Stop(5 * time.Second) })
	return r.URL(0)
}
