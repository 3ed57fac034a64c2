package subscription_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/testenv"
)

// Join gives the subscription and renewal functions a migrated database and
// a Store configured from cfg; a bad setting fails the start with the
// function's name and the key, and leaves no pool open.
func TestJoin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     map[string]string
		wantErr string
	}{
		{name: "defaults", cfg: map[string]string{}},
		{name: "settings", cfg: map[string]string{"SAGA_MODE": "orchestration", "DUNNING_SCHEDULE": "1h,2h", "SUBSCRIPTION_PENDING_TIMEOUT": "5m"}},
		{name: "bad pending timeout", cfg: map[string]string{"SUBSCRIPTION_PENDING_TIMEOUT": "soon"}, wantErr: "SUBSCRIPTION_PENDING_TIMEOUT"},
		{name: "bad mode", cfg: map[string]string{"SAGA_MODE": "both"}, wantErr: "SAGA_MODE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c.cfg["DATABASE_URL"] = testenv.Postgres(t)
			var p saga.Participant
			st, err := subscription.Join(ctx, &p, c.cfg, "renewal")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Join error %v, want one naming %s", err, c.wantErr)
				}
				if p.Pool != nil && p.Pool.Ping(ctx) == nil {
					t.Fatal("a failed Join left its pool open")
				}
				return
			}
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			defer p.Stop(ctx)
			if want := saga.Mode(c.cfg["SAGA_MODE"]); want != "" && p.Mode != want {
				t.Fatalf("mode %q, want %q", p.Mode, want)
			}
			x, err := st.Create(ctx, "u1", "monthly", "")
			if err != nil {
				t.Fatalf("Create on the joined store: %v", err)
			}
			if x.Status == "" || x.UserID != "u1" {
				t.Fatalf("created %+v", x)
			}
		})
	}
}
