// Package outbox announces state changes without dual writes: the change and
// the CloudEvent that announces it are written in one PostgreSQL transaction
// (Write), and something else moves committed outbox rows into the broker.
//
// That something is the CDC relay in cdc/ (it reads outbox inserts from the
// WAL); Relay here is the simpler polling relay used where CDC does not run.
// Either way an event is published only if its transaction committed, and at
// least once; consumers deduplicate with the inbox package.
package outbox

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Channel is the LISTEN/NOTIFY channel Write signals on.
const Channel = "overture_outbox"

// Migrate creates the outbox table.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "outbox", migrations)
}

// Write adds events to the outbox inside tx, so they are published if and
// only if tx commits. The context's trace is propagated into each event.
func Write(ctx context.Context, tx pgx.Tx, events ...event.Event) error {
	for i := range events {
		e := &events[i]
		telemetry.Propagate(ctx, e)
		if err := e.Validate(); err != nil {
			return fmt.Errorf("outbox: invalid event %s: %w", e.Type(), err)
		}
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("outbox: encode %s: %w", e.Type(), err)
		}
		var key *string
		if k, ok := e.Extensions()["partitionkey"].(string); ok {
			key = &k
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO outbox (event_id, event_type, event_source, partition_key, event) VALUES ($1, $2, $3, $4, $5)`,
			e.ID(), e.Type(), e.Source(), key, body); err != nil {
			return fmt.Errorf("outbox: insert %s: %w", e.Type(), err)
		}
	}
	if len(events) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, Channel); err != nil {
			return fmt.Errorf("outbox: notify: %w", err)
		}
	}
	return nil
}

// Relay publishes committed outbox rows in id order and deletes them once the
// broker accepted them. Run it in one goroutine per database.
type Relay struct {
	Pool      *pgxpool.Pool
	Publisher function.Publisher
	Log       *slog.Logger
	// Batch is the most rows published per round (default 500).
	Batch int
	// Poll is the fallback polling interval when no notification arrives (default 1 s).
	Poll time.Duration
	// Clock paces the fallback poll and the retries of LISTEN (default:
	// the real clock). Tests pass a fake one to make time pass at will.
	Clock clockwork.Clock
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	if r.Batch == 0 {
		r.Batch = 500
	}
	if r.Poll == 0 {
		r.Poll = time.Second
	}
	if r.Clock == nil {
		r.Clock = clockwork.NewRealClock()
	}
	wake := make(chan struct{}, 1)
	go r.listen(ctx, wake)
	for {
		n, err := r.Once(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("outbox relay round failed", "error", err)
		}
		if n == r.Batch {
			continue
		}
		poll := r.Clock.NewTimer(r.Poll)
		select {
		case <-ctx.Done():
			poll.Stop()
			return nil
		case <-wake:
		case <-poll.Chan():
		}
		poll.Stop()
	}
}

// Once publishes one batch and returns how many rows it moved.
func (r *Relay) Once(ctx context.Context) (int, error) {
	if r.Batch <= 0 {
		r.Batch = 500
	}
	var n int
	err := postgres.InTx(ctx, r.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id, event`, r.Batch)
		if err != nil {
			return fmt.Errorf("claim outbox rows: %w", err)
		}
		type row struct {
			id int64
			e  event.Event
		}
		var batch []row
		for rows.Next() {
			var id int64
			var body []byte
			if err := rows.Scan(&id, &body); err != nil {
				return fmt.Errorf("scan outbox row: %w", err)
			}
			var e event.Event
			if err := json.Unmarshal(body, &e); err != nil {
				return fmt.Errorf("decode outbox row %d: %w", id, err)
			}
			batch = append(batch, row{id, e})
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read outbox rows: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		// DELETE ... RETURNING does not promise order.
		slices.SortFunc(batch, func(a, b row) int { return cmp.Compare(a.id, b.id) })
		events := make([]event.Event, len(batch))
		for i, b := range batch {
			events[i] = b.e
		}
		if err := r.Publisher.Publish(ctx, events...); err != nil {
			return fmt.Errorf("publish %d outbox events: %w", len(events), err)
		}
		n = len(events)
		return nil
	})
	return n, err
}

// listen forwards NOTIFYs to wake; while the database refuses, it tries
// again every second (the fallback poll covers the gap).
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	retry := func() {
		select {
		case <-ctx.Done():
		case <-r.Clock.After(time.Second):
		}
	}
	for ctx.Err() == nil {
		conn, err := r.Pool.Acquire(ctx)
		if err != nil {
			retry()
			continue
		}
		if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
			conn.Release()
			retry()
			continue
		}
		for {
			if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
				break
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		conn.Release()
	}
}
