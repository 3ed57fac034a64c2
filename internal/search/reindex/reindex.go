// Package reindex rebuilds the search read model from the write model, for
// `overture reindex`: after a mapping or analyzer change, a lost index, or a
// suspected drift.
//
// It never takes the index away from readers. It creates a new physical index
// and registers it as a second write target (so the indexer, in this or
// another process, keeps writing every change there too), copies every
// published track from one REPEATABLE READ snapshot at search.RebuildVersion
// — lower than any real commit LSN, so a change applied meanwhile always
// wins over the snapshot's copy of it — and then swaps the alias atomically.
package reindex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/writemodel"
)

// Stats describes a finished rebuild.
type Stats struct {
	Index    string        // the new physical index
	Copied   int           // documents copied from the snapshot
	Live     int           // live documents in the new index at the swap
	Duration time.Duration // from start to swap
}

// Run rebuilds store from the catalog tables in pool and swaps it in. On
// error the new index is dropped and readers keep the old one.
func Run(ctx context.Context, pool *pgxpool.Pool, store search.Store, log *slog.Logger) (Stats, error) {
	start := time.Now()
	rb, err := store.BeginRebuild(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("reindex: begin: %w", err)
	}
	st := Stats{Index: rb.Name()}
	fail := func(err error) (Stats, error) {
		if aerr := rb.Abort(context.WithoutCancel(ctx)); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort rebuild %s: %w", rb.Name(), aerr))
		}
		return st, fmt.Errorf("reindex: %w", err)
	}
	log.Info("reindex started", "index", rb.Name())
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fail(fmt.Errorf("begin snapshot: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	err = writemodel.Scan(ctx, tx, 1000, func(docs []search.Track) error {
		ops := make([]search.Op, len(docs))
		for i, d := range docs {
			ops[i] = search.Upsert(d, search.RebuildVersion)
		}
		if err := rb.Apply(ctx, ops); err != nil {
			return fmt.Errorf("copy %d documents: %w", len(ops), err)
		}
		st.Copied += len(docs)
		if st.Copied%10000 < len(docs) {
			log.Info("reindex progress", "index", rb.Name(), "copied", st.Copied)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	_ = tx.Rollback(ctx)
	if st.Live, err = rb.Count(ctx); err != nil {
		return fail(fmt.Errorf("count new index: %w", err))
	}
	if err := rb.Commit(ctx); err != nil {
		return fail(fmt.Errorf("swap: %w", err))
	}
	st.Duration = time.Since(start)
	log.Info("reindex swapped", "index", rb.Name(), "copied", st.Copied, "live", st.Live, "duration", st.Duration.String())
	return st, nil
}
