// Package authentitlement is the auth service's consumer of UserUpdated: it
// keeps the premium entitlement that access tokens carry in step with the
// subscription saga. It is a separate function (not part of the auth HTTP
// service) so that the broker delivers to it with retries and a dead-letter
// sink like every other step, and so it scales to zero on its own.
//
// Each event is applied once (inbox) and only if newer than the stored state;
// what is applied is the user function's own row (app_user), never the
// event's claims, and a version the user function never issued is refused
// (see auth.ApplyUserUpdated). A changed premium state bumps the entitlement
// version, so the next /v1/auth/refresh issues a token with the new premium
// claim and ent_ver, and the CDN edge can reject older tokens by reading
// auth:entitlement:<user_id> from Redis.
package authentitlement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
)

// Entitlement is the function.
type Entitlement struct {
	Log  *slog.Logger
	pool *postgres.Pool
	rdb  *redis.Client
}

// New returns the function.
func New() *Entitlement { return &Entitlement{} }

// Start opens PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) and migrates
// auth's tables and the user function's, which events are checked against.
func (f *Entitlement) Start(ctx context.Context, cfg map[string]string) error {
	if f.Log == nil {
		f.Log = telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv())
	}
	pool, err := postgres.Open(ctx, cfg["DATABASE_URL"])
	if err != nil {
		return fmt.Errorf("auth-entitlement: %w", err)
	}
	if err := auth.Migrate(ctx, pool); err != nil {
		pool.Close()
		return err
	}
	if err := user.Migrate(ctx, pool.Pool); err != nil {
		pool.Close()
		return fmt.Errorf("auth-entitlement: %w", err)
	}
	if cfg["REDIS_URL"] == "" {
		pool.Close()
		return errors.New("auth-entitlement: REDIS_URL is not set")
	}
	opt, err := redis.ParseURL(cfg["REDIS_URL"])
	if err != nil {
		pool.Close()
		return fmt.Errorf("auth-entitlement: parse REDIS_URL: %w", err)
	}
	f.pool, f.rdb = pool, redis.NewClient(opt)
	return nil
}

// Stop releases the clients.
func (f *Entitlement) Stop(context.Context) error {
	if f.rdb != nil {
		_ = f.rdb.Close()
	}
	if f.pool != nil {
		f.pool.Close()
	}
	return nil
}

// Ready reports whether PostgreSQL and Redis answer.
func (f *Entitlement) Ready(ctx context.Context) (bool, error) {
	if f.pool == nil {
		return false, nil
	}
	if err := f.pool.Ping(ctx); err != nil {
		return false, err
	}
	return f.rdb.Ping(ctx).Err() == nil, nil
}

// Handle applies one UserUpdated event. An unusable event is logged and
// acknowledged (retrying cannot help); other errors are returned so the broker
// retries.
func (f *Entitlement) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	ctx = telemetry.FromEvent(ctx, e)
	bumped, err := auth.ApplyUserUpdated(ctx, f.pool.Pool, f.rdb, e)
	if errors.Is(err, auth.ErrBadEntitlementEvent) {
		f.Log.ErrorContext(ctx, "dropping unusable event", "event_id", e.ID(), "type", e.Type(), "error", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", e.Type(), e.ID(), err)
	}
	f.Log.InfoContext(ctx, "entitlement applied", "event_id", e.ID(), "subject", e.Subject(), "version_bumped", bumped)
	return nil, nil
}
