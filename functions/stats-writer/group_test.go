package statswriter_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
)

// countingStore counts the writes that reach the store.
type countingStore struct {
	stats.Store
	writes atomic.Int64
}

func (s *countingStore) Write(ctx context.Context, rows []stats.Row) (int, error) {
	s.writes.Add(1)
	return s.Store.Write(ctx, rows)
}

// groupedWriter is a writer on a fresh PostgreSQL store, counted, with the
// given grouping settings.
func groupedWriter(t *testing.T, cfg map[string]string) (*statswriter.Writer, *countingStore, func() int) {
	t.Helper()
	pool := postgrestest.Pool(t, stats.Migrate)
	store := &countingStore{Store: stats.NewPG(pool)}
	w := statswriter.New()
	w.Store, w.Log = store, slog.New(slog.DiscardHandler)
	require.NoError(t, w.Start(context.Background(), cfg))
	return w, store, func() int { return count(t, pool) }
}

// handleAll delivers the events at once, as the broker does (parallelism
// 16), and returns each Handle's error.
func handleAll(ctx context.Context, w *statswriter.Writer, events []event.Event) []error {
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	for i, e := range events {
		wg.Go(func() { _, errs[i] = w.Handle(ctx, e) })
	}
	wg.Wait()
	return errs
}

// 16 events delivered at once go into the store as one write (the group
// is full when the 16th joins, 1,600 listens); delivered again, once
// more, adding nothing; every listen is stored once.
func TestConcurrentHandlesShareOneWrite(t *testing.T) {
	t.Parallel()
	w, store, stored := groupedWriter(t, map[string]string{
		"STATS_WRITER_BATCH_LISTENS": "1600", "STATS_WRITER_LINGER": "10m", "STATS_WRITER_IDLE": "10m"})
	var events []event.Event
	for i := range 16 {
		events = append(events, batch(t, fmt.Sprintf("u%d", i), 100))
	}
	for round := range 2 {
		for i, err := range handleAll(context.Background(), w, events) {
			require.NoError(t, err, "round %d, event %d", round, i)
		}
		require.Equal(t, int64(round+1), store.writes.Load(), "round %d: the 16 events in one write", round)
		require.Equal(t, 1600, stored(), "round %d: each listen once", round)
	}
}

// A group that is not full is written after its linger; an event that
// would overfill the open group starts the next one.
func TestGroupWrittenAfterLinger(t *testing.T) {
	t.Parallel()
	w, store, stored := groupedWriter(t, map[string]string{
		"STATS_WRITER_BATCH_LISTENS": "150", "STATS_WRITER_LINGER": "50ms", "STATS_WRITER_IDLE": "10m"})
	_, err := w.Handle(context.Background(), batch(t, "u1", 10))
	require.NoError(t, err)
	require.Equal(t, 10, stored())
	require.Equal(t, int64(1), store.writes.Load())
	for i, err := range handleAll(context.Background(), w, []event.Event{batch(t, "u2", 100), batch(t, "u3", 100)}) {
		require.NoError(t, err, "event %d", i)
	}
	require.Equal(t, 210, stored())
	require.Equal(t, int64(3), store.writes.Load(), "100 + 100 listens do not fit one group of 150")
}

// badBatch is batch(user, n) with one listen the store refuses (a negative
// position).
func badBatch(t *testing.T, user string, n int) event.Event {
	t.Helper()
	var d eventtype.ListensData
	require.NoError(t, batch(t, user, n).DataAs(&d))
	d.Listens[n-1].PlayedMS = -1
	e, err := listens.BatchEvent(user, &listens.Submission{ListenType: d.ListenType, Listens: d.Listens})
	require.NoError(t, err)
	return e
}

