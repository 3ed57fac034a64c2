package payment

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/saga"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Source is the CloudEvents source of payment facts.
const Source = "/overture/payment"

// Row statuses of the payment table.
const (
	RowPending   = "pending"
	RowSucceeded = "succeeded"
	RowFailed    = "failed"
	RowRefunded  = "refunded"
	// RowFlagged is an attempt whose own charge answer did not match it (see
	// Mismatch): it backs nothing and waits for an operator (payment_flag).
	RowFlagged = "flagged"
)

// Paths a provider payment reaches settle by (payment_flag.via).
const (
	viaCharge  = "charge"
	viaWebhook = "webhook"
)

// ErrUnknownPayment is returned for a webhook about a payment we never made.
var ErrUnknownPayment = errors.New("unknown payment")

// Migrate creates the payment table (and the outbox it writes to).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "payment", migrations, outbox.Migrate)
}

// ChargeRequest asks for the charge of one paid period.
type ChargeRequest struct {
	SubscriptionID  string
	UserID          string
	Purpose         string // "initial" or "renewal"
	Period          int
	Attempt         int
	AmountMinor     int64
	Currency        string
	PaymentToken    string // initial: the test card / checkout token
	PaymentMethodID string // renewal: the saved method
	// SagaID and SagaAttempt are set in orchestration mode: the outcome is then
	// also answered with a reply to the saga manager.
	SagaID      string
	SagaAttempt int
}

// ID is the payment's id and Idempotence-Key: one per period and attempt.
func (r ChargeRequest) ID() string {
	return r.SubscriptionID + ":" + strconv.Itoa(r.Period) + ":" + strconv.Itoa(r.Attempt)
}

// Processor charges and refunds through a Provider, recording every attempt
// in the payment table and announcing outcomes through the outbox.
type Processor struct {
	Pool     *pgxpool.Pool
	Provider Provider
	Retry    Retry
	Log      *slog.Logger
}

type row struct {
	id, sub, user, purpose, currency, status string
	period, attempt                          int
	amount                                   int64
	token, method, provider, saved, reason   *string
	refund, sagaID                           *string
	sagaAttempt                              *int
}

const rowCols = `id, subscription_id, user_id, purpose, currency, status, period, attempt, amount_minor,
	payment_token, payment_method_id, provider_payment_id, saved_method_id, reason, refund_id, saga_id, saga_attempt`

