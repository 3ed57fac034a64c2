// Package applied keeps the search read model's watermark: the WAL position
// up to which every catalog change is searchable. The query API waits on it
// for read-your-writes (?after=<consistency token>).
//
// The watermark is exact, not "the highest change applied": change events
// reach the indexer in parallel (ordered per row only, and redelivered at
// will), so a later change of one row is often applied before an earlier
// change of another. CDC therefore reports its progress (CDCProgress events):
// consecutive spans (from, to] of the WAL, each listing the transactions in it
// that produced change events and how many. The indexer records the spans and,
// per transaction, which change events (by txindex) it has applied. The
// watermark moves from W to the end of a recorded span that starts at or
// before W once every listed transaction after W is complete. Spans reach
// past the last catalog commit (CDC reports WAL it moved over without catalog
// changes, and a reader can ask for a report with RequestWatermark), so a
// token taken after a commit — pg_current_wal_insert_lsn(), which may lie past
// the commit record — is reached too.
//
// The initial snapshot's rows are not counted one by one: its span (0, cp]
// completes when the rebuild it triggers has finished (a rebuild reads the
// whole write model after cp).
//
// It lives in PostgreSQL beside the write model, not in the index, so that it
// is one number for every backend and every reader process.
package applied

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the watermark tables (owner "search-applied"); both the
// indexer and the query API call it, in any order.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "search_applied", migrations)
}

// Change names one applied change event: its transaction's commit LSN and
// its index within the transaction (the txindex extension).
type Change struct {
	CommitLSN uint64
	Index     int
}

// ErrBadProgress marks a progress report that cannot be recorded; retrying
// it will not help.
var ErrBadProgress = errors.New("invalid CDC progress report")

// Progress is a parsed CDCProgress report.
type Progress struct {
	From, To uint64
	Snapshot bool
	Rows     int
	Resume   bool
	Txns     []Txn
}

// Txn is a transaction of a progress report.
type Txn struct {
	CommitLSN uint64
	Changes   int
}

// ParseProgress validates a report's data.
func ParseProgress(d eventtype.ProgressData) (Progress, error) {
	var p Progress
	var err error
	if p.From, err = lsn.ParseToken(d.From); err != nil {
		return p, fmt.Errorf("%w: from: %v", ErrBadProgress, err)
	}
	if p.To, err = lsn.ParseToken(d.To); err != nil {
		return p, fmt.Errorf("%w: to: %v", ErrBadProgress, err)
	}
	if p.To < p.From || p.To > 1<<63-1 {
		return p, fmt.Errorf("%w: span (%d, %d]", ErrBadProgress, p.From, p.To)
	}
	if d.Rows < 0 || (d.Snapshot && p.From != 0) {
		return p, fmt.Errorf("%w: snapshot span (%d, %d] with %d rows", ErrBadProgress, p.From, p.To, d.Rows)
	}
	p.Snapshot, p.Rows, p.Resume = d.Snapshot, d.Rows, d.Resume
	for _, t := range d.Txns {
		c, err := lsn.ParseToken(t.CommitLSN)
		if err != nil {
			return p, fmt.Errorf("%w: commit_lsn: %v", ErrBadProgress, err)
		}
		if c <= p.From || c > p.To || t.Changes <= 0 {
			return p, fmt.Errorf("%w: transaction %d with %d changes outside span (%d, %d]", ErrBadProgress, c, t.Changes, p.From, p.To)
		}
		p.Txns = append(p.Txns, Txn{CommitLSN: c, Changes: t.Changes})
	}
	return p, nil
}

// watermarkSQL is the current watermark, 0 before the chain starts.
const watermarkSQL = `coalesce((SELECT lsn FROM search_applied WHERE id = 1 AND chained), 0)`

