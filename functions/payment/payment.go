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
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/saga"
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
	if err := f.Join(ctx, cfg, "payment", payment.Migrate); err != nil {
		return err
	}
	client, err := payment.FromConfig(cfg)
	if err != nil {
		return fmt.Errorf("payment: %w", err)
	}
	f.Processor = &payment.Processor{Pool: f.Pool.Pool, Provider: client, Log: f.Log}
	return nil
}

// Handle implements function.Handler.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
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
		_, err := f.Processor.Charge(ctx, payment.ChargeRequest{SubscriptionID: d.SubscriptionID, UserID: d.UserID,
			Purpose: "initial", Period: 1, Attempt: 1, AmountMinor: d.AmountMinor, Currency: d.Currency, PaymentToken: d.PaymentMethod})
		return nil, err
	case eventtype.SubscriptionRenewalDue:
		if !choreo {
			return nil, nil
		}
		var d eventtype.RenewalDueData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		_, err := f.Processor.Charge(ctx, renewalRequest(d))
		return nil, err
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
		_, err := f.Processor.Charge(ctx, req)
		return nil, err
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