func scanRow(r pgx.Row) (*row, error) {
	var x row
	err := r.Scan(&x.id, &x.sub, &x.user, &x.purpose, &x.currency, &x.status, &x.period, &x.attempt, &x.amount,
		&x.token, &x.method, &x.provider, &x.saved, &x.reason, &x.refund, &x.sagaID, &x.sagaAttempt)
	return &x, err
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (x *row) data() eventtype.PaymentData {
	return eventtype.PaymentData{PaymentID: x.id, SubscriptionID: x.sub, UserID: x.user, AmountMinor: x.amount,
		Currency: x.currency, Purpose: x.purpose, Period: x.period, Attempt: x.attempt,
		ProviderPaymentID: str(x.provider), Reason: str(x.reason), PaymentMethodID: str(x.saved)}
}

// Charge makes (or finds) the charge of req and returns its outcome. An
// ambiguous provider answer returns an error wrapping ErrAmbiguous and leaves
// the attempt pending: calling Charge again (a redelivery) asks the provider
// with the same Idempotence-Key and so can never charge twice.
func (p *Processor) Charge(ctx context.Context, req ChargeRequest) (eventtype.PaymentData, error) {
	if req.Attempt == 0 {
		req.Attempt = 1
	}
	id := req.ID()
	var x *row
	err := postgres.InTx(ctx, p.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor,
			currency, payment_token, payment_method_id, saga_id, saga_attempt)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,NULLIF($9,''),NULLIF($10,''),NULLIF($11,''),$12) ON CONFLICT (id) DO NOTHING`,
			id, req.SubscriptionID, req.UserID, req.Period, req.Attempt, req.Purpose, req.AmountMinor, req.Currency,
			req.PaymentToken, req.PaymentMethodID, req.SagaID, req.SagaAttempt)
		if err != nil {
			return fmt.Errorf("record payment attempt %s: %w", id, err)
		}
		if req.SagaID != "" { // a resent command: answer under its attempt
			if _, err := tx.Exec(ctx, `UPDATE payment SET saga_id=$2, saga_attempt=$3 WHERE id=$1 AND status='pending'`,
				id, req.SagaID, req.SagaAttempt); err != nil {
				return fmt.Errorf("payment %s saga attempt: %w", id, err)
			}
		}
		x, err = scanRow(tx.QueryRow(ctx, `SELECT `+rowCols+` FROM payment WHERE id=$1`, id))
		if err != nil {
			return fmt.Errorf("read payment %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return eventtype.PaymentData{}, err
	}
	if x.status != RowPending {
		// Decided before (a duplicate delivery or a resent command): answer a
		// resent command again; facts were announced when it was decided.
		if req.SagaID != "" {
			if err := p.replyAgain(ctx, x, req.SagaID, req.SagaAttempt); err != nil {
				return eventtype.PaymentData{}, err
			}
		}
		return x.data(), nil
	}
	cr := CreateRequest{Amount: MinorAmount(x.amount, x.currency), Capture: true,
		PaymentToken: str(x.token), PaymentMethodID: str(x.method), SavePaymentMethod: x.purpose == "initial",
		Description: "Overture premium, subscription " + x.sub + " period " + strconv.Itoa(x.period),
		Metadata:    map[string]string{"payment_id": x.id, "subscription_id": x.sub, "user_id": x.user, "period": strconv.Itoa(x.period)}}
	pay, err := Charge(ctx, p.Provider, x.id, cr, p.Retry)
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr):
		return p.settle(ctx, x.id, nil, "refused: "+apiErr.Code, viaCharge)
	case err != nil:
		return eventtype.PaymentData{}, fmt.Errorf("payment %s: %w", x.id, err)
	}
	return p.settle(ctx, x.id, pay, "", viaCharge)
}

// settle records the final outcome of a pending attempt exactly once and
// writes its fact (and saga reply) into the outbox; a concurrent or repeated
// settle finds the attempt decided and writes nothing.
//
// A provider payment settles the attempt only if it matches it (Mismatch:
// metadata.payment_id, provider id, amount, currency). One that does not is
// recorded in payment_flag and grants nothing: through a webhook the attempt
// stays pending (its own charge still decides it) and settle returns
// ErrPaymentMismatch; as the answer to our own charge the attempt becomes
// 'flagged' and is announced as failed, so the saga ends without premium.
func (p *Processor) settle(ctx context.Context, id string, pay *Payment, refusal, via string) (eventtype.PaymentData, error) {
	var out eventtype.PaymentData
	var mismatch string // a webhook's payment that did not match: flagged, committed, reported
	err := postgres.InTx(ctx, p.Pool, func(tx pgx.Tx) error {
		x, err := scanRow(tx.QueryRow(ctx, `SELECT `+rowCols+` FROM payment WHERE id=$1 FOR UPDATE`, id))
		if err != nil {
			return fmt.Errorf("lock payment %s: %w", id, err)
		}
		if x.status != RowPending {
			out = x.data()
			return nil
		}
		status, reason := RowFailed, refusal
		var provider, saved *string
		if pay != nil {
			if why := Mismatch(pay, x.expected()); why != "" {
				if err := flag(ctx, tx, x, pay, via, why); err != nil {
					return err
				}
				p.log().WarnContext(ctx, "provider payment flagged for reconciliation", "payment_id", x.id,
					"provider_payment_id", pay.ID, "via", via, "reason", why)
				if via == viaWebhook {
					mismatch = why
					return nil
				}
				return p.markFlagged(ctx, tx, x, why, &out)
			}
		}
		if pay != nil {
			provider = &pay.ID
			switch pay.Status {
			case StatusSucceeded:
				status, reason = RowSucceeded, ""
				if pay.PaymentMethod != nil && pay.PaymentMethod.Saved {
					saved = &pay.PaymentMethod.ID
				}
			case StatusCanceled:
				reason = "declined"
				if pay.Cancellation != nil {
					reason = pay.Cancellation.Reason
				}
			default:
				return fmt.Errorf("payment %s: %w: provider says %s", id, ErrAmbiguous, pay.Status)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE payment SET status=$2, provider_payment_id=COALESCE($3, provider_payment_id),
			saved_method_id=COALESCE($4, saved_method_id), reason=NULLIF($5,''), updated_at=now() WHERE id=$1`,
			id, status, provider, saved, reason); err != nil {
			return fmt.Errorf("settle payment %s: %w", id, err)
		}
		x.status, x.provider, x.reason = status, provider, &reason
		if saved != nil {
			x.saved = saved
		}
		out = x.data()
		typ, outcome := eventtype.PaymentFailed, "failed"
		if status == RowSucceeded {
			typ, outcome = eventtype.PaymentCompleted, "completed"
		}
		out.Outcome = outcome
		fact, err := saga.NewEvent(Source, typ, typ+"/"+x.id, x.sub, out)
		if err != nil {
			return err
		}
		events := []event.Event{fact}
		if x.sagaID != nil {
			r, err := reply(*x.sagaID, saga.StepCharge, derefInt(x.sagaAttempt), status == RowSucceeded, out, reason)
			if err != nil {
				return err
			}
			events = append(events, r)
		}
		return outbox.Write(ctx, tx, events...)
	})
	if err == nil && mismatch != "" {
		err = fmt.Errorf("payment %s: %w: %s", id, ErrPaymentMismatch, mismatch)
	}
	return out, err
}

