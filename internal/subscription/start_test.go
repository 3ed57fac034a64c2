package subscription_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/testenv"
)

// A start that fails, here on its migration, leaves nothing connected to
// the database: the pool it opened was given back.
func TestFailedStartHoldsNoConnection(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	// An object in the way of the first migration's CREATE TABLE.
	prep := postgrestest.Open(t, url)
	_, err := prep.Exec(t.Context(), `CREATE VIEW subscription AS SELECT 1 AS id`)
	require.NoError(t, err)
	prep.Close()

	pools := &postgres.Pools{}
	t.Cleanup(pools.Close)
	env := lifecycle.Env{Name: "subscription-api", Log: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry(), Pools: pools}
	err = lifecycle.Start(t.Context(), subscription.New(), env, map[string]string{
		"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1:8080",
		"PAYMENT_PROVIDER_URL": "http://127.0.0.1:1/v3", "PAYMENT_SHOP_ID": "shop", "PAYMENT_SECRET_KEY": "key",
		"PAYMENT_WEBHOOK_SECRET": "whsec",
	})
	require.ErrorContains(t, err, "migrations of subscription")
	require.Zero(t, pools.Held(), "the host still holds the failed service's pool")
	testenv.WaitFor(t, 2*time.Minute, "no connection to the database to remain after the failed start",
		func() bool { return postgrestest.Connections(t, url) == 0 })
}

// Without its secrets and URLs the service does not start, and the error
// names every missing key.
func TestStartNamesMissingKeys(t *testing.T) {
	t.Parallel()
	err := lifecycle.Start(t.Context(), subscription.New(), lifecycle.Env{Name: "subscription-api"}, map[string]string{})
	for _, key := range []string{"DATABASE_URL", "AUTH_JWKS_URL", "AUTH_ISSUER", "PAYMENT_PROVIDER_URL", "PAYMENT_SHOP_ID", "PAYMENT_SECRET_KEY", "PAYMENT_WEBHOOK_SECRET"} {
		require.ErrorContains(t, err, key)
	}
}
