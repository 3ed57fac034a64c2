package sagamanager

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/saga"
	sub "github.com/overture-music/overture/internal/subscription"
)

// verify checks a reply against the participant's own record before the saga
// may advance on it: a reply only says that a step is done, and a forged one
// must not move a saga (a forged "charge succeeded" would otherwise lead to
// apply and grant). It returns why the reply is not backed ("" when it is)
// and, for a charge or apply, updates in.data from the ledgers instead of the
// reply:
//
//	charge ok      the payment ledger holds this saga's attempt as captured, of the charge's amount and currency
//	charge failed  the ledger holds it as failed or flagged
//	apply ok       the subscription store recorded the paid period
//	apply failed   it did not record it with this payment
//	grant          the user function's premium reaches the period's end
//	refund         nothing of the period is captured or pending any more
//	release        a purchase is no longer pending
func (f *Function) verify(ctx context.Context, tx pgx.Tx, in *instance, ok bool) (string, error) {
	c := in.data.Charge
	switch in.step {
	case saga.StepCharge:
		rec, err := payment.Lookup(ctx, tx, in.id)
		if errors.Is(err, payment.ErrUnknownPayment) {
			return "the payment ledger has no attempt " + in.id, nil
		}
		if err != nil {
			return "", err
		}
		switch {
		case ok && rec.Status != payment.RowSucceeded:
			return "payment " + in.id + " is " + rec.Status + ", not captured", nil
		case ok && (rec.AmountMinor != c.AmountMinor || rec.Currency != c.Currency):
			return fmt.Sprintf("payment %s captured %d %s, the charge was %d %s", in.id, rec.AmountMinor, rec.Currency, c.AmountMinor, c.Currency), nil
		case !ok && rec.Status != payment.RowFailed && rec.Status != payment.RowFlagged:
			return "payment " + in.id + " is " + rec.Status + ", not failed", nil
		}
		d := rec.PaymentData
		d.Outcome = map[bool]string{true: "completed", false: "failed"}[ok]
		in.data.Payment = &d
	case saga.StepApply:
		x, paid, err := sub.PaidPeriodOf(ctx, tx, c.SubscriptionID, c.Period)
		recorded := err == nil && in.data.Payment != nil && paid.PaymentID == in.data.Payment.PaymentID
		if err != nil && !errors.Is(err, sub.ErrUnverified) {
			return "", err
		}
		if ok != recorded {
			return fmt.Sprintf("the subscription store has %s period %d of %s recorded with this payment", map[bool]string{true: "", false: "no"}[recorded], c.Period, c.SubscriptionID), nil
		}
		if ok {
			d := x.Data()
			d.Period, d.PeriodStart, d.PeriodEnd, d.PaymentID = c.Period, &paid.StartsAt, &paid.EndsAt, paid.PaymentID
			in.data.Subscription = &d
		}
	case saga.StepGrant:
		s := in.data.Subscription
		if s == nil || s.PeriodEnd == nil {
			return "the saga has no paid period to grant", nil
		}
		_, until, err := user.Premium(ctx, tx, s.UserID)
		if err != nil {
			return "", err
		}
		if until == nil || until.Before(*s.PeriodEnd) {
			return fmt.Sprintf("the user function has not granted %s premium until %s", s.UserID, s.PeriodEnd), nil
		}
	case saga.StepRefund:
		var open int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM payment WHERE subscription_id=$1 AND period=$2 AND status IN ('succeeded','pending')`,
			c.SubscriptionID, c.Period).Scan(&open); err != nil {
			return "", fmt.Errorf("payments of %s period %d: %w", c.SubscriptionID, c.Period, err)
		}
		if open > 0 {
			return fmt.Sprintf("%s period %d still has a captured or pending payment", c.SubscriptionID, c.Period), nil
		}
	case saga.StepRelease:
		if c.Period != 1 {
			return "", nil // a renewal's release moves dunning, which the subscription function decides from the ledger
		}
		x, err := sub.Status(ctx, tx, c.SubscriptionID)
		if err != nil && !errors.Is(err, sub.ErrUnverified) {
			return "", err
		}
		if x == nil || x.Status == sub.StatusPending {
			return "the purchase " + c.SubscriptionID + " is not released", nil
		}
	}
	return "", nil
}