// markFlagged ends an attempt whose charge answer did not match it: status
// flagged, announced as a failed payment (and a failed charge reply) so that
// no period is recorded and the purchase or renewal fails.
func (p *Processor) markFlagged(ctx context.Context, tx pgx.Tx, x *row, why string, out *eventtype.PaymentData) error {
	reason := "flagged for reconciliation: " + why
	if _, err := tx.Exec(ctx, `UPDATE payment SET status=$2, reason=$3, updated_at=now() WHERE id=$1`, x.id, RowFlagged, reason); err != nil {
		return fmt.Errorf("flag payment %s: %w", x.id, err)
	}
	x.status, x.reason = RowFlagged, &reason
	*out = x.data()
	out.Outcome = "failed"
	fact, err := saga.NewEvent(Source, eventtype.PaymentFailed, eventtype.PaymentFailed+"/"+x.id, x.sub, *out)
	if err != nil {
		return err
	}
	events := []event.Event{fact}
	if x.sagaID != nil {
		r, err := reply(*x.sagaID, saga.StepCharge, derefInt(x.sagaAttempt), false, *out, reason)
		if err != nil {
			return err
		}
		events = append(events, r)
	}
	return outbox.Write(ctx, tx, events...)
}

// log is the logger its component handed in (the payment function and
// subscription-api always do); a Processor built bare, in a test, logs
// nowhere rather than choose a logger of its own.
func (p *Processor) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// reply builds an orchestration reply.
func reply(sagaID, step string, attempt int, ok bool, d eventtype.PaymentData, reason string) (event.Event, error) {
	typ := eventtype.SagaStepSucceeded
	if !ok {
		typ = eventtype.SagaStepFailed
	}
	return saga.NewEvent(Source, typ, fmt.Sprintf("%s/%s/%s/%d", typ, sagaID, step, attempt), d.SubscriptionID,
		eventtype.SagaReply{SagaID: sagaID, Step: step, Attempt: attempt, Payment: &d, Reason: reason})
}

func (p *Processor) replyAgain(ctx context.Context, x *row, sagaID string, attempt int) error {
	d := x.data()
	step, ok := saga.StepCharge, x.status == RowSucceeded || x.status == RowRefunded
	d.Outcome = map[bool]string{true: "completed", false: "failed"}[ok]
	r, err := reply(sagaID, step, attempt, ok, d, str(x.reason))
	if err != nil {
		return err
	}
	return postgres.InTx(ctx, p.Pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, r) })
}

// RefundResult says what a refund did.
type RefundResult struct {
	Payment eventtype.PaymentData
	// Refunded is true when a captured payment is (now or already) refunded,
	// false when there was nothing captured to refund.
	Refunded bool
}

