package payment

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/eventtype"
)

// ErrPaymentMismatch is a provider payment that does not match the attempt it
// claims to settle (amount, currency, provider id or metadata.payment_id). It
// settles nothing; it is recorded in payment_flag for reconciliation.
var ErrPaymentMismatch = errors.New("provider payment does not match our payment")

// Expected is what a provider payment must show to settle a local attempt.
type Expected struct {
	// PaymentID is our attempt's id: the provider payment's metadata.payment_id
	// must name it.
	PaymentID string
	// ProviderPaymentID, once recorded, is the only provider payment that can
	// settle the attempt.
	ProviderPaymentID string
	AmountMinor       int64
	Currency          string
}

// amountRE is how a provider writes an amount: major units and at most two
// decimals, nothing else (no sign, no exponent, no spaces).
var amountRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?$`)

// Mismatch says why pay cannot settle the attempt want, or "" when it can.
// The status is not judged here: a matching canceled payment settles the
// attempt as failed, a matching succeeded one as captured.
func Mismatch(pay *Payment, want Expected) string {
	switch {
	case pay == nil:
		return "the provider returned no payment"
	case pay.ID == "":
		return "the provider payment has no id"
	case want.ProviderPaymentID != "" && pay.ID != want.ProviderPaymentID:
		return fmt.Sprintf("provider payment %s is not the recorded %s", pay.ID, want.ProviderPaymentID)
	case pay.Metadata["payment_id"] != want.PaymentID:
		return fmt.Sprintf("metadata.payment_id %q is not %q", pay.Metadata["payment_id"], want.PaymentID)
	case pay.Amount.Currency != want.Currency:
		return fmt.Sprintf("currency %q is not %q", pay.Amount.Currency, want.Currency)
	case !amountRE.MatchString(pay.Amount.Value):
		return fmt.Sprintf("amount %q is not a plain decimal", pay.Amount.Value)
	}
	got, err := pay.Amount.Minor()
	if err != nil || got != want.AmountMinor {
		return fmt.Sprintf("amount %s %s is not %s %s", pay.Amount.Value, pay.Amount.Currency,
			MinorAmount(want.AmountMinor, want.Currency).Value, want.Currency)
	}
	return ""
}

func (x *row) expected() Expected {
	return Expected{PaymentID: x.id, ProviderPaymentID: str(x.provider), AmountMinor: x.amount, Currency: x.currency}
}

// flag records, once per (attempt, provider payment, path), that pay could
// not settle x.
func flag(ctx context.Context, tx pgx.Tx, x *row, pay *Payment, via, reason string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO payment_flag (payment_id, provider_payment_id, via, reason, provider_status, provider_amount)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		x.id, pay.ID, via, reason, pay.Status, pay.Amount.Value+" "+pay.Amount.Currency); err != nil {
		return fmt.Errorf("flag payment %s: %w", x.id, err)
	}
	return nil
}

// Flag is one provider payment that settled nothing, for an operator.
type Flag struct {
	PaymentID         string
	ProviderPaymentID string
	Via               string // "charge" or "webhook"
	Reason            string
}

// OpenFlags lists the flags no operator has resolved yet, oldest first.
func OpenFlags(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]Flag, error) {
	rows, err := q.Query(ctx, `SELECT payment_id, provider_payment_id, via, reason FROM payment_flag WHERE resolved_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("payment flags: %w", err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Flag, error) {
		var f Flag
		return f, r.Scan(&f.PaymentID, &f.ProviderPaymentID, &f.Via, &f.Reason)
	})
	if err != nil {
		return nil, fmt.Errorf("payment flags: %w", err)
	}
	return fs, nil
}

// Record is one attempt as the payment ledger holds it.
type Record struct {
	eventtype.PaymentData
	Status string // RowPending, RowSucceeded, …
}

// Lookup reads attempt id from the payment ledger in tx; ErrUnknownPayment
// when there is none. Consumers of payment facts use it to check a fact
// against the ledger instead of trusting the event.
func Lookup(ctx context.Context, tx pgx.Tx, id string) (Record, error) {
	x, err := scanRow(tx.QueryRow(ctx, `SELECT `+rowCols+` FROM payment WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("%w: %s is not in the ledger", ErrUnknownPayment, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("look up payment %s: %w", id, err)
	}
	return Record{PaymentData: x.data(), Status: x.status}, nil
}
