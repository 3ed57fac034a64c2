// Package benchmark holds what the benchmark drivers share. Each driver is a
// Go test that hack/bench/<area>.sh runs; it measures its subject beside a
// reference in the same run and writes a markdown section with the ratio.
// For the ratios to mean the same in every section, the drivers start the
// same kind of PostgreSQL server (durable, unlike the test servers), drive
// load the same way, cut percentiles the same way and describe the machine
// in the same words; those pieces live here.
package benchmark

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

// Parallel calls fn(i) for every i in [0,n) from workers goroutines, each
// taking the next i as soon as its previous call returned (a closed loop).
// A goroutine whose call fails stops; Parallel returns the first error once
// all have stopped.
func Parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

// Percentile returns the p-quantile (0 <= p <= 1) of sorted latencies, the
// nearest rank at or above p; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// Machine describes the machine for a report: "2 cores (`GOMAXPROCS=2`),
// <CPU model>, <Go version>".
func Machine() string {
	return fmt.Sprintf("%d cores (`GOMAXPROCS=%d`), %s, %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version())
}

func cpuModel() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, cpu, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	return strings.TrimSpace(cpu)
}

// Goal is a report's verdict on a goal: "met" or, in bold, "not met".
func Goal(met bool) string {
	if met {
		return "met"
	}
	return "**not met**"
}
