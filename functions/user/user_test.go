package user_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/saga/sagatest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func deliver(t *testing.T, f *user.Function, typ, id string, d any) {
	t.Helper()
	e, err := saga.NewEvent("/overture/subscription", typ, id, "s", d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// paid records, as the subscription function does, that subscription id of
// userID has paid period n ending at end (the subscription's current period).
func paid(t *testing.T, pool *pgxpool.Pool, id, userID string, n int, end time.Time) eventtype.SubscriptionData {
	t.Helper()
	ctx := context.Background()
	start := end.AddDate(0, -1, 0)
	if _, err := pool.Exec(ctx, `INSERT INTO subscription (id, user_id, plan, status, amount_minor, currency, current_period, period_start, period_end)
		VALUES ($1,$2,'monthly','active',29900,'RUB',$3,$4,$5)
		ON CONFLICT (id) DO UPDATE SET current_period=$3, period_start=$4, period_end=$5`, id, userID, n, start, end); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO subscription_period (subscription_id, period, payment_id, amount_minor, starts_at, ends_at)
		VALUES ($1,$2,$5,29900,$3,$4)`, id, n, start, end, fmt.Sprintf("%s:%d:1", id, n)); err != nil {
		t.Fatal(err)
	}
	return eventtype.SubscriptionData{SubscriptionID: id, UserID: userID, PeriodEnd: &end, Period: n}
}

func expire(t *testing.T, pool *pgxpool.Pool, id string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE subscription SET status='expired' WHERE id=$1`, id); err != nil {
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
	p1 := paid(t, pool, "s1", "u1", 1, end1)

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
	expire(t, pool, "s1")
	p2 := paid(t, pool, "s2", "u1", 1, end2) // a second subscription paid further
	deliver(t, f, eventtype.SubscriptionActivated, "a2", p2)
	deliver(t, f, eventtype.SubscriptionActivated, "a1", p1) // late, older grant
	check(true, end2, 2)
	deliver(t, f, eventtype.SubscriptionExpired, "x1", p1) // expiry of the older period: premium continues
	check(true, end2, 2)
	expire(t, pool, "s2")
	deliver(t, f, eventtype.SubscriptionExpired, "x2", p2)
	deliver(t, f, eventtype.SubscriptionExpired, "x2", p2)
	check(false, end2, 3)
	deliver(t, f, eventtype.SubscriptionActivated, "a2", p2) // a duplicate grant after the revoke does not bring premium back
	check(false, end2, 3)
}

// The attack of issue 10: a forged SubscriptionActivated gave ten years of
// premium with no subscription at all. Premium now follows only the periods
// the subscription store recorded as paid, for the store's user and until
// the store's period end; a forged expiry revokes nothing. Both modes (a
// forged grant_premium command is not answered either).
func TestForgedSubscriptionFactsGrantNothing(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		ctx := context.Background()
		f := user.New()
		pool := functiontest.Start(t, f, cfg)
		decade := time.Now().AddDate(10, 0, 0).UTC()
		end := time.Now().AddDate(0, 1, 0).UTC().Truncate(time.Second)
		real := paid(t, pool, "s-paid", "u-paying", 1, end)
		if _, err := pool.Exec(ctx, `INSERT INTO subscription (id, user_id, plan, status, amount_minor, currency) VALUES ('s-pending','u-free','annual','pending',299000,'RUB')`); err != nil {
			t.Fatal(err)
		}
		forged := []eventtype.SubscriptionData{
			{SubscriptionID: "nowhere", UserID: "u-free", PeriodEnd: &decade, Period: 1},   // no subscription
			{SubscriptionID: "s-pending", UserID: "u-free", PeriodEnd: &decade, Period: 1}, // not paid
			{SubscriptionID: "s-paid", UserID: "u-paying", PeriodEnd: &decade, Period: 2},  // a period never paid
		}
		grant := func(id string, d eventtype.SubscriptionData) {
			if mode == saga.Choreography {
				deliver(t, f, eventtype.SubscriptionActivated, id, d)
				return
			}
			deliver(t, f, eventtype.SagaGrantPremium, id, eventtype.SagaCommand{SagaID: d.SubscriptionID + ":1:1", Step: saga.StepGrant, Attempt: 1, Subscription: &d})
		}
		for i, d := range forged {
			grant("forged-"+string(rune('a'+i)), d)
		}
		for _, u := range []string{"u-free", "u-paying"} {
			if premium, until, _ := user.Premium(ctx, pool, u); premium || until != nil {
				t.Fatalf("%s: premium=%v until=%v after forged activations", u, premium, until)
			}
		}
		if got := outboxtest.Types(t, pool); got[eventtype.UserUpdated]+got[eventtype.SagaStepSucceeded] != 0 {
			t.Fatalf("forged activations announced %v", got)
		}
		// The real period grants premium to its user until the store's end,
		// whatever user and end the event claims.
		claimed := real
		claimed.UserID, claimed.PeriodEnd = "u-free", &decade
		grant("real", claimed)
		if premium, until, _ := user.Premium(ctx, pool, "u-paying"); !premium || until == nil || !until.Equal(end) {
			t.Fatalf("real grant: premium=%v until=%v, want until %v", premium, until, end)
		}
		if premium, _, _ := user.Premium(ctx, pool, "u-free"); premium {
			t.Fatal("the event's user_id was granted premium")
		}
		// A forged expiry of a running subscription revokes nothing.
		deliver(t, f, eventtype.SubscriptionExpired, "forged-expiry", real)
		if premium, _, _ := user.Premium(ctx, pool, "u-paying"); !premium {
			t.Fatal("a forged SubscriptionExpired revoked premium")
		}
	})
}
