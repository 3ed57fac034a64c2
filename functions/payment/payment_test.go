package payment_test

import (
	"context"
	"net/http/httptest"
	"testing"

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
		sb := sandbox.New(sandbox.Config{})
		srv := httptest.NewServer(sb)
		t.Cleanup(func() { srv.Close(); sb.Close() })
		f := paymentfn.New()
		cfg["PAYMENT_PROVIDER_URL"] = srv.URL + "/v3"
		cfg["PAYMENT_SHOP_ID"], cfg["PAYMENT_SECRET_KEY"] = "sandbox-shop", "sandbox-secret" // the sandbox's own test credentials
		pool := functiontest.Start(t, f, cfg)
		req, _ := saga.NewEvent("/overture/subscription", eventtype.SubscriptionRequested, "req-1", "sub-1",
			eventtype.SubscriptionRequestedData{SubscriptionID: "sub-1", UserID: "u", Plan: "monthly", AmountMinor: 29900, Currency: "RUB", PaymentMethod: sandbox.CardSuccess})
		cmd, _ := saga.NewEvent("/overture/saga-manager", eventtype.SagaChargePayment, "cmd-1", "sub-2", eventtype.SagaCommand{SagaID: "sub-2:1:1", Step: saga.StepCharge, Attempt: 1,
			Charge: &eventtype.RenewalDueData{SubscriptionID: "sub-2", UserID: "u", AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSuccess, Period: 1, Attempt: 1}})
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
