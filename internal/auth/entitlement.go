package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/token"
)

// EntitlementConsumer is the inbox consumer name of the entitlement function.
const EntitlementConsumer = "auth-entitlement"

// EntitlementKey is the Redis key the CDN edge reads to reject access tokens
// whose ent_ver is older than the user's current entitlement version (see
// token.Claims.PremiumCurrent).
func EntitlementKey(userID string) string { return token.EntitlementKey(userID) }

// EntitlementState is the JSON stored at EntitlementKey.
type EntitlementState = token.EntitlementState

// ErrBadEntitlementEvent is a UserUpdated event that can never be applied
// (wrong type, undecodable data, a version the user function never issued);
// retrying it is pointless.
var ErrBadEntitlementEvent = errors.New("unusable UserUpdated event")

// ApplyUserUpdated records a UserUpdated event: exactly once per event (inbox)
// and only when it is newer than what was applied, it stores the premium
// state and, when that state changed, bumps the entitlement version. The
// Redis key is then rewritten from PostgreSQL even for a duplicate, so a
// crash between the commit and the Redis write heals on redelivery. It
// reports whether the version was bumped.
//
// The event is only a signal: the state applied is the user function's own
// row (app_user, in the same database), at the version it holds now, never
// the event's is_premium or premium_until. An event whose version the user
// function has not issued (above its row's version, or for a user it has no
// row for) is refused with ErrBadEntitlementEvent and stores nothing, so a
// forged "version 2^62" cannot make later real updates look older.
func ApplyUserUpdated(ctx context.Context, pool *pgxpool.Pool, rdb *redis.Client, e event.Event) (bool, error) {
	if e.Type() != eventtype.UserUpdated {
		return false, fmt.Errorf("%w: type %s", ErrBadEntitlementEvent, e.Type())
	}
	var d eventtype.UserUpdatedData
	if err := e.DataAs(&d); err != nil || d.UserID == "" {
		return false, fmt.Errorf("%w: data: %v", ErrBadEntitlementEvent, err)
	}
	var bumped bool
	_, err := inbox.Handle(ctx, pool, EntitlementConsumer, e, func(tx pgx.Tx) error {
		issued, err := issuedEntitlement(ctx, tx, d)
		if err != nil {
			return err
		}
		var premium bool
		var until *time.Time
		var srcVer int64
		err = tx.QueryRow(ctx, `SELECT premium, premium_until, source_version FROM auth_entitlement WHERE account_id = $1 FOR UPDATE`, d.UserID).
			Scan(&premium, &until, &srcVer)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO auth_entitlement (account_id, premium, premium_until, version, source_version) VALUES ($1, $2, $3, 1, $4)`,
				d.UserID, issued.IsPremium, issued.PremiumUntil, issued.Version)
			bumped = true
			return wrap("insert entitlement", err)
		}
		if err != nil {
			return fmt.Errorf("read entitlement: %w", err)
		}
		if issued.Version <= srcVer { // this state (or a newer one) is applied already
			return nil
		}
		changed := premium != issued.IsPremium || !sameTime(until, issued.PremiumUntil)
		_, err = tx.Exec(ctx, `UPDATE auth_entitlement SET premium = $2, premium_until = $3, source_version = $4,
			version = version + CASE WHEN $5 THEN 1 ELSE 0 END, updated_at = now() WHERE account_id = $1`,
			d.UserID, issued.IsPremium, issued.PremiumUntil, issued.Version, changed)
		bumped = changed
		return wrap("update entitlement", err)
	})
	if err != nil {
		return false, err
	}
	return bumped, SyncEntitlement(ctx, pool, rdb, d.UserID)
}

// issuedEntitlement reads the user function's current state of d's user
// (its table app_user) and checks that the user function issued d's version:
// every version up to the row's was issued, none above it.
func issuedEntitlement(ctx context.Context, tx pgx.Tx, d eventtype.UserUpdatedData) (eventtype.UserUpdatedData, error) {
	got := eventtype.UserUpdatedData{UserID: d.UserID}
	err := tx.QueryRow(ctx, `SELECT is_premium, premium_until, version FROM app_user WHERE user_id = $1`, d.UserID).
		Scan(&got.IsPremium, &got.PremiumUntil, &got.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return got, fmt.Errorf("%w: the user function has no entitlement for user %s", ErrBadEntitlementEvent, d.UserID)
	}
	if err != nil {
		return got, fmt.Errorf("read the user function's entitlement of %s: %w", d.UserID, err)
	}
	if d.Version < 1 || d.Version > got.Version {
		return got, fmt.Errorf("%w: version %d of user %s was never issued (the user function is at %d)", ErrBadEntitlementEvent, d.Version, d.UserID, got.Version)
	}
	return got, nil
}

// SyncEntitlement copies the user's entitlement from PostgreSQL into Redis.
func SyncEntitlement(ctx context.Context, pool *pgxpool.Pool, rdb *redis.Client, userID string) error {
	var st EntitlementState
	err := pool.QueryRow(ctx, `SELECT version, premium, premium_until FROM auth_entitlement WHERE account_id = $1`, userID).
		Scan(&st.Version, &st.Premium, &st.PremiumUntil)
	if err != nil {
		return fmt.Errorf("read entitlement of %s: %w", userID, err)
	}
	if st.PremiumUntil != nil {
		t := st.PremiumUntil.UTC()
		st.PremiumUntil = &t
	}
	b, _ := json.Marshal(st)
	if err := rdb.Set(ctx, EntitlementKey(userID), b, 0).Err(); err != nil {
		return fmt.Errorf("publish entitlement of %s: %w", userID, err)
	}
	return nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
