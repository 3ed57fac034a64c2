// Package renewal is the clock of the subscription lifecycle, fired by a
// PingSource every minute: it asks for the charge of every subscription whose
// paid period has ended (and of every past_due one whose dunning retry is due)
// with RenewalDue, expires canceled subscriptions whose paid period has ended
// (the only place premium is revoked), and in choreography mode fails
// purchases left unpaid past their deadline.
//
// Each change is one transaction with its event, so a tick that runs twice or
// is killed half-way does each change at most once.
package renewal

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jonboulle/clockwork"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/saga"
	sub "github.com/overture-music/overture/internal/subscription"
)

// Function is the renewal function.
type Function struct {
	saga.Participant
	Store *sub.Store
	// Clock is the time the sweeps compare deadlines with (default: the real
	// clock; Start hands it to Store). Tests pass a fake one to make time
	// pass at will.
	Clock clockwork.Clock
}

// New returns the function; Start configures it.
func New() *Function { return &Function{} }

// Start reads DATABASE_URL, SAGA_MODE, DUNNING_SCHEDULE and
// SUBSCRIPTION_PENDING_TIMEOUT.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	if f.Clock == nil {
		f.Clock = clockwork.NewRealClock()
	}
	var err error
	if f.Store, err = sub.Join(ctx, &f.Participant, cfg, "renewal"); err != nil {
		return err
	}
	f.Store.Now = f.Clock.Now
	return nil
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key { return sub.ParticipantKeys() }

// Handle implements function.Handler: every ping runs one sweep.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() != eventtype.Ping {
		return nil, nil
	}
	n, err := f.Store.Sweep(ctx, f.Mode != saga.Orchestration)
	if n > 0 {
		f.Log.InfoContext(ctx, "lifecycle sweep", "changed", n)
	}
	return nil, err
}
