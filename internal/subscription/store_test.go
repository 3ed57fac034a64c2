package subscription_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/subscription"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(t *testing.T) (*subscription.Store, *clock, *pgxpool.Pool) {
	t.Helper()
	pool := postgrestest.Pool(t, subscription.Migrate)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st, err := subscription.NewStore(pool, map[string]string{"DUNNING_SCHEDULE": "24h,72h,120h"})
	if err != nil {
		t.Fatal(err)
	}
	st.Now = c.now
	return st, c, pool
}

func apply(t *testing.T, st *subscription.Store, d eventtype.PaymentData, completed bool) subscription.Outcome {
	t.Helper()
	record(t, st.Pool, d, completed)
	var out subscription.Outcome
	err := postgres.InTx(context.Background(), st.Pool, func(tx pgx.Tx) error {
		var err error
		out, err = st.ApplyPayment(context.Background(), tx, d, completed)
		if err != nil {
			return err
		}
		return outbox.Write(context.Background(), tx, out.Events...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func types(out subscription.Outcome) []string {
	var s []string
	for _, e := range out.Events {
		s = append(s, e.Type())
	}
	return s
}

func sweepTypes(t *testing.T, st *subscription.Store, pool *pgxpool.Pool) []string {
	t.Helper()
	ctx := context.Background()
	var last int64
	_ = pool.QueryRow(ctx, `SELECT COALESCE(max(id),0) FROM outbox`).Scan(&last)
	if _, err := st.Sweep(ctx, true); err != nil {
		t.Fatal(err)
	}
	rows, _ := pool.Query(ctx, `SELECT event_type FROM outbox WHERE id > $1 ORDER BY id`, last)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func status(t *testing.T, st *subscription.Store, id string) *subscription.Subscription {
	t.Helper()
	x, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func paid(sub *subscription.Subscription, period, attempt int) eventtype.PaymentData {
	return eventtype.PaymentData{PaymentID: sub.ID + ":" + string(rune('0'+period)) + ":" + string(rune('0'+attempt)), SubscriptionID: sub.ID,
		UserID: sub.UserID, AmountMinor: sub.AmountMinor, Currency: "RUB", Period: period, Attempt: attempt, PaymentMethodID: "pm_saved", Reason: "insufficient_funds"}
}

// Activation once; renewal at period end; a failing renewal goes past_due,
// retried at +1, +3 and +5 days, then canceled; premium ends (expired) only
// when the paid period has ended.
func TestLifecycleRenewalDunningExpiry(t *testing.T) {
	t.Parallel()
	st, c, pool := newStore(t)
	ctx := context.Background()
	sub, err := st.Create(ctx, "u-dunning", "monthly", "tok_success")
	if err != nil {
		t.Fatal(err)
	}
	if got := types(apply(t, st, paid(sub, 1, 1), true)); len(got) != 1 || got[0] != eventtype.SubscriptionActivated {
		t.Fatalf("activation events %v", got)
	}
	if got := types(apply(t, st, paid(sub, 1, 1), true)); len(got) != 0 {
		t.Fatalf("duplicate PaymentCompleted announced %v", got)
	}
	x := status(t, st, sub.ID)
	if x.Status != subscription.StatusActive || !x.PeriodEnd.Equal(c.t.AddDate(0, 1, 0)) {
		t.Fatalf("after activation: %+v", x)
	}
	end := *x.PeriodEnd
	if got := sweepTypes(t, st, pool); len(got) != 0 {
		t.Fatalf("sweep before period end: %v", got)
	}
	c.t = end.Add(time.Second)
	if got := sweepTypes(t, st, pool); len(got) != 1 || got[0] != eventtype.SubscriptionRenewalDue {
		t.Fatalf("sweep at period end: %v", got)
	}
	if got := sweepTypes(t, st, pool); len(got) != 0 {
		t.Fatalf("second sweep asked again: %v", got)
	}
	firstFail := c.t
	for attempt, offset := range []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour} {
		got := types(apply(t, st, paid(sub, 2, attempt+1), false))
		x = status(t, st, sub.ID)
		if len(got) != 1 || got[0] != eventtype.SubscriptionRenewalFailed || x.Status != subscription.StatusPastDue || !x.NextRetryAt.Equal(firstFail.Add(offset)) {
			t.Fatalf("failed attempt %d: %v %+v", attempt+1, got, x)
		}
		c.t = firstFail.Add(offset).Add(-time.Minute)
		if got := sweepTypes(t, st, pool); len(got) != 0 {
			t.Fatalf("retry before it is due: %v", got)
		}
		c.t = firstFail.Add(offset)
		if got := sweepTypes(t, st, pool); len(got) != 1 || got[0] != eventtype.SubscriptionRenewalDue {
			t.Fatalf("retry %d not asked: %v", attempt+2, got)
		}
	}
	if got := types(apply(t, st, paid(sub, 2, 4), false)); len(got) != 1 || got[0] != eventtype.SubscriptionCanceled {
		t.Fatalf("last failure: %v", got)
	}
	if got := sweepTypes(t, st, pool); len(got) != 1 || got[0] != eventtype.SubscriptionExpired {
		t.Fatalf("expiry of a canceled subscription past its period: %v", got)
	}
	if x = status(t, st, sub.ID); x.Status != subscription.StatusExpired {
		t.Fatalf("final status %s", x.Status)
	}
}

// Cancel keeps premium until the period ends; a renewal pays the next period
// after the current one; a payment arriving after the purchase failed is
// refused (and so refunded).
func TestCancelRenewAndRefusedPayment(t *testing.T) {
	t.Parallel()
	st, c, pool := newStore(t)
	ctx := context.Background()
	sub, _ := st.Create(ctx, "u-cancel", "monthly", "")
	apply(t, st, paid(sub, 1, 1), true)
	end := *status(t, st, sub.ID).PeriodEnd
	c.t = end.Add(time.Second)
	sweepTypes(t, st, pool)
	if got := types(apply(t, st, paid(sub, 2, 1), true)); len(got) != 1 || got[0] != eventtype.SubscriptionRenewed {
		t.Fatalf("renewal: %v", got)
	}
	x := status(t, st, sub.ID)
	if x.CurrentPeriod != 2 || !x.PeriodEnd.After(end) {
		t.Fatalf("after renewal %+v", x)
	}
	if _, err := st.Cancel(ctx, "u-cancel"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Cancel(ctx, "u-cancel"); err != subscription.ErrAlreadyCanceled {
		t.Fatalf("second cancel: %v", err)
	}
	if got := sweepTypes(t, st, pool); len(got) != 0 {
		t.Fatalf("canceled subscription swept before its period ended: %v", got)
	}
	c.t = x.PeriodEnd.Add(time.Second)
	if got := sweepTypes(t, st, pool); len(got) != 1 || got[0] != eventtype.SubscriptionExpired {
		t.Fatalf("expiry: %v", got)
	}

	late, _ := st.Create(ctx, "u-late", "monthly", "")
	c.t = c.t.Add(24 * time.Hour) // past the pending deadline
	sweepTypes(t, st, pool)
	if x := status(t, st, late.ID); x.Status != subscription.StatusFailed {
		t.Fatalf("unpaid purchase: %s", x.Status)
	}
	out := apply(t, st, paid(late, 1, 1), true)
	if !out.Refused || len(out.Events) != 1 || out.Events[0].Type() != eventtype.SubscriptionFailed {
		t.Fatalf("late payment: refused=%v %v", out.Refused, types(out))
	}
}
