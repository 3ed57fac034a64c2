package saga_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	paymentfn "github.com/overture-music/overture/functions/payment"
	sagamanager "github.com/overture-music/overture/functions/saga-manager"
	subscriptionfn "github.com/overture-music/overture/functions/subscription"
	userfn "github.com/overture-music/overture/functions/user"

	renewalfn "github.com/overture-music/overture/functions/renewal"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

// Every saga participant is ready only while its database answers: during
// an outage each reports not ready (the broker and a Knative readiness probe
// then stop sending to it), and each is ready again once the database is
// back, without a restart.
func TestParticipantsFollowTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := postgrestest.NewOutage(t, testenv.Postgres(t))
	cfg := map[string]string{
		"DATABASE_URL": db.URL, "SAGA_MODE": "orchestration",
		// The provider is never called here; the adapter needs its settings.
		"PAYMENT_PROVIDER_URL": "http://127.0.0.1:1/v3", "PAYMENT_SHOP_ID": "shop", "PAYMENT_SECRET_KEY": "key",
	}
	pools := &postgres.Pools{}
	t.Cleanup(pools.Close)
	participants := map[string]function.Handler{
		"payment": paymentfn.New(), "subscription": subscriptionfn.New(), "user": userfn.New(),
		"renewal": renewalfn.New(), "saga-manager": sagamanager.New(),
	}
	for name, h := range participants {
		env := lifecycle.Env{Name: name, Log: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry(), Pools: pools}
		require.NoError(t, function.Start(ctx, h, env, cfg), name)
		t.Cleanup(func() { require.NoError(t, function.Stop(context.Background(), h)) })
	}
	ready := func(want bool) func() bool {
		return func() bool {
			for _, h := range participants {
				if ok, err := function.Ready(ctx, h); ok != want || (err == nil) != want {
					return false
				}
			}
			return true
		}
	}
	require.True(t, ready(true)(), "a participant is not ready with its database up")
	db.Down()
	testenv.WaitFor(t, 2*time.Minute, "every participant to report not ready with PostgreSQL down", ready(false))
	db.Up(t)
	testenv.WaitFor(t, 2*time.Minute, "every participant to report ready with PostgreSQL back", ready(true))
}
