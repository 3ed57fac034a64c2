// Package user is the saga participant that owns the premium entitlement
// (table app_user): it grants premium until the end of the paid period when a
// subscription is activated or renewed, revokes it when a subscription
// expires, and announces each change with UserUpdated (is_premium, version),
// which auth turns into the entitlement of the next token refresh.
//
// Granting is naturally idempotent: it only ever extends premium_until, so a
// duplicated or reordered grant changes nothing and announces nothing. A
// revoke only applies when no later paid period extended the entitlement.
//
// The events only name a subscription and a period: premium is granted until
// the end of the period the subscription store recorded as paid, for the
// store's user, and revoked only for a subscription the store says expired.
// An event the store does not back is logged and acknowledged, changes
// nothing and (orchestration) is not answered.
package user

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/saga"
	sub "github.com/overture-music/overture/internal/subscription"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Source of UserUpdated.
const Source = "/overture/user"

// Function is the user function.
type Function struct {
	saga.Participant
}

// New returns the function; Start configures it.
func New() *Function { return &Function{} }

// Migrate creates app_user and the outbox, and the subscription tables that
// grants and revokes are checked against.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "user", migrations, outbox.Migrate, sub.Migrate)
}

// Start reads DATABASE_URL and SAGA_MODE.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	return f.Join(ctx, cfg, "user", Migrate)
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key { return saga.Keys() }

// Handle implements function.Handler.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r, err := f.handle(ctx, e)
	if errors.Is(err, sub.ErrUnverified) {
		f.Log.WarnContext(ctx, "refused an entitlement change the subscription store does not back", "event_id", e.ID(),
			"event_type", e.Type(), "event_source", e.Source(), "error", err)
		return nil, nil
	}
	return r, err
}

func (f *Function) handle(ctx context.Context, e event.Event) (*event.Event, error) {
	choreo := f.Mode != saga.Orchestration
	switch e.Type() {
	case eventtype.SubscriptionActivated, eventtype.SubscriptionRenewed:
		if !choreo {
			return nil, nil
		}
		var d eventtype.SubscriptionData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		return nil, postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error { return grant(ctx, tx, d) })
	case eventtype.SagaGrantPremium:
		if choreo {
			return nil, nil
		}
		var c eventtype.SagaCommand
		if err := saga.Decode(e, &c); err != nil {
			return nil, err
		}
		if c.Subscription == nil {
			return nil, fmt.Errorf("grant_premium %s has no subscription", e.ID())
		}
		return nil, postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error {
			if err := grant(ctx, tx, *c.Subscription); err != nil {
				return err
			}
			r, err := saga.NewEvent(Source, eventtype.SagaStepSucceeded, fmt.Sprintf("%s/%s/%s/%d", eventtype.SagaStepSucceeded, c.SagaID, c.Step, c.Attempt),
				c.Subscription.SubscriptionID, eventtype.SagaReply{SagaID: c.SagaID, Step: c.Step, Attempt: c.Attempt, Subscription: c.Subscription})
			if err != nil {
				return err
			}
			return outbox.Write(ctx, tx, r)
		})
	case eventtype.SubscriptionExpired: // lifecycle, not saga: both modes
		var d eventtype.SubscriptionData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		return nil, postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error { return revoke(ctx, tx, d) })
	}
	return nil, nil
}

type state struct {
	premium bool
	until   *time.Time
	version int64
}

func load(ctx context.Context, tx pgx.Tx, userID string) (state, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO app_user (user_id) VALUES ($1) ON CONFLICT DO NOTHING`, userID); err != nil {
		return state{}, fmt.Errorf("app_user %s: %w", userID, err)
	}
	var s state
	err := tx.QueryRow(ctx, `SELECT is_premium, premium_until, version FROM app_user WHERE user_id=$1 FOR UPDATE`, userID).Scan(&s.premium, &s.until, &s.version)
	if err != nil {
		return s, fmt.Errorf("lock app_user %s: %w", userID, err)
	}
	return s, nil
}

func save(ctx context.Context, tx pgx.Tx, userID string, s state) error {
	if _, err := tx.Exec(ctx, `UPDATE app_user SET is_premium=$2, premium_until=$3, version=$4, updated_at=now() WHERE user_id=$1`,
		userID, s.premium, s.until, s.version); err != nil {
		return fmt.Errorf("update app_user %s: %w", userID, err)
	}
	e, err := saga.NewEvent(Source, eventtype.UserUpdated, eventtype.UserUpdated+"/"+userID+"/"+strconv.FormatInt(s.version, 10), userID,
		eventtype.UserUpdatedData{UserID: userID, IsPremium: s.premium, PremiumUntil: s.until, Version: s.version})
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, e)
}

// grant extends premium to the end of d's paid period as the subscription
// store recorded it (ErrUnverified when it recorded none).
func grant(ctx context.Context, tx pgx.Tx, d eventtype.SubscriptionData) error {
	x, paid, err := sub.PaidPeriodOf(ctx, tx, d.SubscriptionID, d.Period)
	if err != nil {
		return err
	}
	s, err := load(ctx, tx, x.UserID)
	if err != nil {
		return err
	}
	if s.until != nil && !s.until.Before(paid.EndsAt) {
		// Already granted at least this far (a duplicate or an older grant), or
		// granted this far and since revoked by expiry: nothing to do.
		return nil
	}
	end := paid.EndsAt.UTC()
	s.premium, s.until, s.version = true, &end, s.version+1
	return save(ctx, tx, x.UserID, s)
}

// revoke ends premium for a subscription the store says expired, unless a
// later paid period extended it.
func revoke(ctx context.Context, tx pgx.Tx, d eventtype.SubscriptionData) error {
	x, err := sub.Status(ctx, tx, d.SubscriptionID)
	if err != nil {
		return err
	}
	if x.Status != sub.StatusExpired {
		return fmt.Errorf("subscription %s is %s, not expired: %w", x.ID, x.Status, sub.ErrUnverified)
	}
	s, err := load(ctx, tx, x.UserID)
	if err != nil {
		return err
	}
	if !s.premium {
		return nil
	}
	if s.until != nil && x.PeriodEnd != nil && s.until.After(*x.PeriodEnd) {
		return nil // a later paid period extended premium beyond this subscription
	}
	s.premium, s.version = false, s.version+1
	return save(ctx, tx, x.UserID, s)
}

// Premium reports a user's entitlement (for tests, the API and the saga
// manager, which checks a grant reply against it); q is a pool or a tx.
func Premium(ctx context.Context, q sub.Querier, userID string) (bool, *time.Time, error) {
	var p bool
	var until *time.Time
	err := q.QueryRow(ctx, `SELECT is_premium, premium_until FROM app_user WHERE user_id=$1`, userID).Scan(&p, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil, nil
	}
	return p, until, err
}
