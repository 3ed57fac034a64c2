package payment_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newProcessor(t *testing.T, cfg sandbox.Config) (*payment.Processor, *sandbox.Sandbox, *pgxpool.Pool) {
	t.Helper()
	pool := postgrestest.Pool(t, payment.Migrate)
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	client := payment.NewClient(srv.URL+"/v3", "sandbox-shop", "sandbox-secret", 200*time.Millisecond)
	return &payment.Processor{Pool: pool, Provider: client, Retry: payment.Retry{Attempts: 2, Backoff: 20 * time.Millisecond, Polls: 2}}, sb, pool
}

// An answer lost to a timeout leaves the attempt pending; the redelivery asks
// again with the same key and finds the payment — one charge, one fact — and
// further duplicates change nothing.
func TestProcessorAmbiguousChargeIsResolvedByQueryNotRecharge(t *testing.T) {
	t.Parallel()
	// The slow answer must outlast the whole first delivery (two attempts of
	// 200 ms and two polls) even on a loaded machine.
	p, sb, pool := newProcessor(t, sandbox.Config{SlowDelay: 3 * time.Second})
	ctx := context.Background()
	req := payment.ChargeRequest{SubscriptionID: "sub-1", UserID: "u1", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSlow}
	if _, err := p.Charge(ctx, req); !errors.Is(err, payment.ErrAmbiguous) {
		t.Fatalf("first delivery: %v, want ErrAmbiguous (the answer is slower than the timeout)", err)
	}
	var status string
	_ = pool.QueryRow(ctx, `SELECT status FROM payment WHERE id=$1`, req.ID()).Scan(&status)
	if status != payment.RowPending {
		t.Fatalf("status after the timeout %q, want pending", status)
	}
	// The provider settles the payment once its slow answer is done.
	settled := func() bool {
		l := sb.Ledger()
		return len(l) == 1 && l[0].Status != payment.StatusPending
	}
	if !testenv.Poll(5*time.Minute, settled) {
		t.Fatalf("the provider never settled the slow payment: %+v", sb.Ledger())
	}
	for range 3 { // the redelivery, then duplicates
		d, err := p.Charge(ctx, req)
		if err != nil || d.PaymentMethodID == "" {
			t.Fatalf("redelivery: %+v %v", d, err)
		}
	}
	if n := len(sb.Ledger()); n != 1 {
		t.Fatalf("provider holds %d payments, want 1", n)
	}
	if got := outboxtest.Types(t, pool); got[eventtype.PaymentCompleted] != 1 || len(got) != 1 {
		t.Fatalf("outbox %v, want one PaymentCompleted", got)
	}
}

func TestProcessorDeclineAndRefund(t *testing.T) {
	t.Parallel()
	p, sb, pool := newProcessor(t, sandbox.Config{})
	ctx := context.Background()
	d, err := p.Charge(ctx, payment.ChargeRequest{SubscriptionID: "s-d", UserID: "u", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardInsufficientFunds})
	if err != nil || d.Reason != payment.ReasonInsufficientFunds {
		t.Fatalf("decline: %+v %v", d, err)
	}
	if _, err := p.Charge(ctx, payment.ChargeRequest{SubscriptionID: "s-r", UserID: "u", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSuccess}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // refund requested three times: refunded once
		res, err := p.Refund(ctx, "s-r", 1, "", 0)
		if err != nil || !res.Refunded {
			t.Fatalf("refund: %+v %v", res, err)
		}
	}
	res, err := p.Refund(ctx, "s-d", 1, "", 0)
	if err != nil || res.Refunded {
		t.Fatalf("refund of a declined payment: %+v %v, want nothing to refund", res, err)
	}
	refunds := 0
	for _, e := range sb.Ledger() {
		refunds += e.Refunds
	}
	got := outboxtest.Types(t, pool)
	if refunds != 1 || got[eventtype.PaymentRefunded] != 1 || got[eventtype.PaymentFailed] != 1 || got[eventtype.PaymentCompleted] != 1 {
		t.Fatalf("provider refunds %d, outbox %v; want one refund and one fact of each", refunds, got)
	}
}

// The webhook settles an attempt whose answer the function lost, after
// re-fetching it; a notification about a payment we never made is
// ErrUnknownPayment and changes nothing.
func TestProcessorWebhook(t *testing.T) {
	t.Parallel()
	p, _, pool := newProcessor(t, sandbox.Config{})
	ctx := context.Background()
	req := payment.ChargeRequest{SubscriptionID: "s-w", UserID: "u", Purpose: "initial", Period: 1, Attempt: 1,
		AmountMinor: 29900, Currency: "RUB", PaymentToken: sandbox.CardSuccess}
	// The provider made the payment but our settle never ran (killed after
	// the call): record the attempt, create at the provider directly.
	if _, err := pool.Exec(ctx, `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency, payment_token)
		VALUES ($1,'s-w','u',1,1,'initial',29900,'RUB',$2)`, req.ID(), sandbox.CardSuccess); err != nil {
		t.Fatal(err)
	}
	pay, err := p.Provider.CreatePayment(ctx, req.ID(), payment.CreateRequest{Amount: payment.MinorAmount(29900, "RUB"), Capture: true,
		PaymentToken: sandbox.CardSuccess, Metadata: map[string]string{"payment_id": req.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	n := &payment.Notification{Event: "payment.succeeded"}
	n.Object.ID, n.Object.Status = pay.ID, "canceled" // the body lies; the re-fetch wins
	for range 2 {
		if err := p.Webhook(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	var status string
	_ = pool.QueryRow(ctx, `SELECT status FROM payment WHERE id=$1`, req.ID()).Scan(&status)
	if status != payment.RowSucceeded || outboxtest.Types(t, pool)[eventtype.PaymentCompleted] != 1 {
		t.Fatalf("after the webhook: %s, outbox %v", status, outboxtest.Types(t, pool))
	}
	n.Object.ID = "00000000-0000-0000-0000-000000000000"
	if err := p.Webhook(ctx, n); !errors.Is(err, payment.ErrUnknownPayment) {
		t.Fatalf("unknown payment: %v, want ErrUnknownPayment", err)
	}
	if got := outboxtest.Types(t, pool); got[eventtype.PaymentCompleted] != 1 || len(got) != 1 {
		t.Fatalf("outbox changed by an unknown webhook: %v", got)
	}
}
