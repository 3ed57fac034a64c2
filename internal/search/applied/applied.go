// Package applied records how far the search read model has caught up with
// the write model — the highest commit LSN the indexer has made searchable —
// and lets the query API wait for a consistency token (read-your-writes).
//
// It lives in PostgreSQL beside the write model, not in the index, so that it
// is one number for every backend and every reader process.
package applied

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the search_applied table (owner "search-applied"); both the
// indexer and the query API call it, in any order.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, _ := fs.Sub(migrations, "migrations")
	return postgres.Migrate(ctx, pool, "search_applied", sub)
}

// Advance raises the applied LSN to lsn (never lowers it).
func Advance(ctx context.Context, pool *pgxpool.Pool, lsn uint64) error {
	if lsn > 1<<63-1 {
		return fmt.Errorf("applied LSN %d out of range", lsn)
	}
	_, err := pool.Exec(ctx, `
INSERT INTO search_applied (id, lsn) VALUES (1, $1)
ON CONFLICT (id) DO UPDATE SET lsn = GREATEST(search_applied.lsn, EXCLUDED.lsn), updated_at = now()
 WHERE search_applied.lsn < EXCLUDED.lsn`, int64(lsn))
	if err != nil {
		return fmt.Errorf("advance search_applied to %d: %w", lsn, err)
	}
	return nil
}

// Load returns the applied LSN (0 before the first change).
func Load(ctx context.Context, pool *pgxpool.Pool) (uint64, error) {
	var v int64
	err := pool.QueryRow(ctx, `SELECT lsn FROM search_applied WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read search_applied: %w", err)
	}
	return uint64(v), nil
}

// ErrTimeout is returned by Wait when the read model did not reach the token
// in time.
var ErrTimeout = errors.New("search read model has not applied the change yet")

// Wait returns the applied LSN once it is at least target, polling every
// interval, or ErrTimeout (wrapped, with the LSN reached) when ctx ends first.
func Wait(ctx context.Context, pool *pgxpool.Pool, target uint64, interval time.Duration) (uint64, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cur, err := Load(ctx, pool)
		if err != nil && ctx.Err() == nil {
			return 0, err
		}
		if err == nil && cur >= target {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, fmt.Errorf("%w: applied %d, waiting for %d", ErrTimeout, cur, target)
		case <-t.C:
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
