package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := postgrestest.Pool(t, inbox.Migrate)
	_, err := pool.Exec(context.Background(), `CREATE TABLE plays (event_id text, n int)`)
	require.NoError(t, err)
	return pool
}

func ev(source, id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType("music.overture.test.played.v1")
	return e
}

// effect is a consumer's state change: one row per processed event.
func effect(ctx context.Context, e event.Event) func(pgx.Tx) error {
	return func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO plays VALUES ($1, 1)`, e.ID())
		return err
	}
}

func plays(t *testing.T, pool *pgxpool.Pool) int {
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM plays`).Scan(&n))
	return n
}

func TestHandleDedupes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name       string
		deliveries []struct{ consumer, source, id string }
		wantFirst  []bool
	}{
		{"DuplicateDeliverySkipped", []struct{ consumer, source, id string }{{"stats", "/a", "1"}, {"stats", "/a", "1"}}, []bool{true, false}},
		{"OtherConsumerProcessesToo", []struct{ consumer, source, id string }{{"stats", "/a", "1"}, {"mailer", "/a", "1"}}, []bool{true, true}},
		{"SameIDOtherSourceIsAnotherEvent", []struct{ consumer, source, id string }{{"stats", "/a", "1"}, {"stats", "/b", "1"}}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := setup(t)
			want := 0
			for i, d := range tt.deliveries {
				e := ev(d.source, d.id)
				first, err := inbox.Handle(ctx, pool, d.consumer, e, effect(ctx, e))
				require.NoError(t, err)
				require.Equal(t, tt.wantFirst[i], first, "delivery %d", i)
				if first {
					want++
				}
			}
			require.Equal(t, want, plays(t, pool))
		})
	}
}

// A failed effect releases the claim, so the redelivery is processed.
func TestFailedEffectIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := setup(t)
	e := ev("/a", "42")
	_, err := inbox.Handle(ctx, pool, "stats", e, func(tx pgx.Tx) error {
		if err := effect(ctx, e)(tx); err != nil {
			return err
		}
		return errors.New("downstream failed")
	})
	require.ErrorContains(t, err, "downstream failed")
	require.Zero(t, plays(t, pool), "the effect of a failed attempt was committed")
	first, err := inbox.Handle(ctx, pool, "stats", e, effect(ctx, e))
	require.NoError(t, err)
	require.True(t, first, "redelivery after a failure was treated as a duplicate")
	require.Equal(t, 1, plays(t, pool))
}

// Duplicates delivered at the same moment (the broker retrying while the first
// attempt is still running) still take effect exactly once.
func TestConcurrentDuplicatesTakeEffectOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := setup(t)
	e := ev("/overture/payment", "pay-1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 12 {
		wg.Go(func() {
			first, err := inbox.Handle(ctx, pool, "ledger", e, effect(ctx, e))
			if err != nil {
				t.Error(err)
				return
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, firsts)
	require.Equal(t, 1, plays(t, pool))
}
