// Package subscription is the saga participant that owns the subscription's
// state: it records a paid period when a payment completes (the (subscription,
// period) key makes a second activation impossible) and announces
// SubscriptionActivated or SubscriptionRenewed, or SubscriptionFailed when the
// payment cannot back a period (the purchase was abandoned) so that the payment
// is refunded. A failed payment fails the purchase or puts a renewing
// subscription past_due on its dunning schedule.
//
// Choreography: it reacts to PaymentCompleted / PaymentFailed, deduplicated by
// the inbox. Orchestration: to the manager's apply_payment command, answered
// with a reply.
//
// Either way the event only names a payment: the period is recorded from the
// payment ledger's record of it (Store.ApplyPayment), and a payment the ledger
// does not back is logged and acknowledged without any change or reply.
package subscription

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/saga"
	sub "github.com/overture-music/overture/internal/subscription"
)

// Function is the subscription function.
type Function struct {
	saga.Participant
	Store *sub.Store
}

// New returns the function; Start configures it.
func New() *Function { return &Function{} }

// Start reads DATABASE_URL, SAGA_MODE and DUNNING_SCHEDULE.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	var err error
	f.Store, err = sub.Join(ctx, &f.Participant, cfg, "subscription")
	return err
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key { return sub.ParticipantKeys() }

// Handle implements function.Handler.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	choreo := f.Mode != saga.Orchestration
	switch e.Type() {
	case eventtype.PaymentCompleted, eventtype.PaymentFailed:
		if !choreo {
			return nil, nil
		}
		var d eventtype.PaymentData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		_, err := inbox.Handle(ctx, f.Pool.Pool, "subscription", e, func(tx pgx.Tx) error {
			out, err := f.Store.ApplyPayment(ctx, tx, d, e.Type() == eventtype.PaymentCompleted)
			if err != nil {
				return err
			}
			return outbox.Write(ctx, tx, out.Events...)
		})
		return nil, f.refuse(ctx, e, err)
	case eventtype.SagaApplyPayment:
		if choreo {
			return nil, nil
		}
		var c eventtype.SagaCommand
		if err := saga.Decode(e, &c); err != nil {
			return nil, err
		}
		if c.Payment == nil {
			return nil, fmt.Errorf("apply_payment %s has no payment", e.ID())
		}
		err := postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error {
			out, err := f.Store.ApplyPayment(ctx, tx, *c.Payment, c.Payment.Outcome == "completed")
			if err != nil {
				return err
			}
			typ, reason := eventtype.SagaStepSucceeded, ""
			if out.Refused {
				typ, reason = eventtype.SagaStepFailed, "the subscription cannot take this payment"
			}
			data := out.Subscription.Data()
			r, err := saga.NewEvent(sub.Source, typ, fmt.Sprintf("%s/%s/%s/%d", typ, c.SagaID, c.Step, c.Attempt), c.Payment.SubscriptionID,
				eventtype.SagaReply{SagaID: c.SagaID, Step: c.Step, Attempt: c.Attempt, Subscription: &data, Payment: c.Payment, Reason: reason})
			if err != nil {
				return err
			}
			return outbox.Write(ctx, tx, append(out.Events, r)...)
		})
		return nil, f.refuse(ctx, e, err)
	}
	return nil, nil
}

// refuse acknowledges an event the ledgers do not back (retrying cannot make
// it true), logging it for an operator; other errors go back to the broker.
func (f *Function) refuse(ctx context.Context, e event.Event, err error) error {
	if errors.Is(err, sub.ErrUnverified) {
		f.Log.WarnContext(ctx, "refused an unverified payment fact", "event_id", e.ID(), "event_type", e.Type(),
			"event_source", e.Source(), "error", err)
		return nil
	}
	return err
}
