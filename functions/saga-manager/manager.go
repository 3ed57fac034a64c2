// Package sagamanager is the SubscriptionWorkflowManager: in orchestration
// mode (SAGA_MODE=orchestration) it owns every purchase and renewal saga as a
// state machine persisted in PostgreSQL, sends the participants commands,
// advances on their replies, resends a command whose reply is overdue (a
// PingSource sweep) and runs compensations in reverse order.
//
// The saga, in Richardson's terms:
//
//	reserve (API: pending subscription)  compensation: release
//	charge  (payment capture)            PIVOT; compensation only on abort: refund
//	apply   (record the paid period)     retriable
//	grant   (premium until period end)   retriable
//	notify  (emails on the facts)        retriable, by the broker
//
// A declined charge releases the reservation; a charge whose outcome stays
// unknown after MaxChargeAttempts aborts: refund (which first resolves the
// payment with its own Idempotence-Key) and then release. A payment that the
// subscription refuses to apply is refunded. Every command and reply goes
// through the outbox in the same transaction as the state change, and a reply
// for a step the saga is no longer in is ignored, so duplicates and late
// replies are harmless.
package sagamanager

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/saga"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Source of commands.
const Source = "/overture/saga-manager"

// SweepPingSource is the name of the PingSource whose ticks run the sweep.
const SweepPingSource = "saga-manager-sweep"

// Configuration keys.
const (
	KeyStepTimeout       = "SAGA_STEP_TIMEOUT"        // default 30s
	KeyMaxChargeAttempts = "SAGA_MAX_CHARGE_ATTEMPTS" // default 5
)

// States of a saga instance.
const (
	StateCharging    = "charging"
	StateApplying    = "applying"
	StateGranting    = "granting"
	StateRefunding   = "refunding" // the subscription refused the payment
	StateAborting    = "aborting"  // the charge never resolved
	StateReleasing   = "releasing"
	StateCompleted   = "completed"   // premium granted
	StateFailed      = "failed"      // charge declined (or aborted); reservation released
	StateCompensated = "compensated" // payment refunded
)

// Terminal reports whether a state is final.
func Terminal(s string) bool {
	return s == StateCompleted || s == StateFailed || s == StateCompensated
}

// Data is what a saga instance carries between steps.
type Data struct {
	Charge       eventtype.RenewalDueData    `json:"charge"`
	Payment      *eventtype.PaymentData      `json:"payment,omitempty"`
	Subscription *eventtype.SubscriptionData `json:"subscription,omitempty"`
}

// Function is the saga manager.
type Function struct {
	saga.Participant
	StepTimeout       time.Duration
	MaxChargeAttempts int
	Now               func() time.Time
}

// New returns the function; Start configures it.
func New() *Function { return &Function{} }

// Migrate creates saga_instance and the outbox, and the participants' tables
// that replies are checked against (user, and through it subscription and
// payment).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "saga_manager", migrations, outbox.Migrate, user.Migrate)
}

// Start reads DATABASE_URL, SAGA_MODE, SAGA_STEP_TIMEOUT, SAGA_MAX_CHARGE_ATTEMPTS.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	return f.Join(ctx, cfg, "saga-manager", Migrate, f.readConfig)
}

// readConfig reads the orchestrator's own settings.
func (f *Function) readConfig(r *config.Reader) {
	f.StepTimeout = r.DurationOr(KeyStepTimeout, 30*time.Second)
	n := r.Int64Or(KeyMaxChargeAttempts, 5)
	if n < 1 {
		r.Fail(KeyMaxChargeAttempts, "%d: want a positive integer", n)
	}
	f.MaxChargeAttempts = int(n)
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key {
	return config.KeysOf(func(r *config.Reader) {
		new(saga.Config).Read(r)
		new(Function).readConfig(r)
	})
}

func (f *Function) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC()
	}
	return time.Now().UTC()
}