// Refund refunds the captured payment of (subscriptionID, period), exactly
// once (the refund's Idempotence-Key is derived from the payment). A pending
// attempt is resolved first by asking again with its own key. sagaID, when
// set, gets a reply for step refund at sagaAttempt.
func (p *Processor) Refund(ctx context.Context, subscriptionID string, period int, sagaID string, sagaAttempt int) (RefundResult, error) {
	rows, err := p.Pool.Query(ctx, `SELECT `+rowCols+` FROM payment WHERE subscription_id=$1 AND period=$2 ORDER BY attempt`, subscriptionID, period)
	if err != nil {
		return RefundResult{}, fmt.Errorf("payments of %s/%d: %w", subscriptionID, period, err)
	}
	xs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*row, error) { return scanRow(r) })
	if err != nil {
		return RefundResult{}, fmt.Errorf("payments of %s/%d: %w", subscriptionID, period, err)
	}
	var captured *row
	for _, x := range xs {
		if x.status == RowPending { // resolve the ambiguity with the attempt's own key
			if _, err := p.Charge(ctx, ChargeRequest{SubscriptionID: x.sub, UserID: x.user, Purpose: x.purpose, Period: x.period,
				Attempt: x.attempt, AmountMinor: x.amount, Currency: x.currency, PaymentToken: str(x.token), PaymentMethodID: str(x.method)}); err != nil {
				return RefundResult{}, fmt.Errorf("resolve before refund: %w", err)
			}
			if x, err = scanRow(p.Pool.QueryRow(ctx, `SELECT `+rowCols+` FROM payment WHERE id=$1`, x.id)); err != nil {
				return RefundResult{}, fmt.Errorf("reread payment: %w", err)
			}
		}
		if x.status == RowSucceeded || x.status == RowRefunded {
			captured = x
		}
	}
	if captured == nil {
		res := RefundResult{Payment: eventtype.PaymentData{SubscriptionID: subscriptionID, Period: period, Reason: "nothing captured"}}
		if sagaID != "" {
			r, err := reply(sagaID, saga.StepRefund, sagaAttempt, true, res.Payment, "nothing captured")
			if err != nil {
				return res, err
			}
			err = postgres.InTx(ctx, p.Pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, r) })
			return res, err
		}
		return res, nil
	}
	if captured.status == RowSucceeded {
		ref, err := RefundPayment(ctx, p.Provider, "refund:"+captured.id, RefundRequest{PaymentID: str(captured.provider),
			Amount: MinorAmount(captured.amount, captured.currency), Description: "Overture premium could not be activated"}, p.Retry)
		if err != nil {
			return RefundResult{}, fmt.Errorf("refund payment %s: %w", captured.id, err)
		}
		return p.markRefunded(ctx, captured.id, ref.ID, sagaID, sagaAttempt)
	}
	return p.markRefunded(ctx, captured.id, str(captured.refund), sagaID, sagaAttempt)
}

func (p *Processor) markRefunded(ctx context.Context, id, refundID, sagaID string, sagaAttempt int) (RefundResult, error) {
	var res RefundResult
	err := postgres.InTx(ctx, p.Pool, func(tx pgx.Tx) error {
		x, err := scanRow(tx.QueryRow(ctx, `SELECT `+rowCols+` FROM payment WHERE id=$1 FOR UPDATE`, id))
		if err != nil {
			return fmt.Errorf("lock payment %s: %w", id, err)
		}
		var events []event.Event
		if x.status == RowSucceeded {
			if _, err := tx.Exec(ctx, `UPDATE payment SET status='refunded', refund_id=$2, updated_at=now() WHERE id=$1`, id, refundID); err != nil {
				return fmt.Errorf("mark payment %s refunded: %w", id, err)
			}
			x.status, x.refund = RowRefunded, &refundID
			fact, err := saga.NewEvent(Source, eventtype.PaymentRefunded, eventtype.PaymentRefunded+"/"+x.id, x.sub, x.data())
			if err != nil {
				return err
			}
			events = append(events, fact)
		}
		res = RefundResult{Payment: x.data(), Refunded: true}
		if sagaID != "" {
			r, err := reply(sagaID, saga.StepRefund, sagaAttempt, true, res.Payment, "")
			if err != nil {
				return err
			}
			events = append(events, r)
		}
		return outbox.Write(ctx, tx, events...)
	})
	return res, err
}

// Webhook handles a verified notification: it re-fetches the payment from the
// provider (the body is only a hint) and settles the matching attempt if it is
// still pending and the provider's payment matches it (see settle). A payment
// we never made is ErrUnknownPayment and changes nothing; one that does not
// match is ErrPaymentMismatch, flagged, and changes nothing else.
func (p *Processor) Webhook(ctx context.Context, n *Notification) error {
	paymentID := n.Object.ID
	if n.Object.PaymentID != "" { // refund.*: the refund is recorded by Refund itself
		paymentID = n.Object.PaymentID
	}
	pay, err := p.Provider.GetPayment(ctx, paymentID)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: provider has no payment %s", ErrUnknownPayment, paymentID)
	}
	if err != nil {
		return fmt.Errorf("re-fetch payment %s: %w", paymentID, err)
	}
	if pay.ID != paymentID {
		return fmt.Errorf("%w: asked the provider for %s, it answered %s", ErrPaymentMismatch, paymentID, pay.ID)
	}
	id := pay.Metadata["payment_id"]
	var status string
	err = p.Pool.QueryRow(ctx, `SELECT status FROM payment WHERE id=$1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: payment %s is not one of ours", ErrUnknownPayment, paymentID)
	}
	if err != nil {
		return fmt.Errorf("look up payment %s: %w", id, err)
	}
	if status != RowPending || !pay.Final() {
		return nil
	}
	_, err = p.settle(ctx, id, pay, "", viaWebhook)
	return err
}
