package payment_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/testenv"
)

func newSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Sandbox, *payment.Client) {
	t.Helper()
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	return sb, payment.NewClient(srv.URL+"/v3", "sandbox-shop", "sandbox-secret", 300*time.Millisecond)
}

func req(token string) payment.CreateRequest {
	return payment.CreateRequest{Amount: payment.MinorAmount(29900, "RUB"), Capture: true, PaymentToken: token, SavePaymentMethod: true,
		Metadata: map[string]string{"payment_id": "p1"}}
}

// The test cards answer as documented, and an ambiguous answer (slow, 500
// before or after recording) is resolved with the same key: the ledger holds
// exactly one payment per key, never a second charge.
func TestChargeResolvesAmbiguityWithTheSameKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		card       string
		wantStatus string
		wantReason string
		replays    bool
	}{
		{sandbox.CardSuccess, payment.StatusSucceeded, "", false},
		{sandbox.CardDecline, payment.StatusCanceled, payment.ReasonGeneralDecline, false},
		{sandbox.CardInsufficientFunds, payment.StatusCanceled, payment.ReasonInsufficientFunds, false},
		{sandbox.CardSlow, payment.StatusSucceeded, "", true},
		{sandbox.Card500Before, payment.StatusSucceeded, "", false},
		{sandbox.Card500After, payment.StatusSucceeded, "", true},
	}
	for _, c := range cases {
		t.Run(c.card, func(t *testing.T) {
			t.Parallel()
			sb, client := newSandbox(t, sandbox.Config{SlowDelay: 600 * time.Millisecond})
			p, err := payment.Charge(context.Background(), client, "key-"+c.card, req(c.card), payment.Retry{Backoff: 50 * time.Millisecond, Polls: 8})
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			if p.Status != c.wantStatus {
				t.Fatalf("status %s, want %s", p.Status, c.wantStatus)
			}
			if c.wantReason != "" && (p.Cancellation == nil || p.Cancellation.Reason != c.wantReason) {
				t.Fatalf("cancellation %+v, want %s", p.Cancellation, c.wantReason)
			}
			ledger := sb.Ledger()
			if len(ledger) != 1 {
				t.Fatalf("ledger has %d payments for one key, want 1: %+v", len(ledger), ledger)
			}
			if c.replays && sb.Stats().Replays == 0 {
				t.Fatalf("an ambiguous answer was not resolved by a replay of the key")
			}
		})
	}
}

// Still unresolved after the retries: the caller gets ErrAmbiguous (and must
// come back later with the same key), and a later call finds the payment.
func TestChargeReportsAmbiguityThenFindsThePayment(t *testing.T) {
	t.Parallel()
	sb, client := newSandbox(t, sandbox.Config{OutageFor: time.Second})
	_, err := payment.Charge(context.Background(), client, "k-outage", req(sandbox.CardIssuerOutage), payment.Retry{Attempts: 2, Backoff: 10 * time.Millisecond})
	if !errors.Is(err, payment.ErrAmbiguous) {
		t.Fatalf("err = %v, want ErrAmbiguous", err)
	}
	// The same key, again, until the issuer's outage is over.
	var p *payment.Payment
	testenv.WaitFor(t, 5*time.Minute, "the charge after the outage", func() bool {
		p, err = payment.Charge(context.Background(), client, "k-outage", req(sandbox.CardIssuerOutage), payment.Retry{})
		if err != nil && !errors.Is(err, payment.ErrAmbiguous) {
			t.Fatalf("during the outage: %v", err)
		}
		return err == nil
	})
	if p.Status != payment.StatusSucceeded {
		t.Fatalf("after the outage: %+v", p)
	}
	if n := len(sb.Ledger()); n != 1 {
		t.Fatalf("ledger has %d payments, want 1", n)
	}
}

func TestIdempotenceKeyRules(t *testing.T) {
	t.Parallel()
	_, client := newSandbox(t, sandbox.Config{})
	ctx := context.Background()
	if _, err := client.CreatePayment(ctx, "", req(sandbox.CardSuccess)); err == nil || !strings.Contains(err.Error(), "Idempotence-Key") {
		t.Fatalf("create without a key: %v, want a refusal naming Idempotence-Key", err)
	}
	a, err := client.CreatePayment(ctx, "same", req(sandbox.CardSuccess))
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.CreatePayment(ctx, "same", req(sandbox.CardSuccess))
	if err != nil || b.ID != a.ID {
		t.Fatalf("replay returned %v %v, want payment %s", b, err, a.ID)
	}
	other := req(sandbox.CardSuccess)
	other.Amount = payment.MinorAmount(100, "RUB")
	var apiErr *payment.APIError
	if _, err := client.CreatePayment(ctx, "same", other); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("same key, other amount: %v, want a 400", err)
	}
	bad := payment.NewClient(strings.TrimSuffix(client.BaseURL, "/v3")+"/v3", "sandbox-shop", "wrong", time.Second)
	if _, err := bad.GetPayment(ctx, a.ID); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("wrong secret: %v, want 401", err)
	}
	if _, err := client.GetPayment(ctx, "nope"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
}

