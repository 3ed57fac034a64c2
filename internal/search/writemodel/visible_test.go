package writemodel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/search/writemodel"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestWaitVisible(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (v int)`); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	var wide int64
	if err := tx.QueryRow(ctx, `INSERT INTO t VALUES (1) RETURNING txid_current()`).Scan(&wide); err != nil {
		t.Fatal(err)
	}
	xid := uint32(wide) // what pgoutput reports

	// In progress: not visible, the wait times out.
	err = writemodel.WaitVisible(ctx, pool, []uint32{xid}, 50*time.Millisecond)
	if !errors.Is(err, writemodel.ErrNotVisible) {
		t.Fatalf("in-progress transaction: %v, want ErrNotVisible", err)
	}
	done := make(chan error, 1)
	go func() { done <- writemodel.WaitVisible(ctx, pool, []uint32{xid}, 10*time.Second) }()
	select {
	case err := <-done:
		t.Fatalf("returned before the commit: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("not released by the commit")
	}
	// Long-committed transactions (and the empty list) return at once.
	if err := writemodel.WaitVisible(ctx, pool, []uint32{xid, xid - 1}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := writemodel.WaitVisible(ctx, pool, nil, time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
