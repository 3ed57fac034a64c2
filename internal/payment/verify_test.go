package payment_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/payment/sandbox"
)

func statusOf(t *testing.T, pool *pgxpool.Pool, id string) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT status FROM payment WHERE id=$1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The attack of issue 10: a 0.01 RUB provider payment whose metadata names
// our pending 2,990 RUB attempt was settled by its webhook. Now it settles
// nothing, is flagged for an operator, and the attempt's own charge still
// decides it.
func TestWebhookOfAMismatchedPaymentSettlesNothing(t *testing.T) {
	t.Parallel()
	p, sb, pool := newProcessor(t, sandbox.Config{})
	ctx := context.Background()
	req := payment.ChargeRequest{SubscriptionID: "s-annual", UserID: "u", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 299000, Currency: "RUB", PaymentToken: sandbox.CardSuccess}
	if _, err := pool.Exec(ctx, `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency, payment_token)
		VALUES ($1,'s-annual','u',1,1,'initial',299000,'RUB',$2)`, req.ID(), sandbox.CardSuccess); err != nil {
		t.Fatal(err)
	}
	forged := map[string]payment.CreateRequest{
		"one kopeck": {Amount: payment.MinorAmount(1, "RUB"), Capture: true, PaymentToken: sandbox.CardSuccess,
			Metadata: map[string]string{"payment_id": req.ID()}},
		"other currency": {Amount: payment.MinorAmount(299000, "KZT"), Capture: true, PaymentToken: sandbox.CardSuccess,
			Metadata: map[string]string{"payment_id": req.ID()}},
	}
	for name, cr := range forged {
		pay, err := p.Provider.CreatePayment(ctx, "attacker-"+name, cr)
		if err != nil {
			t.Fatal(err)
		}
		n := &payment.Notification{Event: "payment.succeeded"}
		n.Object.ID, n.Object.Status = pay.ID, payment.StatusSucceeded
		for range 2 { // the provider delivers twice: one flag
			if err := p.Webhook(ctx, n); !errors.Is(err, payment.ErrPaymentMismatch) {
				t.Fatalf("%s: webhook = %v, want ErrPaymentMismatch", name, err)
			}
		}
	}
	if s := statusOf(t, pool, req.ID()); s != payment.RowPending || len(outboxtest.Types(t, pool)) != 0 {
		t.Fatalf("after the forged webhooks: %s, outbox %v; want pending and nothing announced", s, outboxtest.Types(t, pool))
	}
	flags, err := payment.OpenFlags(ctx, pool)
	if err != nil || len(flags) != 2 || flags[0].PaymentID != req.ID() || flags[0].Via != "webhook" || flags[0].Reason == "" {
		t.Fatalf("flags %+v %v; want two webhook flags naming %s", flags, err, req.ID())
	}
	// The real charge still settles the attempt.
	d, err := p.Charge(ctx, req)
	if err != nil || d.Outcome != "completed" || statusOf(t, pool, req.ID()) != payment.RowSucceeded {
		t.Fatalf("real charge: %+v %v", d, err)
	}
	if got := outboxtest.Types(t, pool); got[eventtype.PaymentCompleted] != 1 || len(got) != 1 {
		t.Fatalf("outbox %v, want one PaymentCompleted", got)
	}
	if n := len(sb.Ledger()); n != 3 {
		t.Fatalf("provider ledger %d payments, want 3 (two forged, one real)", n)
	}
}

