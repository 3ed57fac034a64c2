// Package payment is the saga participant that moves money: it charges the
// first period of a purchase and every renewal through the payment provider
// (with one Idempotence-Key per period and attempt, so a redelivered event can
// never charge twice), announces PaymentCompleted / PaymentFailed through the
// outbox, and refunds a captured payment that could not back a paid period
// (the compensation of the choreographed saga).
//
// In choreography mode it reacts to SubscriptionRequested, RenewalDue and
// SubscriptionFailed; in orchestration mode to the saga manager's
// charge_payment and refund_payment commands, answering each with a reply.
// Events of the other mode are acknowledged and ignored.
package payment

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/saga"
	sub "github.com/overture-music/overture/internal/subscription"
)

// Function is the payment function.
type Function struct {
	saga.Participant
	Processor *payment.Processor
}

// New returns the function; Start configures it.
func New() *Function { return &Function{} }

// Start opens the database and the provider client from cfg (DATABASE_URL,
// SAGA_MODE, PAYMENT_PROVIDER_URL, PAYMENT_SHOP_ID, PAYMENT_SECRET_KEY,
// PAYMENT_TIMEOUT).
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	var provider payment.ClientConfig
	if err := f.Join(ctx, cfg, "payment", migrate, provider.Read); err != nil {
		return err
	}
	f.Processor = &payment.Processor{Pool: f.Pool.Pool, Provider: provider.Client(), Log: f.Log}
	return nil
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key {
	return config.KeysOf(func(r *config.Reader) {
		new(saga.Config).Read(r)
		new(payment.ClientConfig).Read(r)
	})
}

// migrate applies the payment ledger's schema and the subscription store's,
// which every charge is checked against (checkCharge).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := payment.Migrate(ctx, pool); err != nil {
		return err
	}
	return sub.Migrate(ctx, pool)
}

// Handle implements function.Handler. A charge the subscription store does
// not ask for is refused (logged and acknowledged, never retried).
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r, err := f.handle(ctx, e)
	if errors.Is(err, sub.ErrUnverified) {
		f.Log.WarnContext(ctx, "refused a charge the subscription store does not back", "event_id", e.ID(),
			"event_type", e.Type(), "event_source", e.Source(), "error", err)
		return nil, nil
	}
	return r, err
}

// charge charges req once the subscription store backs it.
func (f *Function) charge(ctx context.Context, req payment.ChargeRequest) error {
	req, err := f.checkCharge(ctx, req)
	if err != nil {
		return err
	}
	_, err = f.Processor.Charge(ctx, req)
	return err
}

// checkCharge checks a charge against the subscription store before money
// moves: the subscription exists and is the user's, the period is at most
// the next one, and the amount and currency are the subscription's own. The
// card charged is the one the store holds when it holds one.
func (f *Function) checkCharge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeRequest, error) {
	x, err := sub.Status(ctx, f.Pool, req.SubscriptionID)
	if err != nil {
		return req, err
	}
	switch {
	case x.UserID != req.UserID:
		return req, fmt.Errorf("%w: subscription %s is not user %s's", sub.ErrUnverified, x.ID, req.UserID)
	case req.Period < 1 || req.Period > x.CurrentPeriod+1:
		return req, fmt.Errorf("%w: period %d of subscription %s is not due (current %d)", sub.ErrUnverified, req.Period, x.ID, x.CurrentPeriod)
	case req.AmountMinor != x.AmountMinor || req.Currency != x.Currency:
		return req, fmt.Errorf("%w: %d %s asked for subscription %s, which costs %d %s", sub.ErrUnverified,
			req.AmountMinor, req.Currency, x.ID, x.AmountMinor, x.Currency)
	}
	if x.PaymentMethodID != "" {
		req.PaymentMethodID = x.PaymentMethodID
	}
	if req.Period == 1 && x.PaymentToken != "" {
		req.PaymentToken = x.PaymentToken
	}
	return req, nil
}

func (f *Function) handle(ctx context.Context, e event.Event) (*event.Event, error) {
	choreo := f.Mode != saga.Orchestration
	switch e.Type() {
	case eventtype.SubscriptionRequested:
		if !choreo {
			return nil, nil
		}
		var d eventtype.SubscriptionRequestedData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		return nil, f.charge(ctx, payment.ChargeRequest{SubscriptionID: d.SubscriptionID, UserID: d.UserID,
			Purpose: "initial", Period: 1, Attempt: 1, AmountMinor: d.AmountMinor, Currency: d.Currency, PaymentToken: d.PaymentMethod})
	case eventtype.SubscriptionRenewalDue:
		if !choreo {
			return nil, nil
		}
		var d eventtype.RenewalDueData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		return nil, f.charge(ctx, renewalRequest(d))
	case eventtype.SubscriptionFailed:
		if !choreo {
			return nil, nil
		}
		var d eventtype.SubscriptionData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		_, err := f.Processor.Refund(ctx, d.SubscriptionID, d.Period, "", 0)
		return nil, err
	case eventtype.SagaChargePayment:
		if choreo {
			return nil, nil
		}
		var c eventtype.SagaCommand
		if err := saga.Decode(e, &c); err != nil {
			return nil, err
		}
		if c.Charge == nil {
			return nil, fmt.Errorf("charge_payment %s has no charge", e.ID())
		}
		req := renewalRequest(*c.Charge)
		req.SagaID, req.SagaAttempt = c.SagaID, c.Attempt
		return nil, f.charge(ctx, req)
	case eventtype.SagaRefundPayment:
		if choreo {
			return nil, nil
		}
		var c eventtype.SagaCommand
		if err := saga.Decode(e, &c); err != nil {
			return nil, err
		}
		if c.Payment == nil {
			return nil, fmt.Errorf("refund_payment %s has no payment", e.ID())
		}
		_, err := f.Processor.Refund(ctx, c.Payment.SubscriptionID, c.Payment.Period, c.SagaID, c.Attempt)
		return nil, err
	}
	return nil, nil
}

func renewalRequest(d eventtype.RenewalDueData) payment.ChargeRequest {
	purpose := "renewal"
	if d.Period == 1 {
		purpose = "initial"
	}
	attempt := d.Attempt
	if attempt == 0 {
		attempt = 1
	}
	return payment.ChargeRequest{SubscriptionID: d.SubscriptionID, UserID: d.UserID, Purpose: purpose, Period: d.Period,
		Attempt: attempt, AmountMinor: d.AmountMinor, Currency: d.Currency, PaymentToken: d.PaymentToken, PaymentMethodID: d.PaymentMethodID}
}
