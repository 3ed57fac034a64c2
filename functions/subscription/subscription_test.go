package subscription_test

import (
	"context"
	"testing"

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
