package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ev(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/overture/outbox-test")
	e.SetType("music.overture.test.changed.v1")
	_ = e.SetData("application/json", map[string]string{"id": id})
	return e
}

// sink records what the relay published; fail makes the next publishes fail.
type sink struct {
	mu   sync.Mutex
	got  []event.Event
	fail int
}

func (s *sink) Publish(_ context.Context, events ...event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("broker unavailable")
	}
	s.got = append(s.got, events...)
	return nil
}

func (s *sink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, e := range s.got {
		ids = append(ids, e.ID())
	}
	return ids
}

func write(t *testing.T, pool *pgxpool.Pool, commit bool, events ...event.Event) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.Write(ctx, tx, events...))
	if commit {
		require.NoError(t, tx.Commit(ctx))
	} else {
		require.NoError(t, tx.Rollback(ctx))
	}
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n))
	return n
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRelayPublishesCommittedRowsOnly(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	s := &sink{}
	write(t, pool, false, ev("rolled-back"))
	write(t, pool, true, ev("a"), ev("b"))
	r := &outbox.Relay{Pool: pool, Publisher: s, Log: quietLog()}
	n, err := r.Once(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"a", "b"}, s.ids())
	require.Zero(t, count(t, pool), "published rows must be deleted")
	// The event survives the round trip intact.
	var data map[string]string
	require.NoError(t, s.got[0].DataAs(&data))
	require.Equal(t, "a", data["id"])
	require.Equal(t, "music.overture.test.changed.v1", s.got[0].Type())
}

// A failed publish keeps the rows; the next round publishes them: at least once.
func TestRelayRetriesAfterPublishFailure(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	s := &sink{fail: 1}
	write(t, pool, true, ev("x"))
	r := &outbox.Relay{Pool: pool, Publisher: s, Log: quietLog()}
	_, err := r.Once(context.Background())
	require.ErrorContains(t, err, "broker unavailable")
	require.Equal(t, 1, count(t, pool), "a row whose publish failed was deleted")
	n, err := r.Once(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"x"}, s.ids())
}

func TestRelayKeepsWriteOrderAcrossBatches(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("e%02d", i)
		want = append(want, id)
		write(t, pool, true, ev(id))
	}
	s := &sink{}
	r := &outbox.Relay{Pool: pool, Publisher: s, Log: quietLog(), Batch: 7}
	for {
		n, err := r.Once(context.Background())
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	require.Equal(t, want, s.ids())
}

// Run wakes on the NOTIFY that Write sends: a row is relayed long before the
// fallback poll would find it.
func TestRunWakesOnNotify(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	got := make(chan string, 10)
	pub := function.PublisherFunc(func(_ context.Context, events ...event.Event) error {
		for _, e := range events {
			got <- e.ID()
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &outbox.Relay{Pool: pool, Publisher: pub, Log: quietLog(), Poll: time.Hour}
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	// Wait until the relay's session has run LISTEN (its last statement).
	testenv.WaitFor(t, 2*time.Minute, "the relay to LISTEN", func() bool {
		var n int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN '||$1`, outbox.Channel).Scan(&n)
		return err == nil && n > 0
	})
	write(t, pool, true, ev("notified"))
	select {
	case id := <-got:
		require.Equal(t, "notified", id)
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not wake on NOTIFY")
	}
}

// TestRunPollsWhenNoNotifyArrives: a row whose NOTIFY never reached the
// relay (its session was reconnecting, say) is published at the next poll,
// and not before: the poll interval is passed on a fake clock.
func TestRunPollsWhenNoNotifyArrives(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	// The row is committed before the relay starts: its NOTIFY is gone.
	write(t, pool, true, ev("missed"))
	got := make(chan string, 10)
	pub := function.PublisherFunc(func(_ context.Context, events ...event.Event) error {
		for _, e := range events {
			got <- e.ID()
		}
		return nil
	})
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &outbox.Relay{Pool: pool, Publisher: pub, Log: quietLog(), Poll: time.Minute, Clock: clock}
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	// The first round publishes what is there at start.
	select {
	case id := <-got:
		require.Equal(t, "missed", id)
	case <-time.After(5 * time.Minute):
		t.Fatal("relay did not publish the row present at start")
	}
	// A row committed behind the relay's back: no NOTIFY (outbox.Write
	// would send one).
	body, err := json.Marshal(ev("silent"))
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), `INSERT INTO outbox (event_id, event_type, event_source, event) VALUES ('silent', 'music.overture.test.changed.v1', '/overture/outbox-test', $1)`, body)
	require.NoError(t, err)
	// Nothing happens until the poll interval passes: the relay waits on
	// its poll timer, the fake clock's one waiter (LISTEN's retry waits only
	// while the database refuses).
	require.NoError(t, clock.BlockUntilContext(ctx, 1))
	select {
	case id := <-got:
		t.Fatalf("published %s before the poll interval passed", id)
	default:
	}
	clock.Advance(time.Minute)
	select {
	case id := <-got:
		require.Equal(t, "silent", id)
	case <-time.After(5 * time.Minute):
		t.Fatal("relay did not poll after its interval")
	}
}

// Two relays on one database never publish the same row twice.
func TestConcurrentRelaysPublishEachRowOnce(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	const total = 300
	for i := range total / 10 {
		var batch []event.Event
		for j := range 10 {
			batch = append(batch, ev(fmt.Sprintf("c%d-%d", i, j)))
		}
		write(t, pool, true, batch...)
	}
	s := &sink{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			r := &outbox.Relay{Pool: pool, Publisher: s, Log: quietLog(), Batch: 13}
			for {
				n, err := r.Once(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	ids := s.ids()
	seen := map[string]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "event %s published twice", id)
		seen[id] = true
	}
	require.Len(t, ids, total)
}

func TestWriteRejectsInvalidEventsAndPropagatesTrace(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, outbox.Migrate)
	ctx := context.Background()
	bad := event.New() // no id, source or type
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, bad) })
	require.ErrorContains(t, err, "invalid event")
	require.Zero(t, count(t, pool))

	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tctx := telemetry.WithTrace(ctx, tp)
	require.NoError(t, postgres.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Write(tctx, tx, ev("traced")) }))
	s := &sink{}
	_, err = (&outbox.Relay{Pool: pool, Publisher: s, Log: quietLog()}).Once(ctx)
	require.NoError(t, err)
	require.Len(t, s.got, 1)
	require.Equal(t, tp, s.got[0].Extensions()["traceparent"])
}
