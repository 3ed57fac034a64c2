package searchindexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/writemodel"
)

// The exact watermark (see package applied): CDC's progress reports say which
// transactions produced how many change events; the indexer records which it
// has applied. Every change event that reaches Handle is recorded once it is
// searchable, or — when it cannot be applied at all — once it is given up
// (skip), so that one bad event does not hold read-your-writes back forever.

// opTruncate is the op of a change event for a TRUNCATE.
const opTruncate = "t"

// extCommitLSN is the change event's commit LSN (its transaction's end).
const extCommitLSN = "commitlsn"

// extTxIndex is the change event's index within its transaction.
const extTxIndex = "txindex"

// txIndex reads the txindex extension; -1 when the event has none (CDC of an
// earlier version, or a snapshot row).
func txIndex(e event.Event) (int, error) {
	v, ok := e.Extensions()[extTxIndex]
	if !ok {
		return -1, nil
	}
	var (
		n   int
		err error
	)
	switch v := v.(type) {
	case int32:
		n = int(v)
	case int:
		n = v
	case string:
		n, err = strconv.Atoi(v)
	default:
		err = fmt.Errorf("type %T", v)
	}
	if err != nil || n < 0 {
		return -1, fmt.Errorf("%w: %s %s: txindex %v", ErrBadEvent, e.Type(), e.ID(), v)
	}
	return n, nil
}

// progress records one CDC progress report and moves the watermark.
func (f *Function) progress(ctx context.Context, e event.Event) error {
	var d eventtype.ProgressData
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		return fmt.Errorf("%w: %s %s: data: %v", ErrBadEvent, e.Type(), e.ID(), err)
	}
	p, err := applied.ParseProgress(d)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadEvent, e.ID(), err)
	}
	if err := applied.RecordProgress(ctx, f.pool.Pool, p); err != nil {
		return err
	}
	_, err = applied.Advance(ctx, f.pool.Pool)
	return err
}

// applied records the batch's changes as applied and moves the watermark.
func (f *Function) applied(ctx context.Context, done []applied.Change) error {
	if err := applied.RecordApplied(ctx, f.pool.Pool, done); err != nil {
		return err
	}
	_, err := applied.Advance(ctx, f.pool.Pool)
	return err
}

// skip records a change event that cannot be applied (it goes to the
// dead-letter sink, where an operator sees it) as done for the watermark.
func (f *Function) skip(ctx context.Context, e event.Event, cause error) {
	if !errors.Is(cause, ErrBadEvent) {
		return
	}
	ext, ok := e.Extensions()[extCommitLSN]
	if !ok {
		return
	}
	v, err := lsn.ParseToken(fmt.Sprint(ext))
	if err != nil || v == 0 {
		return
	}
	i, err := txIndex(e)
	if err != nil || i < 0 {
		return
	}
	f.Log.Error("change event cannot be applied; counted as done for read-your-writes", "id", e.ID(), "type", e.Type(), "error", cause)
	if err := f.applied(ctx, []applied.Change{{CommitLSN: v, Index: i}}); err != nil {
		f.Log.Warn("record a skipped change", "id", e.ID(), "error", err)
	}
}

// truncated asks for a rebuild: a TRUNCATE names no rows, so only reading
// the whole write model again brings the read model back in line.
func (f *Function) truncated(ctx context.Context, c change) error {
	if err := applied.RequestRebuild(ctx, f.pool.Pool); err != nil {
		return err
	}
	f.Log.Warn("a catalog table was truncated: rebuilding the read model", "table", c.table, "commit_lsn", c.version)
	f.requestRebuild()
	return nil
}

// newSnapshot reports whether v is a higher snapshot LSN than any this
// process has recorded, and remembers it.
func (f *Function) newSnapshot(v uint64) bool {
	for {
		cur := f.lastSnapshot.Load()
		if v <= cur {
			return false
		}
		if f.lastSnapshot.CompareAndSwap(cur, v) {
			return true
		}
	}
}

// purgeLoop removes tombstones the read model no longer needs. A tombstone
// only stops a write that was read from the write model before the delete
// from landing after it; every write at or below the watermark has landed,
// and later writes re-read the write model, where the row is gone. So each
// tick purges below the watermark seen at the tick before (a whole interval
// of margin for writes still in flight).
func (f *Function) purgeLoop(ctx context.Context) {
	defer close(f.purgeDone)
	if f.PurgeEvery <= 0 {
		return
	}
	t := time.NewTicker(f.PurgeEvery)
	defer t.Stop()
	var prev uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if prev > 0 {
			n, err := f.store.PurgeTombstones(ctx, prev)
			if err != nil && ctx.Err() == nil {
				f.Log.Warn("purge tombstones (retried next time)", "below", prev, "error", err)
			} else if n > 0 {
				f.Log.Info("purged tombstones", "below", prev, "purged", n)
			}
		}
		w, err := applied.Load(ctx, f.pool.Pool)
		if err == nil {
			prev = w
		}
	}
}

// waitVisible makes sure the batch's transactions are visible before their
// rows are fetched (see writemodel.WaitVisible). One that stays invisible
// for two seconds fails the batch: the broker redelivers it, and nothing of
// it is recorded as applied, because a fetch now could read the rows as they
// were before the change and the watermark would pass a write that is not
// searchable.
func (f *Function) waitVisible(ctx context.Context, changes []change) error {
	var xids []uint32
	for _, c := range changes {
		if c.xid != 0 && !c.snapshot {
			xids = append(xids, c.xid)
		}
	}
	slices.Sort(xids)
	xids = slices.Compact(xids)
	err := writemodel.WaitVisible(ctx, f.pool, xids, 2*time.Second)
	if errors.Is(err, writemodel.ErrNotVisible) {
		f.Log.Warn("committed transactions are not visible yet; the batch is retried", "error", err)
	}
	return err
}
