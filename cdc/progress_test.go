package cdc_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
)

// walPosition is the current WAL insert position.
func (b *bundle) walPosition(t *testing.T) uint64 {
	t.Helper()
	var s string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s))
	v, err := lsn.ParseToken(s)
	require.NoError(t, err)
	return v
}

// checkTiling asserts the reports tile the WAL from the snapshot's (0, cp]
// on without gaps (restarted sessions may overlap), and that they list
// exactly the transactions of the change events with their counts.
func checkTiling(t *testing.T, reports []eventtype.ProgressData, changes []event.Event) (end uint64) {
	t.Helper()
	type span struct{ from, to uint64 }
	var spans []span
	listed := map[uint64]int{}
	for _, r := range reports {
		from, err := lsn.ParseToken(r.From)
		require.NoError(t, err)
		to, err := lsn.ParseToken(r.To)
		require.NoError(t, err)
		require.LessOrEqual(t, from, to)
		spans = append(spans, span{from, to})
		for _, x := range r.Txns {
			c, err := lsn.ParseToken(x.CommitLSN)
			require.NoError(t, err)
			require.True(t, c > from && c <= to, "transaction %d outside its span (%d, %d]", c, from, to)
			if n, ok := listed[c]; ok {
				require.Equal(t, n, x.Changes, "transaction %d reported with different counts", c)
			}
			listed[c] = x.Changes
		}
	}
	require.NotEmpty(t, spans)
	slices.SortFunc(spans, func(a, b span) int { return cmpU(a.from, b.from) })
	require.Zero(t, spans[0].from, "the first report is the snapshot's")
	for _, s := range spans {
		require.LessOrEqual(t, s.from, end, "gap (%d, %d) between reports", end, s.from)
		end = max(end, s.to)
	}
	seen := map[uint64]map[int]bool{}
	for _, e := range changes {
		if e.Extensions()["txindex"] == nil { // snapshot rows
			continue
		}
		c, err := lsn.ParseToken(fmt.Sprint(e.Extensions()["commitlsn"]))
		require.NoError(t, err)
		i, ok := e.Extensions()["txindex"].(int32)
		require.True(t, ok, "txindex %T", e.Extensions()["txindex"])
		if seen[c] == nil {
			seen[c] = map[int]bool{}
		}
		seen[c][int(i)] = true
		if c <= end {
			require.Contains(t, listed, c, "change %s of a reported span is not listed", e.ID())
		}
	}
	for c, n := range listed {
		require.Len(t, seen[c], n, "transaction %d: reported %d changes", c, n)
	}
	return end
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestProgressReportsTileTheWAL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO genre (id, name) VALUES ($1, 'rock')`, uuid.NewString())
	stop := b.run(t)
	snap := b.rec.waitFor(t, "snapshot", func(evs []event.Event) bool { return len(evs) >= 1 })
	require.Len(t, snap, 1)
	rep := b.rec.progress()
	require.True(t, rep[0].Snapshot)
	require.Equal(t, 1, rep[0].Rows)
	require.Equal(t, "0", rep[0].From)

	// Transactions of several sizes, an outbox-only one and WAL of a table
	// CDC does not publish.
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS unrelated (v int)`)
	require.NoError(t, err)
	for i := range 20 {
		track := uuid.NewString()
		b.exec(t, `INSERT INTO track (id, title) VALUES ($1, $2)`, track, fmt.Sprint("t", i))
		if i%3 == 0 {
			b.exec(t, `UPDATE track SET title = title || '!' WHERE id = $1`, track)
		}
		b.exec(t, `INSERT INTO unrelated VALUES ($1)`, i)
	}
	oe := event.New()
	oe.SetID("x1")
	oe.SetSource("/test")
	oe.SetType("music.overture.test.happened.v1")
	require.NoError(t, postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, oe) }))
	want := b.walPosition(t)
	// Without any further catalog change, the reports reach past every
	// commit before: CDC reports WAL it moved over.
	b.rec.waitFor(t, "reports past the last commit", func([]event.Event) bool {
		for _, r := range b.rec.progress() {
			if to, _ := lsn.ParseToken(r.To); to >= want {
				return true
			}
		}
		return false
	})
	checkTiling(t, b.rec.progress(), b.rec.snapshot())

	// A restarted CDC resumes at its confirmed position and says so; the
	// reports still tile.
	stop()
	b.rec.mu.Lock()
	before := len(b.rec.reports)
	b.rec.mu.Unlock()
	b.exec(t, `INSERT INTO track (id, title) VALUES ($1, 'after restart')`, uuid.NewString())
	b.run(t)
	want = b.walPosition(t)
	b.rec.waitFor(t, "reports after the restart", func([]event.Event) bool {
		r := b.rec.progress()
		to, _ := lsn.ParseToken(r[len(r)-1].To)
		return len(r) > before && to >= want
	})
	require.True(t, b.rec.progress()[before].Resume, "the first report of a resumed session is marked")
	checkTiling(t, b.rec.progress(), b.rec.snapshot())
}

// TestWatermarkRequestIsAnsweredAtOnce: a reader's pg_logical_emit_message
// gets a report reaching past it well before the idle report would come.
func TestWatermarkRequestIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, func(c *cdc.Config) { c.StatusInterval = time.Hour })
	b.exec(t, `INSERT INTO track (id, title) VALUES ($1, 'x')`, uuid.NewString())
	b.rec.waitFor(t, "the change", func(evs []event.Event) bool { return len(evs) >= 1 })
	// WAL after the last catalog commit: the token of a writer is past it.
	b.exec(t, `CREATE TABLE unrelated (v int)`)
	b.exec(t, `INSERT INTO unrelated VALUES (1)`)
	want := b.walPosition(t)
	start := time.Now()
	b.exec(t, `SELECT pg_logical_emit_message(false, $1, '')`, lsn.WatermarkPrefix)
	b.rec.waitFor(t, "a report past the request", func([]event.Event) bool {
		for _, r := range b.rec.progress() {
			if to, _ := lsn.ParseToken(r.To); to >= want {
				return true
			}
		}
		return false
	})
	require.Less(t, time.Since(start), 5*time.Second)
	checkTiling(t, b.rec.progress(), b.rec.snapshot())
}