// A refused event does not fail its companions: when the group's write
// fails, each event's listens are written on their own, so only the refused
// event's Handle fails (and is redelivered) and the other 15 are stored;
// their redeliveries add nothing.
func TestRefusedEventFailsOnlyItself(t *testing.T) {
	t.Parallel()
	w, store, stored := groupedWriter(t, map[string]string{
		"STATS_WRITER_BATCH_LISTENS": "1600", "STATS_WRITER_LINGER": "10m", "STATS_WRITER_IDLE": "10m"})
	var events []event.Event
	for i := range 15 {
		events = append(events, batch(t, fmt.Sprintf("u%d", i), 100))
	}
	errs := handleAll(context.Background(), w, append(events, badBatch(t, "bad", 100)))
	for i, err := range errs[:15] {
		require.NoError(t, err, "event %d is stored although the group's write failed", i)
	}
	require.Error(t, errs[15], "the refused event fails")
	require.Equal(t, int64(1+16), store.writes.Load(), "the failed group write, then one write per event")
	require.Equal(t, 1500, stored(), "the 15 good events, nothing of the refused one")

	events = append(events, batch(t, "u15", 100)) // the group full again
	for i, err := range handleAll(context.Background(), w, events) {
		require.NoError(t, err, "redelivery %d", i)
	}
	require.Equal(t, 1600, stored(), "redeliveries add nothing; u15 is new")
}

// blockingStore holds every write until release is closed.
type blockingStore struct {
	stats.Store
	started chan struct{}
	release chan struct{}
}

func (s *blockingStore) Write(ctx context.Context, rows []stats.Row) (int, error) {
	s.started <- struct{}{}
	<-s.release
	return s.Store.Write(ctx, rows)
}

// Pending listens are bounded: with a full group being written, a
// delivery waits for room — and leaves when its context ends, adding
// nothing. A Handle whose context ends while its group is written fails;
// the other in its group is written whole.
func TestPendingListensAreBounded(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, stats.Migrate)
	store := &blockingStore{Store: stats.NewPG(pool), started: make(chan struct{}, 8), release: make(chan struct{})}
	w := statswriter.New()
	w.Store, w.Log = store, slog.New(slog.DiscardHandler)
	require.NoError(t, w.Start(context.Background(), map[string]string{
		"STATS_WRITER_BATCH_LISTENS": "200", "STATS_WRITER_MAX_PENDING": "200", "STATS_WRITER_LINGER": "10m", "STATS_WRITER_IDLE": "10m"}))

	// One group, full: u1 (cancelled while it is written) and u2.
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	errs := make(chan error, 2)
	go func() { _, err := w.Handle(ctx1, batch(t, "u1", 100)); errs <- err }()
	go func() { _, err := w.Handle(context.Background(), batch(t, "u2", 100)); errs <- err }()
	<-store.started

	// 200 listens pending: u3 waits for room until its context ends.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel3()
	_, err := w.Handle(ctx3, batch(t, "u3", 100))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "waiting for room")

	cancel1()
	require.ErrorIs(t, <-errs, context.Canceled, "u1 leaves with its context's error while the write goes on")
	close(store.release)
	require.NoError(t, <-errs, "u2's write commits")
	require.Equal(t, 200, count(t, pool), "u1 and u2 each listen once; nothing of u3")
	for _, err := range handleAll(context.Background(), w, []event.Event{batch(t, "u1", 100), batch(t, "u2", 100)}) {
		require.NoError(t, err, "redelivered")
	}
	require.Equal(t, 200, count(t, pool), "the redeliveries add nothing")
}

// Grouping settings that cannot work fail the start, naming the key.
func TestBadGroupingSettingsFailStart(t *testing.T) {
	t.Parallel()
	for key, cfg := range map[string]map[string]string{
		"STATS_WRITER_BATCH_LISTENS": {"STATS_WRITER_BATCH_LISTENS": "0"},
		"STATS_WRITER_MAX_PENDING":   {"STATS_WRITER_BATCH_LISTENS": "5000", "STATS_WRITER_MAX_PENDING": "1000"},
		"STATS_WRITER_LINGER":        {"STATS_WRITER_LINGER": "soon"},
	} {
		w := statswriter.New()
		w.Log = slog.New(slog.DiscardHandler)
		require.ErrorContains(t, w.Start(context.Background(), cfg), key)
	}
}