// A matching webhook still settles an attempt whose answer was lost
// (TestProcessorWebhook covers the rest); one for a payment whose recorded
// provider id differs is flagged.
func TestWebhookSettlesOnlyTheRecordedProviderPayment(t *testing.T) {
	t.Parallel()
	p, _, pool := newProcessor(t, sandbox.Config{})
	ctx := context.Background()
	req := payment.ChargeRequest{SubscriptionID: "s-m", UserID: "u", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSuccess}
	other, err := p.Provider.CreatePayment(ctx, "other", payment.CreateRequest{Amount: payment.MinorAmount(29900, "RUB"), Capture: true,
		PaymentToken: sandbox.CardSuccess, Metadata: map[string]string{"payment_id": req.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency, payment_token, provider_payment_id)
		VALUES ($1,'s-m','u',1,1,'initial',29900,'RUB',$2,'recorded-elsewhere')`, req.ID(), sandbox.CardSuccess); err != nil {
		t.Fatal(err)
	}
	n := &payment.Notification{Event: "payment.succeeded"}
	n.Object.ID = other.ID
	if err := p.Webhook(ctx, n); !errors.Is(err, payment.ErrPaymentMismatch) {
		t.Fatalf("webhook = %v, want ErrPaymentMismatch", err)
	}
	if s := statusOf(t, pool, req.ID()); s != payment.RowPending {
		t.Fatalf("status %s, want pending", s)
	}
}

// Our own charge's answer is checked too: a provider payment made under our
// Idempotence-Key by someone else (the sandbox's credentials are public) with
// metadata that names another payment is not our capture. The attempt is
// flagged and announced as failed, so no period can be recorded.
func TestChargeAnswerThatDoesNotMatchIsFlagged(t *testing.T) {
	t.Parallel()
	p, _, pool := newProcessor(t, sandbox.Config{})
	ctx := context.Background()
	req := payment.ChargeRequest{SubscriptionID: "s-k", UserID: "u", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSuccess}
	if _, err := p.Provider.CreatePayment(ctx, req.ID(), payment.CreateRequest{Amount: payment.MinorAmount(29900, "RUB"), Capture: true,
		PaymentToken: sandbox.CardSuccess, SavePaymentMethod: true, Metadata: map[string]string{"payment_id": "attacker"}}); err != nil {
		t.Fatal(err)
	}
	d, err := p.Charge(ctx, req)
	if err != nil || d.Outcome != "failed" {
		t.Fatalf("charge = %+v %v, want a failed outcome", d, err)
	}
	if s := statusOf(t, pool, req.ID()); s != payment.RowFlagged {
		t.Fatalf("status %s, want flagged", s)
	}
	if got := outboxtest.Types(t, pool); got[eventtype.PaymentFailed] != 1 || got[eventtype.PaymentCompleted] != 0 {
		t.Fatalf("outbox %v, want one PaymentFailed and no PaymentCompleted", got)
	}
	flags, err := payment.OpenFlags(ctx, pool)
	if err != nil || len(flags) != 1 || flags[0].Via != "charge" {
		t.Fatalf("flags %+v %v", flags, err)
	}
	if _, err := p.Charge(ctx, req); err != nil { // a redelivery changes nothing
		t.Fatal(err)
	}
	if got := outboxtest.Types(t, pool); got[eventtype.PaymentFailed] != 1 {
		t.Fatalf("outbox after a redelivery %v", got)
	}
}

func TestMismatch(t *testing.T) {
	t.Parallel()
	want := payment.Expected{PaymentID: "s:1:1", AmountMinor: 299000, Currency: "RUB"}
	good := payment.Payment{ID: "p1", Status: payment.StatusSucceeded, Amount: payment.MinorAmount(299000, "RUB"),
		Metadata: map[string]string{"payment_id": "s:1:1"}}
	if why := payment.Mismatch(&good, want); why != "" {
		t.Fatalf("matching payment: %s", why)
	}
	withID := want
	withID.ProviderPaymentID = "p1"
	if why := payment.Mismatch(&good, withID); why != "" {
		t.Fatalf("matching recorded id: %s", why)
	}
	bad := map[string]func(p *payment.Payment){
		"amount":         func(p *payment.Payment) { p.Amount.Value = "0.01" },
		"signed amount":  func(p *payment.Payment) { p.Amount.Value = "+2990.00" },
		"long decimals":  func(p *payment.Payment) { p.Amount.Value = "2990.000" },
		"currency":       func(p *payment.Payment) { p.Amount.Currency = "rub" },
		"metadata":       func(p *payment.Payment) { p.Metadata = map[string]string{"payment_id": "s:1:2"} },
		"no metadata":    func(p *payment.Payment) { p.Metadata = nil },
		"no provider id": func(p *payment.Payment) { p.ID = "" },
	}
	for name, mutate := range bad {
		p := good
		mutate(&p)
		if why := payment.Mismatch(&p, want); why == "" {
			t.Errorf("%s: accepted", name)
		}
	}
	p := good
	p.ID = "p2"
	if why := payment.Mismatch(&p, withID); why == "" {
		t.Error("another provider payment than the recorded one: accepted")
	}
	if why := payment.Mismatch(nil, want); why == "" {
		t.Error("nil payment accepted")
	}
}

// FuzzMismatch: a payment is accepted only when its amount, read back, is
// exactly the expected one in the expected currency, for the named attempt.
func FuzzMismatch(f *testing.F) {
	f.Add("2990.00", "RUB", "s:1:1", int64(299000))
	f.Add("0.01", "RUB", "s:1:1", int64(299000))
	f.Add("2990", "RUB", "s:1:1", int64(299000))
	f.Add("-0.01", "RUB", "s:1:1", int64(-1))
	f.Add("1e3", "RUB", "x", int64(100000))
	f.Fuzz(func(t *testing.T, value, currency, meta string, want int64) {
		pay := &payment.Payment{ID: "p", Amount: payment.Amount{Value: value, Currency: currency}, Metadata: map[string]string{"payment_id": meta}}
		exp := payment.Expected{PaymentID: "s:1:1", AmountMinor: want, Currency: "RUB"}
		if payment.Mismatch(pay, exp) != "" {
			return
		}
		got, err := pay.Amount.Minor()
		if err != nil || got != want || want < 0 || currency != "RUB" || meta != "s:1:1" {
			t.Fatalf("accepted %q %q meta %q for %d (read back %d, %v)", value, currency, meta, want, got, err)
		}
	})
}
