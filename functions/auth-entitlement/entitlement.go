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

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
)

// Entitlement is the function.
type Entitlement struct {
	lifecycle.Base
	pool *postgres.Pool
	rdb  *redis.Client
}

// New returns the function.
func New() *Entitlement { return &Entitlement{} }

// Config is the function's settings.
type Config struct {
	DatabaseURL string         // DATABASE_URL: auth's and the user function's tables
	Redis       *redis.Options // REDIS_URL: where the entitlement versions live
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(postgres.KeyDatabaseURL)
	if u := r.String("REDIS_URL"); u != "" {
		var err error
		if c.Redis, err = redis.ParseURL(u); err != nil {
			r.Fail("REDIS_URL", "not a redis:// URL")
		}
	}
}

// ConfigKeys lists the settings the function reads.
func (f *Entitlement) ConfigKeys() []config.Key { return config.KeysFor[Config]() }

// Start opens PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) and migrates
// auth's tables and the user function's, which events are checked against.
// Ready follows both.
func (f *Entitlement) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("auth-entitlement: %w", err)
	}
	pool, err := f.OpenPool(ctx, c.DatabaseURL, func(ctx context.Context, p *pgxpool.Pool) error {
		return auth.Migrate(ctx, &postgres.Pool{Pool: p})
	}, user.Migrate)
	if err != nil {
		return fmt.Errorf("auth-entitlement: %w", err)
	}
	rdb := redis.NewClient(c.Redis)
	f.Hold("redis", rdb.Close, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	f.pool, f.rdb = pool, rdb
	return nil
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
