package subscription_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	subscriptionfn "github.com/overture-music/overture/functions/subscription"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/saga/sagatest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A duplicated PaymentCompleted (choreography) or apply_payment command
// (orchestration) records the paid period once and announces one activation;
// in orchestration every command is answered.
func TestPaidPeriodOnceUnderDuplicates(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		ctx := context.Background()
		f := subscriptionfn.New()
		pool := functiontest.Start(t, f, cfg)
		x, err := f.Store.Create(ctx, "u", "annual", "tok_success")
		if err != nil {
			t.Fatal(err)
		}
		paid := eventtype.PaymentData{PaymentID: x.ID + ":1:1", SubscriptionID: x.ID, UserID: "u", AmountMinor: 299000, Currency: "RUB",
			Purpose: "initial", Period: 1, Attempt: 1, PaymentMethodID: "pm_1", Outcome: "completed"}
		capture(t, pool, paid)
		fact, _ := saga.NewEvent("/overture/payment", eventtype.PaymentCompleted, "completed-1", x.ID, paid)
		for attempt := 1; attempt <= 2; attempt++ {
			cmd, _ := saga.NewEvent("/overture/saga-manager", eventtype.SagaApplyPayment, "apply-"+string(rune('0'+attempt)), x.ID,
				eventtype.SagaCommand{SagaID: x.ID + ":1:1", Step: saga.StepApply, Attempt: attempt, Payment: &paid})
			for range 2 {
				if _, err := f.Handle(ctx, fact); err != nil {
					t.Fatal(err)
				}
				if _, err := f.Handle(ctx, cmd); err != nil {
					t.Fatal(err)
				}
			}
		}
		var periods int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM subscription_period WHERE subscription_id=$1`, x.ID).Scan(&periods); err != nil || periods != 1 {
			t.Fatalf("%d paid periods (%v), want 1", periods, err)
		}
		if n := outboxtest.Types(t, pool)[eventtype.SubscriptionActivated]; n != 1 {
			t.Fatalf("%d SubscriptionActivated, want 1", n)
		}
		replies := outboxtest.DistinctIDs(t, pool, eventtype.SagaStepSucceeded)
		if mode == saga.Orchestration && replies != 2 || mode == saga.Choreography && replies != 0 {
			t.Fatalf("%s: %d distinct replies", mode, replies)
		}
		got, _ := f.Store.Get(ctx, x.ID)
		if got.Status != "active" || got.PaymentMethodID != "pm_1" {
			t.Fatalf("subscription %+v", got)
		}
	})
}

// capture records d in the payment ledger as a captured payment, as the
// payment function does when the provider confirms the charge.
func capture(t *testing.T, pool *pgxpool.Pool, d eventtype.PaymentData) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency,
		status, saved_method_id, provider_payment_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'succeeded',NULLIF($9,''),$1||'-provider')`,
		d.PaymentID, d.SubscriptionID, d.UserID, d.Period, d.Attempt, d.Purpose, d.AmountMinor, d.Currency, d.PaymentMethodID); err != nil {
		t.Fatalf("capture %s: %v", d.PaymentID, err)
	}
}