// Handle implements function.Handler. In choreography mode it does nothing.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if f.Mode != saga.Orchestration {
		return nil, nil
	}
	switch e.Type() {
	case eventtype.SubscriptionRequested:
		var d eventtype.SubscriptionRequestedData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		return nil, f.start(ctx, "purchase", eventtype.RenewalDueData{SubscriptionID: d.SubscriptionID, UserID: d.UserID, Plan: d.Plan,
			AmountMinor: d.AmountMinor, Currency: d.Currency, PaymentToken: d.PaymentMethod, Period: 1, Attempt: 1})
	case eventtype.SubscriptionRenewalDue:
		var d eventtype.RenewalDueData
		if err := saga.Decode(e, &d); err != nil {
			return nil, err
		}
		return nil, f.start(ctx, "renewal", d)
	case eventtype.SagaStepSucceeded, eventtype.SagaStepFailed:
		var r eventtype.SagaReply
		if err := saga.Decode(e, &r); err != nil {
			return nil, err
		}
		return nil, f.reply(ctx, r, e.Type() == eventtype.SagaStepSucceeded)
	case eventtype.Ping:
		if !strings.HasSuffix(e.Source(), "/"+SweepPingSource) {
			return nil, nil
		}
		_, err := f.Sweep(ctx)
		return nil, err
	}
	return nil, nil
}

// SagaID names the saga of one charge: subscription, period, attempt.
func SagaID(d eventtype.RenewalDueData) string {
	return fmt.Sprintf("%s:%d:%d", d.SubscriptionID, d.Period, max(d.Attempt, 1))
}

type instance struct {
	id, typ, state, step string
	attempt              int
	data                 Data
}

func (f *Function) start(ctx context.Context, typ string, c eventtype.RenewalDueData) error {
	if c.Attempt == 0 {
		c.Attempt = 1
	}
	in := &instance{id: SagaID(c), typ: typ, state: StateCharging, data: Data{Charge: c}}
	return postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error {
		body, _ := json.Marshal(in.data)
		tag, err := tx.Exec(ctx, `INSERT INTO saga_instance (saga_id, saga_type, state, data) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`,
			in.id, typ, in.state, body)
		if err != nil {
			return fmt.Errorf("create saga %s: %w", in.id, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // already started: a duplicate
		}
		return f.send(ctx, tx, in, StateCharging, saga.StepCharge, 1)
	})
}

func (f *Function) load(ctx context.Context, tx pgx.Tx, id string) (*instance, error) {
	in := &instance{id: id}
	var step *string
	var body []byte
	err := tx.QueryRow(ctx, `SELECT saga_type, state, step, attempt, data FROM saga_instance WHERE saga_id=$1 FOR UPDATE`, id).
		Scan(&in.typ, &in.state, &step, &in.attempt, &body)
	if err != nil {
		return nil, err
	}
	if step != nil {
		in.step = *step
	}
	if err := json.Unmarshal(body, &in.data); err != nil {
		return nil, fmt.Errorf("saga %s data: %w", id, err)
	}
	return in, nil
}

