package subscription_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// The attack of issue 10: a 0.01 RUB provider payment whose metadata names a
// pending 2,990 RUB annual purchase settled it through a correctly signed
// webhook. Now the webhook answers 422 payment-mismatch, the purchase stays
// unpaid, nothing is announced and the payment is flagged for an operator;
// the real payment's webhook still settles it.
func TestWebhookForAMismatchedPaymentSettlesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tok := e.auth.Token(t, "listener-annual", tokentest.Options{})
	code, body, _ := e.do(t, http.MethodPost, "/v1/subscriptions", tok, map[string]string{"plan": "annual", "payment_method": sandbox.CardSuccess})
	if code != http.StatusAccepted {
		t.Fatalf("purchase: %d %v", code, body)
	}
	subID, _ := body["id"].(string)
	local := subID + ":1:1"
	if _, err := e.pool.Exec(ctx, `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency, payment_token)
		VALUES ($1,$2,'listener-annual',1,1,'initial',299000,'RUB',$3)`, local, subID, sandbox.CardSuccess); err != nil {
		t.Fatal(err)
	}
	webhook := func(providerID string) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"type": "notification", "event": "payment.succeeded",
			"object": map[string]string{"id": providerID, "status": "succeeded"}})
		code, body, _ := e.do(t, http.MethodPost, "/v1/payments/webhook", "", b, payment.SignatureHeader, payment.Sign(secret, b, time.Now()))
		return code, body
	}
	before := e.count(t, `SELECT count(*) FROM outbox`)
	cheap, err := e.svc.Payments.Provider.CreatePayment(ctx, "attacker-key", payment.CreateRequest{Amount: payment.MinorAmount(1, "RUB"),
		Capture: true, PaymentToken: sandbox.CardSuccess, Metadata: map[string]string{"payment_id": local}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := webhook(cheap.ID); code != http.StatusUnprocessableEntity || body["type"] != "/problems/payment-mismatch" {
		t.Fatalf("webhook of the 0.01 RUB payment: %d %v, want 422 payment-mismatch", code, body)
	}
	if n := e.count(t, `SELECT count(*) FROM payment WHERE status <> 'pending'`) + e.count(t, `SELECT count(*) FROM outbox`) - before; n != 0 {
		t.Fatalf("the forged webhook settled or announced %d things", n)
	}
	if n := e.count(t, `SELECT count(*) FROM payment_flag WHERE resolved_at IS NULL AND via = 'webhook' AND reason LIKE 'amount 0.01 RUB%'`); n != 1 {
		t.Fatalf("%d open flags for the 0.01 RUB payment, want 1", n)
	}
	// The real payment (made with our Idempotence-Key and metadata) settles.
	real, err := e.svc.Payments.Provider.CreatePayment(ctx, local, payment.CreateRequest{Amount: payment.MinorAmount(299000, "RUB"),
		Capture: true, PaymentToken: sandbox.CardSuccess, Metadata: map[string]string{"payment_id": local}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := webhook(real.ID); code != http.StatusOK {
		t.Fatalf("webhook of the real payment: %d %v", code, body)
	}
	if n := e.count(t, `SELECT count(*) FROM payment WHERE status = 'succeeded'`); n != 1 {
		t.Fatalf("%d settled payments after the real webhook, want 1", n)
	}
}