// A saved method charges without the card; a refund has its own key and
// cannot exceed the payment.
func TestSavedMethodAndRefunds(t *testing.T) {
	t.Parallel()
	sb, client := newSandbox(t, sandbox.Config{})
	ctx := context.Background()
	first, err := payment.Charge(ctx, client, "first", req(sandbox.CardRenewalDecline), payment.Retry{})
	if err != nil || first.PaymentMethod == nil || !first.PaymentMethod.Saved {
		t.Fatalf("first payment %+v %v: want a saved method", first, err)
	}
	renew := payment.CreateRequest{Amount: payment.MinorAmount(29900, "RUB"), Capture: true, PaymentMethodID: first.PaymentMethod.ID}
	second, err := payment.Charge(ctx, client, "renew-1", renew, payment.Retry{})
	if err != nil || second.Status != payment.StatusCanceled || second.Cancellation.Reason != payment.ReasonInsufficientFunds {
		t.Fatalf("renewal with the saved method: %+v %v, want insufficient_funds", second, err)
	}
	ok, err := payment.Charge(ctx, client, "ok", req(sandbox.CardSuccess), payment.Retry{})
	if err != nil {
		t.Fatal(err)
	}
	rr := payment.RefundRequest{PaymentID: ok.ID, Amount: ok.Amount}
	r1, err := payment.RefundPayment(ctx, client, "refund-ok", rr, payment.Retry{})
	if err != nil || r1.Status != payment.StatusSucceeded {
		t.Fatalf("refund: %+v %v", r1, err)
	}
	r2, err := payment.RefundPayment(ctx, client, "refund-ok", rr, payment.Retry{})
	if err != nil || r2.ID != r1.ID {
		t.Fatalf("refund replay: %+v %v, want refund %s", r2, err, r1.ID)
	}
	var apiErr *payment.APIError
	if _, err := payment.RefundPayment(ctx, client, "refund-again", rr, payment.Retry{}); !errors.As(err, &apiErr) {
		t.Fatalf("second refund under a new key: %v, want a refusal", err)
	}
	for _, e := range sb.Ledger() {
		if e.ID == ok.ID && (e.Refunds != 1 || e.RefundedMinor != 29900) {
			t.Fatalf("ledger: %+v, want one full refund", e)
		}
	}
}

func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"succeeded"}}`)
	now := time.Now()
	good := payment.Sign("s3cret", body, now)
	cases := []struct {
		name   string
		body   []byte
		header string
		want   error
	}{
		{"valid", body, good, nil},
		{"missing", body, "", payment.ErrNotSigned},
		{"malformed", body, "garbage", payment.ErrInvalidSignature},
		{"wrong secret", body, payment.Sign("other", body, now), payment.ErrBadSignature},
		{"tampered body", []byte(strings.Replace(string(body), "p1", "p2", 1)), good, payment.ErrBadSignature},
		{"too old", body, payment.Sign("s3cret", body, now.Add(-10*time.Minute)), payment.ErrSignatureTooOld},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := payment.VerifyWebhook("s3cret", c.body, c.header, now, 0)
			if !errors.Is(err, c.want) || (c.want == nil && n.Object.ID != "p1") {
				t.Fatalf("VerifyWebhook = %+v, %v; want %v", n, err, c.want)
			}
		})
	}
}

func FuzzVerifyWebhook(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"notification","event":"payment.succeeded","object":{"id":"p1"}}`)
	f.Add(body, payment.Sign("k", body, now))
	f.Add([]byte("{}"), "t=1,v1=00")
	f.Add([]byte(""), "t=,v1=")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		n, err := payment.VerifyWebhook("k", body, header, now, 0)
		if err == nil && (n == nil || n.Object.ID == "") {
			t.Fatalf("accepted a notification without an object id")
		}
	})
}

func FuzzAmount(f *testing.F) {
	for _, s := range []string{"299.00", "0.5", "12", "1.234", "-1.00", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := payment.Amount{Value: s, Currency: "RUB"}.Minor()
		if err != nil || m < 0 {
			return
		}
		back, err := payment.MinorAmount(m, "RUB").Minor()
		if err != nil || back != m {
			t.Fatalf("%q → %d → %v %v", s, m, back, err)
		}
	})
}