// send moves the saga to state and writes the command of step (attempt) into
// the outbox; a terminal state sends nothing.
func (f *Function) send(ctx context.Context, tx pgx.Tx, in *instance, state, step string, attempt int) error {
	now := f.now()
	body, _ := json.Marshal(in.data)
	hist, _ := json.Marshal([]map[string]any{{"at": now, "state": state, "step": step, "attempt": attempt}})
	if Terminal(state) {
		_, err := tx.Exec(ctx, `UPDATE saga_instance SET state=$2, step=NULL, deadline=NULL, data=$3, history=history||$4::jsonb,
			updated_at=$5, completed_at=$5 WHERE saga_id=$1`, in.id, state, body, hist, now)
		if err != nil {
			return fmt.Errorf("finish saga %s: %w", in.id, err)
		}
		in.state = state
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE saga_instance SET state=$2, step=$3, attempt=$4, deadline=$5, data=$6, history=history||$7::jsonb, updated_at=$8 WHERE saga_id=$1`,
		in.id, state, step, attempt, now.Add(f.StepTimeout), body, hist, now); err != nil {
		return fmt.Errorf("advance saga %s: %w", in.id, err)
	}
	in.state, in.step, in.attempt = state, step, attempt
	cmd := eventtype.SagaCommand{SagaID: in.id, Step: step, Attempt: attempt}
	var typ string
	switch step {
	case saga.StepCharge:
		typ, cmd.Charge = eventtype.SagaChargePayment, &in.data.Charge
	case saga.StepApply, saga.StepRelease:
		typ, cmd.Payment = eventtype.SagaApplyPayment, in.data.Payment
	case saga.StepGrant:
		typ, cmd.Subscription = eventtype.SagaGrantPremium, in.data.Subscription
	case saga.StepRefund:
		typ = eventtype.SagaRefundPayment
		p := in.data.Payment
		if p == nil {
			p = &eventtype.PaymentData{SubscriptionID: in.data.Charge.SubscriptionID, UserID: in.data.Charge.UserID, Period: in.data.Charge.Period}
		}
		cmd.Payment = p
	default:
		return fmt.Errorf("saga %s: unknown step %q", in.id, step)
	}
	e, err := saga.NewEvent(Source, typ, fmt.Sprintf("%s/%s/%s/%d", typ, in.id, step, attempt), in.data.Charge.SubscriptionID, cmd)
	if err != nil {
		return err
	}
	return outbox.Write(ctx, tx, e)
}

func (f *Function) failedPayment(in *instance, reason string) *eventtype.PaymentData {
	c := in.data.Charge
	p := in.data.Payment
	if p == nil {
		p = &eventtype.PaymentData{SubscriptionID: c.SubscriptionID, UserID: c.UserID, AmountMinor: c.AmountMinor, Currency: c.Currency,
			Period: c.Period, Attempt: c.Attempt, PaymentID: fmt.Sprintf("%s:%d:%d", c.SubscriptionID, c.Period, c.Attempt)}
	}
	cp := *p
	cp.Outcome, cp.Reason = "failed", reason
	return &cp
}

func (f *Function) reply(ctx context.Context, r eventtype.SagaReply, ok bool) error {
	return postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error {
		in, err := f.load(ctx, tx, r.SagaID)
		if errors.Is(err, pgx.ErrNoRows) {
			f.Log.WarnContext(ctx, "reply for an unknown saga", "saga", r.SagaID, "step", r.Step)
			return nil
		}
		if err != nil {
			return fmt.Errorf("load saga %s: %w", r.SagaID, err)
		}
		if Terminal(in.state) || r.Step != in.step {
			return nil // late or duplicate reply
		}
		why, err := f.verify(ctx, tx, in, ok)
		if err != nil {
			return fmt.Errorf("verify reply to saga %s: %w", r.SagaID, err)
		}
		if why != "" {
			f.Log.WarnContext(ctx, "refused a reply the participants' records do not back", "saga", r.SagaID, "step", r.Step,
				"succeeded", ok, "reason", why)
			return nil
		}
		switch in.state {
		case StateCharging:
			if ok {
				return f.send(ctx, tx, in, StateApplying, saga.StepApply, 1)
			}
			in.data.Payment = f.failedPayment(in, cmp.Or(in.data.Payment.Reason, r.Reason))
			return f.send(ctx, tx, in, StateReleasing, saga.StepRelease, 1)
		case StateApplying:
			if ok {
				return f.send(ctx, tx, in, StateGranting, saga.StepGrant, 1)
			}
			return f.send(ctx, tx, in, StateRefunding, saga.StepRefund, 1)
		case StateGranting:
			return f.send(ctx, tx, in, StateCompleted, "", 0)
		case StateRefunding:
			return f.send(ctx, tx, in, StateCompensated, "", 0)
		case StateAborting:
			in.data.Payment = f.failedPayment(in, "the charge did not resolve in time; refunded if captured")
			return f.send(ctx, tx, in, StateReleasing, saga.StepRelease, 1)
		case StateReleasing:
			return f.send(ctx, tx, in, StateFailed, "", 0)
		}
		return nil
	})
}

// Sweep resends every command whose reply is overdue (same step, next
// attempt) and aborts a charge that stayed unresolved MaxChargeAttempts
// times. It returns how many sagas it touched.
func (f *Function) Sweep(ctx context.Context) (int, error) {
	rows, err := f.Pool.Query(ctx, `SELECT saga_id FROM saga_instance WHERE completed_at IS NULL AND deadline <= $1 ORDER BY deadline LIMIT 1000`, f.now())
	if err != nil {
		return 0, fmt.Errorf("overdue sagas: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("overdue sagas: %w", err)
	}
	n := 0
	for _, id := range ids {
		err := postgres.InTx(ctx, f.Pool, func(tx pgx.Tx) error {
			in, err := f.load(ctx, tx, id)
			if err != nil {
				return fmt.Errorf("load saga %s: %w", id, err)
			}
			if Terminal(in.state) {
				return nil
			}
			n++
			if in.state == StateCharging && in.attempt >= f.MaxChargeAttempts {
				return f.send(ctx, tx, in, StateAborting, saga.StepRefund, 1)
			}
			return f.send(ctx, tx, in, in.state, in.step, in.attempt+1)
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
