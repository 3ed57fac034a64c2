package payment_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	paymentfn "github.com/overture-music/overture/functions/payment"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/saga/sagatest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Each mode acts on its own messages only, and a duplicated delivery charges
// once.
func TestModesAndDuplicates(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		ctx := context.Background()
		f, sb, pool := start(t, cfg)
		pending(t, pool, "sub-1", "u")
		pending(t, pool, "sub-2", "u2")
		req, _ := saga.NewEvent("/overture/subscription", eventtype.SubscriptionRequested, "req-1", "sub-1",
			eventtype.SubscriptionRequestedData{SubscriptionID: "sub-1", UserID: "u", Plan: "monthly", AmountMinor: 29900, Currency: "RUB", PaymentMethod: sandbox.CardSuccess})
		cmd, _ := saga.NewEvent("/overture/saga-manager", eventtype.SagaChargePayment, "cmd-1", "sub-2", eventtype.SagaCommand{SagaID: "sub-2:1:1", Step: saga.StepCharge, Attempt: 1,
			Charge: &eventtype.RenewalDueData{SubscriptionID: "sub-2", UserID: "u2", AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSuccess, Period: 1, Attempt: 1}})
		for range 2 {
			if _, err := f.Handle(ctx, req); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Handle(ctx, cmd); err != nil {
				t.Fatal(err)
			}
		}
		got := outboxtest.Types(t, pool)
		if n := len(sb.Ledger()); n != 1 {
			t.Fatalf("%d payments at the provider, want 1", n)
		}
		if got[eventtype.PaymentCompleted] != 1 {
			t.Fatalf("outbox %v, want one PaymentCompleted", got)
		}
		replies := got[eventtype.SagaStepSucceeded]
		if mode == saga.Orchestration && replies < 1 || mode == saga.Choreography && replies != 0 {
			t.Fatalf("%s: %d replies", mode, replies)
		}
	})
}

// start runs the payment function against a private payment sandbox (with
// the sandbox's own test credentials).
func start(t *testing.T, cfg map[string]string) (*paymentfn.Function, *sandbox.Sandbox, *pgxpool.Pool) {
	t.Helper()
	sb := sandbox.New(sandbox.Config{})
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	f := paymentfn.New()
	cfg["PAYMENT_PROVIDER_URL"] = srv.URL + "/v3"
	cfg["PAYMENT_SHOP_ID"], cfg["PAYMENT_SECRET_KEY"] = "sandbox-shop", "sandbox-secret"
	return f, sb, functiontest.Start(t, f, cfg)
}

// pending records subscription id of user as the subscription API does: a
// pending monthly purchase at 299 RUB.
func pending(t *testing.T, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, id, user string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO subscription (id, user_id, plan, status, amount_minor, currency)
		VALUES ($1, $2, 'monthly', 'pending', 29900, 'RUB')`, id, user); err != nil {
		t.Fatal(err)
	}
}

// A charge the subscription store does not ask for moves no money: a forged
// renewal for a subscription that does not exist, of another user, of a
// period not due, or of another amount or currency never reaches the
// provider, and the events are acknowledged (not retried).
func TestForgedChargesMoveNoMoney(t *testing.T) {
	t.Parallel()
	sagatest.EachMode(t, func(t *testing.T, mode saga.Mode, cfg map[string]string) {
		ctx := context.Background()
		f, sb, pool := start(t, cfg)
		pending(t, pool, "sub-real", "u")
		charge := func(id string, d eventtype.RenewalDueData) {
			t.Helper()
			var e event.Event
			if mode == saga.Orchestration {
				e, _ = saga.NewEvent("/overture/saga-manager", eventtype.SagaChargePayment, id, d.SubscriptionID,
					eventtype.SagaCommand{SagaID: d.SubscriptionID + ":1:1", Step: saga.StepCharge, Attempt: 1, Charge: &d})
			} else {
				e, _ = saga.NewEvent("/overture/renewal", eventtype.SubscriptionRenewalDue, id, d.SubscriptionID, d)
			}
			if _, err := f.Handle(ctx, e); err != nil {
				t.Fatalf("%s: %v, want acknowledged", id, err)
			}
		}
		base := eventtype.RenewalDueData{SubscriptionID: "sub-real", UserID: "u", AmountMinor: 29900, Currency: "RUB",
			PaymentToken: sandbox.CardSuccess, Period: 1, Attempt: 1}
		for name, mutate := range map[string]func(*eventtype.RenewalDueData){
			"no-such-subscription": func(d *eventtype.RenewalDueData) { d.SubscriptionID = "sub-nowhere" },
			"another-user":         func(d *eventtype.RenewalDueData) { d.UserID = "attacker" },
			"period-not-due":       func(d *eventtype.RenewalDueData) { d.Period = 7 },
			"another-amount":       func(d *eventtype.RenewalDueData) { d.AmountMinor = 1 },
			"another-currency":     func(d *eventtype.RenewalDueData) { d.Currency = "USD" },
		} {
			d := base
			mutate(&d)
			charge(name, d)
		}
		if n := len(sb.Ledger()); n != 0 {
			t.Fatalf("forged charges made %d payments at the provider", n)
		}
		charge("real", base)
		if n := len(sb.Ledger()); n != 1 {
			t.Fatalf("the real charge made %d payments, want 1", n)
		}
	})
}
