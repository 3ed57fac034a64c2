// Package inbox makes event consumers idempotent: a consumer records each
// event's (source, id) in the same transaction as its effect, so a redelivered
// event — the broker delivers at least once — finds its key taken and changes
// nothing.
package inbox

import (
	"context"
	"embed"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the inbox table.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "inbox", migrations)
}

// Claim records e for consumer inside tx. It returns false when the event was
// already processed by this consumer; the caller then skips its effect.
func Claim(ctx context.Context, tx pgx.Tx, consumer string, e event.Event) (bool, error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO inbox (consumer, event_source, event_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		consumer, e.Source(), e.ID())
	if err != nil {
		return false, fmt.Errorf("inbox claim %s/%s for %s: %w", e.Source(), e.ID(), consumer, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Handle runs effect in a transaction with e claimed for consumer; a duplicate
// commits nothing and returns (false, nil).
func Handle(ctx context.Context, pool *pgxpool.Pool, consumer string, e event.Event, effect func(pgx.Tx) error) (bool, error) {
	var first bool
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if first, err = Claim(ctx, tx, consumer, e); err != nil || !first {
			return err
		}
		return effect(tx)
	})
	if err != nil {
		return false, err
	}
	return first, nil
}