// RecordProgress stores a report (idempotent: reports are redelivered, and a
// restarted CDC reports spans again).
func RecordProgress(ctx context.Context, pool *pgxpool.Pool, p Progress) error {
	lsns := make([]int64, len(p.Txns))
	counts := make([]int32, len(p.Txns))
	for i, t := range p.Txns {
		lsns[i], counts[i] = int64(t.CommitLSN), int32(min(t.Changes, 1<<31-1))
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
INSERT INTO search_progress (from_lsn, to_lsn, snapshot, rows, resume)
SELECT $1, $2, $3, $4, $5 WHERE $2 > `+watermarkSQL+`
ON CONFLICT (from_lsn, to_lsn) DO NOTHING`, int64(p.From), int64(p.To), p.Snapshot, p.Rows, p.Resume); err != nil {
			return err
		}
		if len(lsns) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `
INSERT INTO search_txn AS t (commit_lsn, total)
SELECT l, n FROM unnest($1::bigint[], $2::int[]) AS u(l, n) WHERE l > `+watermarkSQL+`
ON CONFLICT (commit_lsn) DO UPDATE SET total = EXCLUDED.total`, lsns, counts)
		return err
	})
	if err != nil {
		return fmt.Errorf("record CDC progress (%d, %d]: %w", p.From, p.To, err)
	}
	return nil
}

// RecordApplied notes change events as applied (idempotent). Call it only
// once they are searchable.
func RecordApplied(ctx context.Context, pool *pgxpool.Pool, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	lsns := make([]int64, len(changes))
	idx := make([]int32, len(changes))
	for i, c := range changes {
		if c.CommitLSN > 1<<63-1 || c.Index < 0 || c.Index > 1<<31-1 {
			return fmt.Errorf("applied change %d/%d out of range", c.CommitLSN, c.Index)
		}
		lsns[i], idx[i] = int64(c.CommitLSN), int32(c.Index)
	}
	_, err := pool.Exec(ctx, `
INSERT INTO search_txn AS t (commit_lsn, seen)
SELECT l, array_agg(DISTINCT i ORDER BY i) FROM unnest($1::bigint[], $2::int[]) AS u(l, i)
 WHERE l > `+watermarkSQL+`
 GROUP BY l
ON CONFLICT (commit_lsn) DO UPDATE
   SET seen = ARRAY(SELECT DISTINCT s FROM unnest(t.seen || EXCLUDED.seen) AS s ORDER BY s)
 WHERE NOT t.seen @> EXCLUDED.seen`, lsns, idx)
	if err != nil {
		return fmt.Errorf("record %d applied changes: %w", len(changes), err)
	}
	return nil
}

// Advance moves the watermark as far as the recorded spans and applied
// changes allow and returns it (0 while the chain has not started). Call it
// after recording either; concurrent callers serialize on the watermark row.
//
// Each step is one statement of two index range queries, however many spans
// are pending: the first incomplete transaction after the watermark bounds
// how far it can go, and the watermark moves to the end of the furthest
// recorded span that starts at or before it and ends before that bound.
func Advance(ctx context.Context, pool *pgxpool.Pool) (uint64, error) {
	var w uint64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO search_applied (id, lsn) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`); err != nil {
			return err
		}
		var (
			cur, snapLSN    int64
			chained, needed bool
		)
		if err := tx.QueryRow(ctx, `SELECT lsn, chained, snapshot_lsn, rebuild_needed FROM search_applied WHERE id = 1 FOR UPDATE`).
			Scan(&cur, &chained, &snapLSN, &needed); err != nil {
			return err
		}
		if chained {
			w = uint64(cur)
		} else {
			// The chain starts at the initial snapshot's span (0, cp], or —
			// on a database whose indexer ran before watermarks existed — at
			// the first resumed session's confirmed position, everything
			// before which the broker had acknowledged.
			var root *int64
			err := tx.QueryRow(ctx, `SELECT CASE WHEN bool_or(snapshot) THEN 0 ELSE min(from_lsn) FILTER (WHERE resume) END
			                           FROM search_progress`).Scan(&root)
			if err != nil {
				return err
			}
			if root == nil {
				return nil
			}
			w = uint64(*root)
		}
		start := w
		for {
			// The first incomplete transaction after w bounds every span. Both
			// reads are one statement, so they see one moment: a report
			// committed between two statements would bring a span whose
			// transactions the bound had not seen, and the watermark would
			// pass them. A snapshot span with rows completes with the rebuild
			// it triggered (snapshot_lsn = its end and no rebuild pending, or
			// a newer snapshot since).
			var next *int64
			if err := tx.QueryRow(ctx, `
WITH b AS (SELECT min(commit_lsn) AS bound FROM search_txn
            WHERE commit_lsn > $1 AND total IS NOT NULL AND cardinality(seen) < total)
SELECT max(to_lsn) FROM search_progress, b
 WHERE from_lsn <= $1 AND to_lsn > $1 AND (b.bound IS NULL OR to_lsn < b.bound)
   AND (NOT snapshot OR rows = 0 OR $2 > to_lsn OR ($2 = to_lsn AND NOT $3))`,
				int64(w), snapLSN, needed).Scan(&next); err != nil {
				return err
			}
			if next == nil {
				break
			}
			w = uint64(*next)
		}
		if _, err := tx.Exec(ctx, `UPDATE search_applied SET lsn = $1, chained = true, updated_at = now() WHERE id = 1 AND (lsn <> $1 OR NOT chained)`, int64(w)); err != nil {
			return err
		}
		if w > start || !chained {
			if _, err := tx.Exec(ctx, `DELETE FROM search_txn WHERE commit_lsn <= $1`, int64(w)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM search_progress WHERE to_lsn <= $1`, int64(w)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("advance the search watermark: %w", err)
	}
	return w, nil
}

// Load returns the watermark (0 before the chain starts).
func Load(ctx context.Context, pool *pgxpool.Pool) (uint64, error) {
	var v int64
	err := pool.QueryRow(ctx, `SELECT `+watermarkSQL).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read search_applied: %w", err)
	}
	return uint64(v), nil
}

// RequestWatermark writes a non-transactional logical decoding message into
// the WAL. CDC answers it with a progress report reaching the message's
// position, which lies past every commit that finished before the call: the
// watermark then passes any token taken before, even when no further catalog
// change comes along.
func RequestWatermark(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `SELECT pg_logical_emit_message(false, $1, '')`, lsn.WatermarkPrefix); err != nil {
		return fmt.Errorf("request a search watermark: %w", err)
	}
	return nil
}

// ErrTimeout is returned by Wait when the read model did not reach the token
// in time.
var ErrTimeout = errors.New("search read model has not applied the change yet")

// watchers share one poll of the watermark (and one watermark request)
// among the concurrent waiters of a process, per pool: a thousand readers
// waiting on ?after= cost one query per interval, not a thousand.
var watchers sync.Map // *pgxpool.Pool → *watcher

type watcher struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	cur     uint64
	tick    chan struct{} // closed after every poll
	waiters int
	polling bool
	asked   time.Time // when the newest watermark request was written
}

func watcherOf(pool *pgxpool.Pool) *watcher {
	v, _ := watchers.LoadOrStore(pool, &watcher{pool: pool, tick: make(chan struct{})})
	return v.(*watcher)
}

// poll reloads the watermark every interval while anyone waits.
func (w *watcher) poll(interval time.Duration) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := Load(ctx, w.pool)
		cancel()
		w.mu.Lock()
		if err == nil && v > w.cur {
			w.cur = v
		}
		close(w.tick)
		w.tick = make(chan struct{})
		if w.waiters == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		time.Sleep(interval)
	}
}

// ask writes a watermark request unless one was written within the last
// second.
func (w *watcher) ask(ctx context.Context) {
	w.mu.Lock()
	due := time.Since(w.asked) > time.Second
	if due {
		w.asked = time.Now()
	}
	w.mu.Unlock()
	if due {
		if err := RequestWatermark(ctx, w.pool); err != nil {
			w.mu.Lock()
			w.asked = time.Time{}
			w.mu.Unlock()
		}
	}
}

// Wait returns the watermark once it is at least target, or ErrTimeout
// (wrapped, with the position reached) when ctx ends first. While it is
// behind, the process polls it every interval (one query for all waiters)
// and asks CDC for a report (see RequestWatermark) once a second.
func Wait(ctx context.Context, pool *pgxpool.Pool, target uint64, interval time.Duration) (uint64, error) {
	cur, err := Load(ctx, pool)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return 0, err
	}
	if cur >= target {
		return cur, nil
	}
	w := watcherOf(pool)
	w.mu.Lock()
	w.cur = max(w.cur, cur)
	w.waiters++
	if !w.polling {
		w.polling = true
		go w.poll(interval)
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.waiters--
		w.mu.Unlock()
	}()
	w.ask(ctx)
	for {
		w.mu.Lock()
		cur, tick := w.cur, w.tick
		w.mu.Unlock()
		if cur >= target {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, fmt.Errorf("%w: applied %d, waiting for %d", ErrTimeout, cur, target)
		case <-tick:
			w.ask(ctx)
		}
	}
}

// NewSnapshot records lsn as the consistent point of the CDC snapshot being
// applied and reports whether it is a newer snapshot than any seen before
// (false for every further event of the same snapshot, and for older ones).
func NewSnapshot(ctx context.Context, pool *pgxpool.Pool, lsn uint64) (bool, error) {
	if lsn > 1<<63-1 {
		return false, fmt.Errorf("snapshot LSN %d out of range", lsn)
	}
	tag, err := pool.Exec(ctx, `
INSERT INTO search_applied (id, lsn, snapshot_lsn, rebuild_needed) VALUES (1, 0, $1, true)
ON CONFLICT (id) DO UPDATE SET snapshot_lsn = EXCLUDED.snapshot_lsn, rebuild_needed = true
 WHERE search_applied.snapshot_lsn < EXCLUDED.snapshot_lsn`, int64(lsn))
	if err != nil {
		return false, fmt.Errorf("record snapshot %d: %w", lsn, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RequestRebuild records that the read model must be rebuilt from the write
// model (a catalog table was truncated); the indexer's rebuild loop clears it.
func RequestRebuild(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `
INSERT INTO search_applied (id, lsn, rebuild_needed) VALUES (1, 0, true)
ON CONFLICT (id) DO UPDATE SET rebuild_needed = true`); err != nil {
		return fmt.Errorf("request a rebuild: %w", err)
	}
	return nil
}

// RebuildNeeded reports whether a snapshot asked for a rebuild that has not
// completed, and the snapshot LSN it is for.
func RebuildNeeded(ctx context.Context, pool *pgxpool.Pool) (bool, uint64, error) {
	var needed bool
	var snap int64
	err := pool.QueryRow(ctx, `SELECT rebuild_needed, snapshot_lsn FROM search_applied WHERE id = 1`).Scan(&needed, &snap)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("read search_applied: %w", err)
	}
	return needed, uint64(snap), nil
}

// Rebuilt clears the request for snapshot snap, unless a newer snapshot
// arrived meanwhile.
func Rebuilt(ctx context.Context, pool *pgxpool.Pool, snap uint64) error {
	if _, err := pool.Exec(ctx, `UPDATE search_applied SET rebuild_needed = false WHERE id = 1 AND snapshot_lsn = $1`, int64(snap)); err != nil {
		return fmt.Errorf("clear rebuild request: %w", err)
	}
	return nil
}

// Explain describes what holds the watermark back: the watermark, the spans
// that start at or before it, and the incomplete transactions in the next
// one. It is for operators and failing tests ("why does ?after= wait?").
func Explain(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var b strings.Builder
	var (
		w, snap         int64
		chained, needed bool
		spans, txns     int
	)
	err := pool.QueryRow(ctx, `SELECT coalesce(max(lsn), 0), coalesce(bool_or(chained), false),
	       coalesce(max(snapshot_lsn), 0), coalesce(bool_or(rebuild_needed), false),
	       (SELECT count(*) FROM search_progress), (SELECT count(*) FROM search_txn)
	  FROM search_applied WHERE id = 1`).Scan(&w, &chained, &snap, &needed, &spans, &txns)
	if err != nil {
		return "", fmt.Errorf("explain the search watermark: %w", err)
	}
	fmt.Fprintf(&b, "watermark %d (chained %v), snapshot %d (rebuild needed %v); %d spans and %d transactions recorded\n", w, chained, snap, needed, spans, txns)
	rows, err := pool.Query(ctx, `SELECT from_lsn, to_lsn, snapshot, rows FROM search_progress WHERE from_lsn <= $1 ORDER BY to_lsn DESC LIMIT 5`, w)
	if err != nil {
		return "", fmt.Errorf("explain the search watermark: %w", err)
	}
	var next int64 = -1
	for rows.Next() {
		var from, to int64
		var snapshot bool
		var n int
		if err := rows.Scan(&from, &to, &snapshot, &n); err != nil {
			rows.Close()
			return "", err
		}
		next = max(next, to)
		fmt.Fprintf(&b, "  span (%d, %d] snapshot %v rows %d\n", from, to, snapshot, n)
	}
	rows.Close()
	if next < 0 {
		var first *int64
		_ = pool.QueryRow(ctx, `SELECT min(from_lsn) FROM search_progress`).Scan(&first)
		switch {
		case first != nil:
			fmt.Fprintf(&b, "  no span starts at or before the watermark; the next starts at %d (a report is missing)\n", *first)
		case chained:
			fmt.Fprintf(&b, "  up to date: every change CDC has reported is applied; a token past %d waits for CDC's next report (a waiting read asks for one)\n", w)
		default:
			fmt.Fprintf(&b, "  no spans recorded: waiting for CDC's reports\n")
		}
		return b.String(), nil
	}
	rows, err = pool.Query(ctx, `SELECT commit_lsn, total, cardinality(seen) FROM search_txn
	 WHERE commit_lsn > $1 AND commit_lsn <= $2 AND total IS NOT NULL AND cardinality(seen) < total ORDER BY commit_lsn LIMIT 5`, w, next)
	if err != nil {
		return "", fmt.Errorf("explain the search watermark: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c int64
		var total, seen int
		if err := rows.Scan(&c, &total, &seen); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "  transaction %d: %d of %d changes applied\n", c, seen, total)
	}
	return b.String(), rows.Err()
}
