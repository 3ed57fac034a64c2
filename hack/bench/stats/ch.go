package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/overture-music/overture/internal/stats"
)

// timedExec measures the time spent inside the engine's query call: for
// the embedded chDB that is ClickHouse parsing, planning, executing and
// formatting the answer (JSONEachRow) — what a ClickHouse server would
// spend — and excludes the store's decoding of the answer in Go.
type timedExec struct {
	x  stats.Executor
	ns atomic.Int64
}

func (t *timedExec) Exec(ctx context.Context, sql string) ([]byte, error) {
	start := time.Now()
	b, err := t.x.Exec(ctx, sql)
	t.ns.Add(int64(time.Since(start)))
	return b, err
}

func openCH(ctx context.Context, dir string) (*backend, error) {
	lib, err := filepath.Abs(stats.CHDBLibPath())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("chDB library (run hack/deps/chdb.sh): %w", err)
	}
	x, err := stats.Embedded(lib, filepath.Join(dir, "chdb"))
	if err != nil {
		return nil, err
	}
	tx := &timedExec{x: x}
	st, err := stats.NewCH(ctx, tx, "bench_stats")
	if err != nil {
		return nil, err
	}
	b := &backend{
		name:  "ClickHouse (chDB)",
		about: fmt.Sprintf("chDB %s (ClickHouse 26.7) in this process through internal/stats' purego binding, its own data directory", stats.CHDBVersion),
		store: st, query: st,
		close: func() {},
	}
	b.serverTime = func() func() (time.Duration, bool) {
		start := tx.ns.Load()
		return func() (time.Duration, bool) { return time.Duration(tx.ns.Load() - start), true }
	}
	parts := func(ctx context.Context) (n, bytes, raw int64) {
		out, err := st.Exec(ctx, `SELECT count() AS parts, sum(bytes_on_disk) AS bytes, sum(data_uncompressed_bytes) AS raw
			FROM system.parts WHERE database = 'bench_stats' AND table = 'stats_listen' AND active`)
		must(err)
		var p struct {
			Parts, Bytes, Raw json.Number
		}
		must(json.Unmarshal(out, &p))
		n, _ = p.Parts.Int64()
		bytes, _ = p.Bytes.Int64()
		raw, _ = p.Raw.Int64()
		return n, bytes, raw
	}
	b.settle = func(ctx context.Context) (string, storage) {
		// What the background merges did during the load and in 30 s
		// after it; then OPTIMIZE … FINAL merges each month into one part,
		// the state a server's background merges reach for past months.
		loaded, _, _ := parts(ctx)
		time.Sleep(30 * time.Second)
		waited, _, _ := parts(ctx)
		start := time.Now()
		_, err := st.Exec(ctx, `OPTIMIZE TABLE bench_stats.stats_listen FINAL`)
		must(err)
		took := time.Since(start)
		n, bytes, raw := parts(ctx)
		out, err := st.Exec(ctx, `SELECT column, sum(column_data_compressed_bytes) AS c FROM system.parts_columns
			WHERE database = 'bench_stats' AND table = 'stats_listen' AND active GROUP BY column ORDER BY c DESC`)
		must(err)
		var cols []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var c struct {
				Column string
				C      json.Number
			}
			if json.Unmarshal([]byte(line), &c) == nil {
				if n, _ := c.C.Int64(); n > 0 { // compact (small) parts have no per-column sizes
					cols = append(cols, fmt.Sprintf("%s %s", c.Column, mib(n)))
				}
			}
		}
		return fmt.Sprintf("%d active parts after the load, %d 30 s later; `OPTIMIZE TABLE … FINAL` %.1f s → %d parts", loaded, waited, took.Seconds(), n),
			storage{total: bytes, detail: fmt.Sprintf("parts %s (uncompressed %s, %.1f×); columns: %s", mib(bytes), mib(raw), float64(raw)/float64(max(bytes, 1)), strings.Join(cols, ", "))}
	}
	return b, nil
}
