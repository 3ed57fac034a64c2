package user_test

import (
	"context"
	"testing"
	"time"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func deliver(t *testing.T, f *user.Function, typ, id string, d eventtype.SubscriptionData) {
	t.Helper()
	e, err := saga.NewEvent("/overture/subscription", typ, id, d.SubscriptionID, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// Grants are idempotent under duplicates and reordering; a revoke applies
// only when no later period extended premium; UserUpdated is announced once
// per real change with an increasing version.
func TestGrantAndRevokeUnderDuplicatesAndReordering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := user.New()
	pool := functiontest.Start(t, f, nil)
	end1 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	end2 := end1.AddDate(0, 1, 0)
	p1 := eventtype.SubscriptionData{SubscriptionID: "s1", UserID: "u1", PeriodEnd: &end1, Period: 1}
	p2 := eventtype.SubscriptionData{SubscriptionID: "s1", UserID: "u1", PeriodEnd: &end2, Period: 2}

	check := func(wantPremium bool, wantUntil time.Time, wantUpdates int) {
		t.Helper()
		premium, until, err := user.Premium(ctx, pool, "u1")
		if err != nil {
			t.Fatal(err)
		}
		n := outboxtest.Types(t, pool)[eventtype.UserUpdated]
		if premium != wantPremium || until == nil || !until.Equal(wantUntil) || n != wantUpdates {
			t.Fatalf("premium=%v until=%v updates=%d; want %v %v %d", premium, until, n, wantPremium, wantUntil, wantUpdates)
		}
	}
	deliver(t, f, eventtype.SubscriptionActivated, "a1", p1)
	deliver(t, f, eventtype.SubscriptionActivated, "a1", p1) // duplicate
	check(true, end1, 1)
	deliver(t, f, eventtype.SubscriptionRenewed, "r2", p2)
	deliver(t, f, eventtype.SubscriptionActivated, "a1", p1) // late, older grant
	check(true, end2, 2)
	deliver(t, f, eventtype.SubscriptionExpired, "x1", p1) // expiry of the older period: premium continues
	check(true, end2, 2)
	deliver(t, f, eventtype.SubscriptionExpired, "x2", p2)
	deliver(t, f, eventtype.SubscriptionExpired, "x2", p2)
	check(false, end2, 3)
	deliver(t, f, eventtype.SubscriptionRenewed, "r2", p2) // a duplicate grant after the revoke does not bring premium back
	check(false, end2, 3)
}
