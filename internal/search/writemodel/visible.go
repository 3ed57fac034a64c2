package writemodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotVisible is returned by WaitVisible when a transaction stayed
// invisible for the whole wait.
var ErrNotVisible = errors.New("committed transaction not yet visible")

// visibleSQL counts the transactions among $1 (32-bit xids as CDC reports
// them) that a new snapshot does not see yet. A 32-bit xid is widened to the
// xid8 of the snapshot's epoch, or of the one before when that would lie at
// or past the snapshot's xmax (a committed transaction is always below it).
const visibleSQL = `
WITH s AS (SELECT pg_current_snapshot() AS snap),
     m AS (SELECT snap, pg_snapshot_xmax(snap)::text::bigint AS xmax FROM s),
     x AS (SELECT snap, xmax, ((xmax >> 32) << 32) | v AS wide FROM m, unnest($1::bigint[]) AS v)
SELECT count(*) FROM x
 WHERE NOT pg_visible_in_snapshot((CASE WHEN wide >= xmax THEN wide - 4294967296 ELSE wide END)::text::xid8, snap)`

// WaitVisible waits until every transaction in xids is visible to new
// snapshots, polling every millisecond for at most timeout.
//
// Logical decoding can hand CDC a commit a moment before other sessions see
// it: the committing backend writes and flushes its commit record, and only
// then leaves the proc array. A fetch-on-change reader that queries in that
// window reads the rows as they were before the change and would write them
// at the change's version — and the read-your-writes watermark would then
// pass a write that is not searchable. Waiting for visibility closes the
// window; it is microseconds long, so the wait is almost always one query.
func WaitVisible(ctx context.Context, q Querier, xids []uint32, timeout time.Duration) error {
	if len(xids) == 0 {
		return nil
	}
	vals := make([]int64, len(xids))
	for i, x := range xids {
		vals[i] = int64(x)
	}
	deadline := time.Now().Add(timeout)
	for {
		var n int
		rows, err := q.Query(ctx, visibleSQL, vals)
		if err == nil {
			n, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
		}
		if err != nil {
			return fmt.Errorf("check that transactions are visible: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d of %d transactions after %s", ErrNotVisible, n, len(xids), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
