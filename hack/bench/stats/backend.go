package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/stats"
)

// backend is one store under test.
type backend struct {
	name  string
	about string // how it runs, for the report
	// store takes the bulk load; query the timed queries (the same data,
	// for PostgreSQL a pool whose statements the server logs with their
	// durations).
	store, query stats.Store
	// serverTime returns a function that reports the server-side time of
	// the calls made since, and whether it could be measured.
	serverTime func() func() (time.Duration, bool)
	// settle does what the store needs after a bulk load before it serves
	// (statistics, merges) and measures the storage.
	settle func(ctx context.Context) (string, storage)
	close  func()
}

// pgSettings are the server settings of the measured PostgreSQL: durable
// (fsync and synchronous_commit on, as the platform runs it), with memory
// for an analytical store on a small machine, JIT off (it adds compile time
// to exactly the aggregates a dashboard runs), and each statement's
// duration logged with its application name, which is how the server-side
// times are read.
var pgSettings = map[string]string{
	"shared_buffers":       "1GB",
	"effective_cache_size": "4GB",
	"work_mem":             "64MB",
	"maintenance_work_mem": "512MB",
	"max_wal_size":         "8GB",
	"checkpoint_timeout":   "30min",
	"jit":                  "off",
	"log_line_prefix":      "%a|",
}

const queryApp = "bench-query"

func openBackend(ctx context.Context, name, dir string) (*backend, error) {
	switch name {
	case "postgres":
		return openPG(ctx, dir)
	case "clickhouse":
		return openCH(ctx, dir)
	default:
		return nil, fmt.Errorf("unknown backend %q (postgres, clickhouse)", name)
	}
}

func openPG(ctx context.Context, dir string) (*backend, error) {
	pg, err := infra.StartPostgres(ctx, infra.PostgresOptions{Dir: filepath.Join(dir, "pg"), Settings: pgSettings})
	if err != nil {
		return nil, err
	}
	stop := func() { _ = pg.Process.Stop(30 * time.Second) }
	admin, err := pgxpool.New(ctx, pg.URL("postgres"))
	if err != nil {
		stop()
		return nil, err
	}
	_, err = admin.Exec(ctx, `CREATE DATABASE stats`)
	admin.Close()
	if err != nil {
		stop()
		return nil, fmt.Errorf("create database: %w", err)
	}
	wcfg, err := pgxpool.ParseConfig(pg.URL("stats"))
	if err != nil {
		stop()
		return nil, err
	}
	wcfg.MaxConns = int32(*writers) + 2
	wpool, err := pgxpool.NewWithConfig(ctx, wcfg)
	if err != nil {
		stop()
		return nil, err
	}
	if err := stats.Migrate(ctx, wpool); err != nil {
		wpool.Close()
		stop()
		return nil, err
	}
	qcfg, err := pgxpool.ParseConfig(pg.URL("stats"))
	if err != nil {
		stop()
		return nil, err
	}
	qcfg.MaxConns = 2
	qcfg.ConnConfig.RuntimeParams["application_name"] = queryApp
	qcfg.ConnConfig.RuntimeParams["log_min_duration_statement"] = "0"
	qpool, err := pgxpool.NewWithConfig(ctx, qcfg)
	if err != nil {
		wpool.Close()
		stop()
		return nil, err
	}
	logPath := filepath.Join(pg.Dir, "postgres.log")
	b := &backend{
		name:  "PostgreSQL",
		about: fmt.Sprintf("PostgreSQL 15 (Debian), its own server and data directory, over a loopback TCP socket from pgx; settings %s", settingsLine()),
		store: stats.NewPG(wpool), query: stats.NewPG(qpool),
		close: func() { qpool.Close(); wpool.Close(); stop() },
	}
	b.serverTime = func() func() (time.Duration, bool) {
		f, err := os.Open(logPath)
		if err != nil {
			return func() (time.Duration, bool) { return 0, false }
		}
		off, _ := f.Seek(0, io.SeekEnd)
		return func() (time.Duration, bool) {
			defer f.Close()
			d, ok := loggedDurations(f, off)
			return d, ok
		}
	}
	b.settle = func(ctx context.Context) (string, storage) {
		start := time.Now()
		_, err := wpool.Exec(ctx, `VACUUM (ANALYZE) stats_listen`)
		must(err)
		took := time.Since(start)
		var heap, idx int64
		must(wpool.QueryRow(ctx, `SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0)
			FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'stats_listen'::regclass`).Scan(&heap, &idx))
		rows, err := wpool.Query(ctx, `SELECT p.relname, sum(pg_relation_size(i.inhrelid))::bigint FROM pg_inherits i
			JOIN pg_class p ON p.oid = i.inhparent WHERE p.relkind = 'I' AND p.relname LIKE 'stats_listen%' GROUP BY 1 ORDER BY 2 DESC`)
		must(err)
		var parts []string
		for rows.Next() {
			var name string
			var n int64
			must(rows.Scan(&name, &n))
			parts = append(parts, fmt.Sprintf("%s %s", name, mib(n)))
		}
		must(rows.Err())
		return fmt.Sprintf("`VACUUM (ANALYZE)` %.1f s", took.Seconds()),
			storage{total: heap + idx, detail: fmt.Sprintf("table %s + indexes %s (%s)", mib(heap), mib(idx), strings.Join(parts, ", "))}
	}
	return b, nil
}

func settingsLine() string {
	var s []string
	for _, k := range []string{"shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem", "max_wal_size", "jit"} {
		s = append(s, k+"="+pgSettings[k])
	}
	return "`" + strings.Join(s, " ") + "`, fsync and synchronous_commit on"
}

// loggedDurations sums the durations PostgreSQL logged for the query
// application's statements (parse, bind, execute) from off to the end of
// the log. The server writes the line before it answers the client, so
// after a call returned its lines are there.
func loggedDurations(f *os.File, off int64) (time.Duration, bool) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, false
	}
	var total time.Duration
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, queryApp+"|") {
			continue
		}
		_, rest, ok := strings.Cut(line, "duration: ")
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, " ms")
		if !ok {
			continue
		}
		ms, err := strconv.ParseFloat(num, 64)
		if err != nil {
			continue
		}
		total += time.Duration(ms * float64(time.Millisecond))
		found = true
	}
	return total, found
}

// mib formats a byte count (MiB, or KiB below one MiB).
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
