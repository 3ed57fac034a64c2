package subscription_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/payment"
)

// record writes d into the payment ledger as the payment function would have
// settled it (status succeeded or failed), so that ApplyPayment finds it.
func record(t *testing.T, pool *pgxpool.Pool, d eventtype.PaymentData, completed bool) {
	t.Helper()
	status := payment.RowFailed
	if completed {
		status = payment.RowSucceeded
	}
	purpose := "renewal"
	if d.Period == 1 {
		purpose = "initial"
	}
	attempt := max(d.Attempt, 1)
	if _, err := pool.Exec(context.Background(), `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency,
		status, saved_method_id, reason) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,NULLIF($10,''),NULLIF($11,'')) ON CONFLICT (id) DO NOTHING`,
		d.PaymentID, d.SubscriptionID, d.UserID, d.Period, attempt, purpose, d.AmountMinor, d.Currency, status, d.PaymentMethodID, d.Reason); err != nil {
		t.Fatalf("record payment %s: %v", d.PaymentID, err)
	}
}