// The attack of issue 10: eleven forged PaymentCompleted with amount 0 added
// twelve paid months. Forged payment facts — payments that exist nowhere, a
// capture of another subscription, an attempt that is still pending — now
// record no period and announce nothing, in both modes; a real capture of
// the wrong amount backs no period and is refunded (SubscriptionFailed).
func TestForgedPaymentsRecordNoPeriod(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		ctx := context.Background()
		f := subscriptionfn.New()
		pool := functiontest.Start(t, f, cfg)
		victim, err := f.Store.Create(ctx, "u-free", "monthly", "tok_success")
		if err != nil {
			t.Fatal(err)
		}
		other, err := f.Store.Create(ctx, "u-other", "monthly", "tok_success")
		if err != nil {
			t.Fatal(err)
		}
		otherPaid := eventtype.PaymentData{PaymentID: other.ID + ":1:1", SubscriptionID: other.ID, UserID: "u-other", AmountMinor: other.AmountMinor,
			Currency: "RUB", Purpose: "initial", Period: 1, Attempt: 1, Outcome: "completed"}
		capture(t, pool, otherPaid)
		if _, err := pool.Exec(ctx, `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency)
			VALUES ($1,$2,'u-free',1,1,'initial',$3,'RUB')`, victim.ID+":1:1", victim.ID, victim.AmountMinor); err != nil {
			t.Fatal(err)
		}
		var forged []eventtype.PaymentData
		for period := 1; period <= 11; period++ { // the reproduction: amount 0, invented payment ids
			forged = append(forged, eventtype.PaymentData{PaymentID: fmt.Sprintf("forged-%d", period), SubscriptionID: victim.ID, UserID: "u-free",
				AmountMinor: 0, Currency: "RUB", Purpose: "renewal", Period: period, Attempt: 1, Outcome: "completed"})
		}
		stolen := otherPaid
		stolen.SubscriptionID = victim.ID // another subscription's capture
		pending := forged[0]
		pending.PaymentID = victim.ID + ":1:1" // our attempt, not captured yet
		forged = append(forged, stolen, pending)
		for i, d := range forged {
			fact, _ := saga.NewEvent("/overture/payment", eventtype.PaymentCompleted, fmt.Sprintf("forged-fact-%d", i), victim.ID, d)
			cmd, _ := saga.NewEvent("/overture/saga-manager", eventtype.SagaApplyPayment, fmt.Sprintf("forged-cmd-%d", i), victim.ID,
				eventtype.SagaCommand{SagaID: victim.ID + ":1:1", Step: saga.StepApply, Attempt: 1, Payment: &d})
			for _, e := range []event.Event{fact, cmd} {
				if _, err := f.Handle(ctx, e); err != nil {
					t.Fatalf("forged %d: %v (a refusal is acknowledged, not retried)", i, err)
				}
			}
		}
		var periods int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM subscription_period`).Scan(&periods); err != nil || periods != 0 {
			t.Fatalf("%d paid periods after forged payments (%v), want 0", periods, err)
		}
		if got := outboxtest.Types(t, pool); got[eventtype.SubscriptionActivated]+got[eventtype.SubscriptionRenewed]+got[eventtype.SubscriptionFailed]+
			got[eventtype.SagaStepSucceeded]+got[eventtype.SagaStepFailed] != 0 {
			t.Fatalf("forged payments announced %v", got)
		}
		if x, _ := f.Store.Get(ctx, victim.ID); x.Status != "pending" {
			t.Fatalf("victim subscription %s, want still pending", x.Status)
		}

		// A real capture of the wrong amount (0.01 RUB for a 299 RUB month):
		// no period; refused so that it is refunded.
		cheap := eventtype.PaymentData{PaymentID: victim.ID + ":1:2", SubscriptionID: victim.ID, UserID: "u-free", AmountMinor: 1,
			Currency: "RUB", Purpose: "initial", Period: 1, Attempt: 2, Outcome: "completed"}
		capture(t, pool, cheap)
		fact, _ := saga.NewEvent("/overture/payment", eventtype.PaymentCompleted, "cheap", victim.ID, cheap)
		cmd, _ := saga.NewEvent("/overture/saga-manager", eventtype.SagaApplyPayment, "cheap-cmd", victim.ID,
			eventtype.SagaCommand{SagaID: victim.ID + ":1:2", Step: saga.StepApply, Attempt: 1, Payment: &cheap})
		for _, e := range []event.Event{fact, cmd} {
			if _, err := f.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM subscription_period`).Scan(&periods); err != nil || periods != 0 {
			t.Fatalf("%d paid periods after a 0.01 RUB capture, want 0", periods)
		}
		got := outboxtest.Types(t, pool)
		if got[eventtype.SubscriptionActivated] != 0 || got[eventtype.SubscriptionFailed] != 1 {
			t.Fatalf("wrong-amount capture announced %v, want one SubscriptionFailed (refund)", got)
		}
		if mode == saga.Orchestration && got[eventtype.SagaStepFailed] != 1 {
			t.Fatalf("orchestration: %v, want the apply step answered as failed", got)
		}
	})
}
