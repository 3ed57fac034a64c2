package searchindexer_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/catalog/catalogtest"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/testenv"
)

// BenchmarkCatchUp measures how fast the indexer applies a backlog, as after
// a crash (internal/search/chaos waits on it): the change events of every
// row of a catalog written by catalogtest.Workload, delivered 256 at a time
// as the broker does, each with its transaction id and index (so every batch
// checks visibility and records what it applied). One op is the whole
// backlog; events/s is the figure to compare, and cpu-µs/event the
// process's CPU time (user + system: the indexer, Bleve and its merger, the
// client side of PostgreSQL) per event — what decides catch-up on a loaded
// machine, where the indexer gets a small share of a core.
func BenchmarkCatchUp(b *testing.B) {
	ctx := b.Context()
	url := testenv.Postgres(b)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if err := catalog.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := catalogtest.Workload(ctx, pool, 4000, 7); err != nil {
		b.Fatal(err)
	}
	type row struct{ table, col, key string }
	var rows []row
	rs, err := pool.Query(ctx, `
SELECT 'track', 'id', id::text FROM track UNION ALL
SELECT 'album', 'id', id::text FROM album UNION ALL
SELECT 'artist', 'id', id::text FROM artist UNION ALL
SELECT 'genre', 'id', id::text FROM genre UNION ALL
SELECT 'track_artist', 'track_id', track_id::text FROM track_artist UNION ALL
SELECT 'track_rendition', 'track_id', track_id::text FROM track_rendition`)
	if err != nil {
		b.Fatal(err)
	}
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.table, &r.col, &r.key); err != nil {
			b.Fatal(err)
		}
		rows = append(rows, r)
	}
	rs.Close()
	var xid uint32 // a committed transaction: the visibility check passes at once
	if err := pool.QueryRow(ctx, `SELECT txid_current()::bigint % 4294967296`).Scan(&xid); err != nil {
		b.Fatal(err)
	}

	f := searchindexer.New()
	if err := f.Start(ctx, map[string]string{"DATABASE_URL": url, "SEARCH_DIR": b.TempDir()}); err != nil {
		b.Fatal(err)
	}
	defer f.Stop(context.Background())

	// Each round is a transaction of 100 changes at a new commit LSN, so
	// every round rewrites the documents.
	var lsn uint64
	if err := pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	events := func() []event.Event {
		out := make([]event.Event, len(rows))
		for i, r := range rows {
			if i%100 == 0 {
				lsn++
			}
			e := event.New()
			e.SetType(eventtype.CDCChanged(r.table))
			e.SetSource("/overture/cdc/bench")
			e.SetID(strconv.FormatUint(lsn, 10) + "/" + strconv.Itoa(i))
			e.SetExtension("commitlsn", strconv.FormatUint(lsn, 10))
			e.SetExtension("txindex", i%100)
			d := eventtype.ChangeData{After: map[string]any{r.col: r.key}, Op: "u",
				Source: eventtype.ChangeSource{Table: r.table, LSN: lsn, TxID: xid}}
			data, _ := json.Marshal(d)
			_ = e.SetData(event.ApplicationJSON, data)
			out[i] = e
		}
		return out
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	total := 0
	for b.Loop() {
		b.StopTimer()
		evs := events()
		b.StartTimer()
		deliver(b, f, evs)
		total += len(evs)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(total), "cpu-µs/event")
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deliver hands every event to the indexer, 256 at a time.
func deliver(b *testing.B, f *searchindexer.Function, evs []event.Event) {
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, e := range evs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := f.Handle(b.Context(), e); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}
