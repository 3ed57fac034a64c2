package subscription

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/saga"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Sources of the events this package writes.
const (
	Source        = "/overture/subscription"
	RenewalSource = "/overture/renewal"
)

// Errors the API maps to problem documents.
var (
	ErrUnknownPlan        = errors.New("unknown plan")
	ErrAlreadySubscribed  = errors.New("the user already has a subscription in progress or running")
	ErrNoSubscription     = errors.New("the user has no subscription")
	ErrPurchaseInProgress = errors.New("the purchase is still being paid")
	ErrAlreadyCanceled    = errors.New("the subscription is already canceled")
	// ErrUnverified is a fact (a payment outcome, a paid period) that the
	// ledgers do not back: a forged or misdirected event. It changes nothing
	// and retrying it cannot help.
	ErrUnverified = errors.New("not backed by the ledger")
)

// Migrate creates the subscription tables, the outbox and the inbox, and the
// payment ledger that ApplyPayment checks payments against.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "subscription", migrations, outbox.Migrate, inbox.Migrate, payment.Migrate)
}

// Join starts p, a saga participant that works on the subscription write
// model (the subscription and renewal functions, named name): p joins with
// Migrate, and the Store on its pool is configured from cfg (StoreConfig).
// A bad setting is found before anything is opened.
func Join(ctx context.Context, p *saga.Participant, cfg map[string]string, name string) (*Store, error) {
	var c StoreConfig
	if err := p.Join(ctx, cfg, name, Migrate, c.Read); err != nil {
		return nil, err
	}
	return c.Store(p.Pool.Pool), nil
}

// ParticipantKeys are the settings Join reads.
func ParticipantKeys() []config.Key {
	return config.KeysOf(func(r *config.Reader) {
		new(saga.Config).Read(r)
		new(StoreConfig).Read(r)
	})
}

// Store is the subscription write model.
type Store struct {
	Pool *pgxpool.Pool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// PendingTimeout is how long a purchase may stay unpaid (default 23 h, as
	// Stripe's incomplete status).
	PendingTimeout time.Duration
	// Dunning are the retry offsets after the first failed renewal.
	Dunning []time.Duration
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Subscription is one row.
type Subscription struct {
	ID              string     `json:"id"`
	UserID          string     `json:"user_id"`
	Plan            string     `json:"plan"`
	Status          string     `json:"status"`
	AmountMinor     int64      `json:"amount_minor"`
	Currency        string     `json:"currency"`
	PaymentToken    string     `json:"-"`
	PaymentMethodID string     `json:"-"`
	CurrentPeriod   int        `json:"current_period"`
	PeriodStart     *time.Time `json:"period_start,omitempty"`
	PeriodEnd       *time.Time `json:"period_end,omitempty"`
	PendingUntil    *time.Time `json:"-"`
	DuePeriod       int        `json:"-"`
	DueAttempt      int        `json:"-"`
	DunningAttempt  int        `json:"dunning_attempt,omitempty"`
	FirstFailedAt   *time.Time `json:"-"`
	NextRetryAt     *time.Time `json:"next_retry_at,omitempty"`
	Reason          string     `json:"reason,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
}

const cols = `id, user_id, plan, status, amount_minor, currency, COALESCE(payment_token,''), COALESCE(payment_method_id,''),
	current_period, period_start, period_end, pending_until, due_period, due_attempt, dunning_attempt, first_failed_at,
	next_retry_at, COALESCE(reason,''), created_at`

func scan(r pgx.Row) (*Subscription, error) {
	var x Subscription
	err := r.Scan(&x.ID, &x.UserID, &x.Plan, &x.Status, &x.AmountMinor, &x.Currency, &x.PaymentToken, &x.PaymentMethodID,
		&x.CurrentPeriod, &x.PeriodStart, &x.PeriodEnd, &x.PendingUntil, &x.DuePeriod, &x.DueAttempt, &x.DunningAttempt,
		&x.FirstFailedAt, &x.NextRetryAt, &x.Reason, &x.CreatedAt)
	return &x, err
}

// Data is the event payload describing x.
func (x *Subscription) Data() eventtype.SubscriptionData {
	return eventtype.SubscriptionData{SubscriptionID: x.ID, UserID: x.UserID, Plan: x.Plan, Status: x.Status,
		PeriodStart: x.PeriodStart, PeriodEnd: x.PeriodEnd, AmountMinor: x.AmountMinor, Currency: x.Currency,
		NextRetryAt: x.NextRetryAt, Reason: x.Reason, Period: x.CurrentPeriod}
}

func fact(typ, id string, x *Subscription) (event.Event, error) {
	return saga.NewEvent(Source, typ, typ+"/"+id, x.ID, x.Data())
}

// Create reserves a pending subscription for userID and announces
// SubscriptionRequested in the same transaction.
func (s *Store) Create(ctx context.Context, userID, planName, token string) (*Subscription, error) {
	plan, ok := Plans[planName]
	if !ok {
		return nil, ErrUnknownPlan
	}
	now := s.now()
	timeout := s.PendingTimeout
	if timeout == 0 {
		timeout = 23 * time.Hour
	}
	until := now.Add(timeout)
	x := &Subscription{ID: uuid.NewString(), UserID: userID, Plan: plan.Name, Status: StatusPending, AmountMinor: plan.AmountMinor,
		Currency: plan.Currency, PaymentToken: token, PendingUntil: &until, CreatedAt: now}
	err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO subscription (id, user_id, plan, status, amount_minor, currency, payment_token, pending_until, created_at, updated_at)
			VALUES ($1,$2,$3,'pending',$4,$5,NULLIF($6,''),$7,$8,$8)`, x.ID, userID, plan.Name, plan.AmountMinor, plan.Currency, token, until, now)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return ErrAlreadySubscribed
		}
		if err != nil {
			return fmt.Errorf("insert subscription: %w", err)
		}
		if err := history(ctx, tx, x.ID, "", StatusPending, "purchase requested"); err != nil {
			return err
		}
		e, err := saga.NewEvent(Source, eventtype.SubscriptionRequested, eventtype.SubscriptionRequested+"/"+x.ID, x.ID,
			eventtype.SubscriptionRequestedData{SubscriptionID: x.ID, UserID: userID, Plan: plan.Name, AmountMinor: plan.AmountMinor,
				Currency: plan.Currency, PaymentMethod: token})
		if err != nil {
			return err
		}
		return outbox.Write(ctx, tx, e)
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

func history(ctx context.Context, tx pgx.Tx, id, from, to, reason string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO subscription_history (subscription_id, from_status, to_status, reason) VALUES ($1, NULLIF($2,''), $3, NULLIF($4,''))`,
		id, from, to, reason); err != nil {
		return fmt.Errorf("subscription history: %w", err)
	}
	return nil
}

// lock reads and locks a subscription in tx.
func lock(ctx context.Context, tx pgx.Tx, id string) (*Subscription, error) {
	x, err := scan(tx.QueryRow(ctx, `SELECT `+cols+` FROM subscription WHERE id=$1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("subscription %s: %w", id, ErrNoSubscription)
	}
	if err != nil {
		return nil, fmt.Errorf("lock subscription %s: %w", id, err)
	}
	return x, nil
}

// move applies a lifecycle transition, refusing illegal ones.
func move(ctx context.Context, tx pgx.Tx, x *Subscription, to, reason string) error {
	if err := Transition(x.Status, to); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE subscription SET status=$2, current_period=$3, period_start=$4, period_end=$5,
		payment_method_id=NULLIF($6,''), due_period=$7, due_attempt=$8, dunning_attempt=$9, first_failed_at=$10,
		next_retry_at=$11, reason=NULLIF($12,''), updated_at=now() WHERE id=$1`,
		x.ID, to, x.CurrentPeriod, x.PeriodStart, x.PeriodEnd, x.PaymentMethodID, x.DuePeriod, x.DueAttempt,
		x.DunningAttempt, x.FirstFailedAt, x.NextRetryAt, reason)
	if err != nil {
		return fmt.Errorf("update subscription %s: %w", x.ID, err)
	}
	if x.Status != to || reason != "" {
		if err := history(ctx, tx, x.ID, x.Status, to, reason); err != nil {
			return err
		}
	}
	x.Status, x.Reason = to, reason
	return nil
}

// Outcome is what applying a payment did.
type Outcome struct {
	Subscription *Subscription
	// Refused is true when a captured payment cannot back a period (the
	// purchase was abandoned or the subscription ended): it must be refunded.
	Refused bool
	// Events are the facts to write into the outbox (in the caller's tx).
	Events []event.Event
}

// ApplyPayment records a payment outcome in tx: a completed payment records
// its paid period (once: the (subscription, period) key) and activates or
// renews; a failed one fails the purchase or starts/continues dunning.
// Applying the same payment again changes nothing and announces nothing.
//
// The event only names the payment: what is applied is the payment ledger's
// record of it (see verify). A payment the ledger does not back is
// ErrUnverified and changes nothing; a captured payment of the wrong amount
// or currency is refused (Outcome.Refused), so it is refunded, and backs no
// period.
func (s *Store) ApplyPayment(ctx context.Context, tx pgx.Tx, d eventtype.PaymentData, completed bool) (Outcome, error) {
	x, err := lock(ctx, tx, d.SubscriptionID)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Subscription: x}
	rec, wrongAmount, err := verify(ctx, tx, x, d, completed)
	if err != nil {
		return out, err
	}
	if wrongAmount != "" {
		return refuse(x, rec, wrongAmount, out)
	}
	if completed {
		return s.applyCompleted(ctx, tx, x, rec, out)
	}
	return s.applyFailed(ctx, tx, x, rec, out)
}

// verify checks a payment outcome against the payment ledger and returns the
// ledger's data to apply. A completed payment must be a capture (status
// succeeded) of this subscription and period; wrongAmount says why a capture
// cannot pay for the period when its amount or currency is not the
// subscription's. A failed outcome must not contradict the ledger (a capture
// or a pending attempt); one the ledger has never seen is the orchestrator's
// release after a charge that never reached the payment function.
func verify(ctx context.Context, tx pgx.Tx, x *Subscription, d eventtype.PaymentData, completed bool) (data eventtype.PaymentData, wrongAmount string, err error) {
	rec, err := payment.Lookup(ctx, tx, d.PaymentID)
	if errors.Is(err, payment.ErrUnknownPayment) && !completed && d.PaymentID != "" {
		return d, "", nil
	}
	if errors.Is(err, payment.ErrUnknownPayment) {
		return d, "", fmt.Errorf("payment %q of subscription %s: %w", d.PaymentID, x.ID, ErrUnverified)
	}
	if err != nil {
		return d, "", err
	}
	if rec.SubscriptionID != x.ID || rec.Period != d.Period {
		return d, "", fmt.Errorf("payment %s is for %s period %d, not %s period %d: %w", rec.PaymentID, rec.SubscriptionID, rec.Period, x.ID, d.Period, ErrUnverified)
	}
	rec.Outcome = d.Outcome
	if !completed {
		if rec.Status == payment.RowSucceeded || rec.Status == payment.RowPending {
			return d, "", fmt.Errorf("payment %s is %s in the ledger, not failed: %w", rec.PaymentID, rec.Status, ErrUnverified)
		}
		if rec.Reason == "" {
			rec.Reason = d.Reason
		}
		return rec.PaymentData, "", nil
	}
	if rec.Status != payment.RowSucceeded {
		return d, "", fmt.Errorf("payment %s is %s in the ledger, not captured: %w", rec.PaymentID, rec.Status, ErrUnverified)
	}
	if rec.AmountMinor != x.AmountMinor || rec.Currency != x.Currency {
		return rec.PaymentData, fmt.Sprintf("payment %s captured %d %s, the subscription costs %d %s",
			rec.PaymentID, rec.AmountMinor, rec.Currency, x.AmountMinor, x.Currency), nil
	}
	return rec.PaymentData, "", nil
}

// refuse answers a captured payment that cannot back a period with
// SubscriptionFailed, which makes the payment function refund it.
func refuse(x *Subscription, d eventtype.PaymentData, reason string, out Outcome) (Outcome, error) {
	out.Refused = true
	data := x.Data()
	data.Status, data.PaymentID, data.Reason, data.Period = x.Status, d.PaymentID, reason, d.Period
	e, err := saga.NewEvent(Source, eventtype.SubscriptionFailed, eventtype.SubscriptionFailed+"/"+d.PaymentID, x.ID, data)
	if err != nil {
		return out, err
	}
	out.Events = append(out.Events, e)
	return out, nil
}

func (s *Store) applyCompleted(ctx context.Context, tx pgx.Tx, x *Subscription, d eventtype.PaymentData, out Outcome) (Outcome, error) {
	var recorded string
	err := tx.QueryRow(ctx, `SELECT payment_id FROM subscription_period WHERE subscription_id=$1 AND period=$2`, x.ID, d.Period).Scan(&recorded)
	switch {
	case err == nil:
		return out, nil // this period is already paid: a duplicate
	case !errors.Is(err, pgx.ErrNoRows):
		return out, fmt.Errorf("paid period lookup: %w", err)
	}
	now := s.now()
	plan := Plans[x.Plan]
	// The payment can back the period only if the subscription is still
	// waiting for it: the purchase still pending (period 1), or the period
	// right after the current one while the subscription has not ended.
	okInitial := d.Period == 1 && x.Status == StatusPending
	okRenewal := d.Period == x.CurrentPeriod+1 && d.Period > 1 &&
		(x.Status == StatusActive || x.Status == StatusPastDue || x.Status == StatusCanceled && x.PeriodEnd != nil && x.PeriodEnd.After(now))
	if !okInitial && !okRenewal {
		return refuse(x, d, fmt.Sprintf("payment %s for period %d arrived while the subscription is %s (period %d)", d.PaymentID, d.Period, x.Status, x.CurrentPeriod), out)
	}
	start := now
	if okRenewal && x.PeriodEnd != nil && x.PeriodEnd.After(now) {
		start = *x.PeriodEnd // renewing early: the new period follows the paid one
	}
	end := plan.End(start)
	if _, err := tx.Exec(ctx, `INSERT INTO subscription_period (subscription_id, period, payment_id, amount_minor, starts_at, ends_at) VALUES ($1,$2,$3,$4,$5,$6)`,
		x.ID, d.Period, d.PaymentID, d.AmountMinor, start, end); err != nil {
		return out, fmt.Errorf("record paid period %d of %s: %w", d.Period, x.ID, err)
	}
	x.CurrentPeriod, x.PeriodStart, x.PeriodEnd = d.Period, &start, &end
	if d.PaymentMethodID != "" {
		x.PaymentMethodID = d.PaymentMethodID
	}
	x.DunningAttempt, x.FirstFailedAt, x.NextRetryAt = 0, nil, nil
	to, typ := StatusActive, eventtype.SubscriptionActivated
	if d.Period > 1 {
		typ = eventtype.SubscriptionRenewed
		if x.Status == StatusCanceled {
			to = StatusCanceled
		}
	}
	if err := move(ctx, tx, x, to, ""); err != nil {
		return out, err
	}
	data := x.Data()
	data.PaymentID = d.PaymentID
	e, err := saga.NewEvent(Source, typ, typ+"/"+x.ID+"/"+strconv.Itoa(d.Period), x.ID, data)
	if err != nil {
		return out, err
	}
	out.Events = append(out.Events, e)
	return out, nil
}

func (s *Store) applyFailed(ctx context.Context, tx pgx.Tx, x *Subscription, d eventtype.PaymentData, out Outcome) (Outcome, error) {
	now := s.now()
	switch {
	case d.Period == 1 && x.Status == StatusPending:
		if err := move(ctx, tx, x, StatusFailed, "payment failed: "+d.Reason); err != nil {
			return out, err
		}
		return out, nil
	case d.Period == x.CurrentPeriod+1 && d.Period > 1 && (x.Status == StatusActive || x.Status == StatusPastDue) && d.Attempt > x.DunningAttempt:
		x.DunningAttempt = d.Attempt
		if x.FirstFailedAt == nil {
			x.FirstFailedAt = &now
		}
		if d.Attempt <= len(s.Dunning) {
			next := x.FirstFailedAt.Add(s.Dunning[d.Attempt-1])
			x.NextRetryAt = &next
			if err := move(ctx, tx, x, StatusPastDue, "renewal charge failed: "+d.Reason); err != nil {
				return out, err
			}
			data := x.Data()
			data.PaymentID, data.Period = d.PaymentID, d.Period
			e, err := saga.NewEvent(Source, eventtype.SubscriptionRenewalFailed,
				fmt.Sprintf("%s/%s/%d/%d", eventtype.SubscriptionRenewalFailed, x.ID, d.Period, d.Attempt), x.ID, data)
			if err != nil {
				return out, err
			}
			out.Events = append(out.Events, e)
			return out, nil
		}
		x.NextRetryAt = nil
		if err := move(ctx, tx, x, StatusCanceled, fmt.Sprintf("renewal failed %d times: %s", d.Attempt, d.Reason)); err != nil {
			return out, err
		}
		e, err := fact(eventtype.SubscriptionCanceled, x.ID, x)
		if err != nil {
			return out, err
		}
		out.Events = append(out.Events, e)
		return out, nil
	}
	return out, nil // stale or duplicate: nothing to do
}

// Fail releases a pending purchase (the saga's compensation of the
// reservation, or the pending timeout).
func (s *Store) Fail(ctx context.Context, tx pgx.Tx, id, reason string) (*Subscription, error) {
	x, err := lock(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if x.Status != StatusPending {
		return x, nil
	}
	return x, move(ctx, tx, x, StatusFailed, reason)
}

// Current returns the user's most recent subscription.
func (s *Store) Current(ctx context.Context, userID string) (*Subscription, error) {
	x, err := scan(s.Pool.QueryRow(ctx, `SELECT `+cols+` FROM subscription WHERE user_id=$1 ORDER BY created_at DESC, id DESC LIMIT 1`, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoSubscription
	}
	if err != nil {
		return nil, fmt.Errorf("current subscription of %s: %w", userID, err)
	}
	return x, nil
}

// Get returns a subscription by id.
func (s *Store) Get(ctx context.Context, id string) (*Subscription, error) {
	x, err := scan(s.Pool.QueryRow(ctx, `SELECT `+cols+` FROM subscription WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoSubscription
	}
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", id, err)
	}
	return x, nil
}

// HistoryEntry is one status change.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

// PaidPeriod is one recorded paid period.
type PaidPeriod struct {
	Period      int       `json:"period"`
	PaymentID   string    `json:"payment_id"`
	AmountMinor int64     `json:"amount_minor"`
	StartsAt    time.Time `json:"starts_at"`
	EndsAt      time.Time `json:"ends_at"`
}

// History returns the status changes and paid periods of a subscription.
func (s *Store) History(ctx context.Context, id string) ([]HistoryEntry, []PaidPeriod, error) {
	rows, err := s.Pool.Query(ctx, `SELECT at, COALESCE(from_status,''), to_status, COALESCE(reason,'') FROM subscription_history WHERE subscription_id=$1 ORDER BY id`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("history of %s: %w", id, err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
		var h HistoryEntry
		return h, r.Scan(&h.At, &h.From, &h.To, &h.Reason)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("history of %s: %w", id, err)
	}
	rows, err = s.Pool.Query(ctx, `SELECT period, payment_id, amount_minor, starts_at, ends_at FROM subscription_period WHERE subscription_id=$1 ORDER BY period`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("periods of %s: %w", id, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PaidPeriod, error) {
		var p PaidPeriod
		return p, r.Scan(&p.Period, &p.PaymentID, &p.AmountMinor, &p.StartsAt, &p.EndsAt)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("periods of %s: %w", id, err)
	}
	return hs, ps, nil
}

// Cancel stops renewal of the user's subscription at the end of its period
// (premium stays until then) and announces SubscriptionCanceled.
func (s *Store) Cancel(ctx context.Context, userID string) (*Subscription, error) {
	var x *Subscription
	err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM subscription WHERE user_id=$1 AND status IN ('pending','active','past_due','canceled') ORDER BY created_at DESC LIMIT 1`, userID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoSubscription
		}
		if err != nil {
			return fmt.Errorf("find subscription of %s: %w", userID, err)
		}
		if x, err = lock(ctx, tx, id); err != nil {
			return err
		}
		switch x.Status {
		case StatusPending:
			return ErrPurchaseInProgress
		case StatusCanceled:
			return ErrAlreadyCanceled
		}
		x.NextRetryAt = nil
		if err := move(ctx, tx, x, StatusCanceled, "canceled by the listener"); err != nil {
			return err
		}
		e, err := fact(eventtype.SubscriptionCanceled, x.ID, x)
		if err != nil {
			return err
		}
		return outbox.Write(ctx, tx, e)
	})
	return x, err
}

// Sweep does the time-driven transitions due at now, each in its own
// transaction with its event: pending purchases past their deadline fail
// (only when expirePending, i.e. in choreography: the orchestrator times out
// its own sagas), canceled subscriptions whose paid period has ended expire,
// and due renewals (period end, or the next dunning retry) are asked for with
// RenewalDue. It returns how many subscriptions it changed.
func (s *Store) Sweep(ctx context.Context, expirePending bool) (int, error) {
	now := s.now()
	n := 0
	var ids []string
	collect := func(q string, args ...any) error {
		rows, err := s.Pool.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("sweep query: %w", err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("sweep query: %w", err)
		}
		ids = append(ids[:0], got...)
		return nil
	}
	if expirePending {
		if err := collect(`SELECT id FROM subscription WHERE status='pending' AND pending_until <= $1 LIMIT 1000`, now); err != nil {
			return n, err
		}
		for _, id := range ids {
			if err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
				x, err := lock(ctx, tx, id)
				if err != nil || x.Status != StatusPending {
					return err
				}
				n++
				return move(ctx, tx, x, StatusFailed, "not paid in time")
			}); err != nil {
				return n, err
			}
		}
	}
	if err := collect(`SELECT id FROM subscription WHERE status='canceled' AND period_end <= $1 LIMIT 1000`, now); err != nil {
		return n, err
	}
	for _, id := range ids {
		if err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
			x, err := lock(ctx, tx, id)
			if err != nil || x.Status != StatusCanceled || x.PeriodEnd == nil || x.PeriodEnd.After(now) {
				return err
			}
			if err := move(ctx, tx, x, StatusExpired, "paid period ended"); err != nil {
				return err
			}
			n++
			e, err := fact(eventtype.SubscriptionExpired, x.ID, x)
			if err != nil {
				return err
			}
			return outbox.Write(ctx, tx, e)
		}); err != nil {
			return n, err
		}
	}
	if err := collect(`SELECT id FROM subscription WHERE (status='active' AND period_end <= $1) OR (status='past_due' AND next_retry_at <= $1) LIMIT 1000`, now); err != nil {
		return n, err
	}
	for _, id := range ids {
		if err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
			x, err := lock(ctx, tx, id)
			if err != nil {
				return err
			}
			period, attempt := x.CurrentPeriod+1, x.DunningAttempt+1
			switch {
			case x.Status == StatusActive && x.PeriodEnd != nil && !x.PeriodEnd.After(now):
			case x.Status == StatusPastDue && x.NextRetryAt != nil && !x.NextRetryAt.After(now):
			default:
				return nil
			}
			if x.DuePeriod == period && x.DueAttempt >= attempt {
				return nil // already asked; the charge is in flight
			}
			if x.PaymentMethodID == "" {
				return nil
			}
			if _, err := tx.Exec(ctx, `UPDATE subscription SET due_period=$2, due_attempt=$3, updated_at=now() WHERE id=$1`, x.ID, period, attempt); err != nil {
				return fmt.Errorf("mark renewal due: %w", err)
			}
			n++
			e, err := saga.NewEvent(RenewalSource, eventtype.SubscriptionRenewalDue,
				fmt.Sprintf("%s/%s/%d/%d", eventtype.SubscriptionRenewalDue, x.ID, period, attempt), x.ID,
				eventtype.RenewalDueData{SubscriptionID: x.ID, UserID: x.UserID, Plan: x.Plan, AmountMinor: x.AmountMinor,
					Currency: x.Currency, PaymentMethodID: x.PaymentMethodID, Period: period, Attempt: attempt})
			if err != nil {
				return err
			}
			return outbox.Write(ctx, tx, e)
		}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Querier is what PaidPeriodOf reads through: a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PaidPeriodOf returns subscription id and its recorded paid period: the
// store's word that the period was paid for (by a captured payment of the
// right amount, see ApplyPayment). Consumers of SubscriptionActivated and
// SubscriptionRenewed read it instead of trusting the event; a period that
// was never recorded is ErrUnverified.
func PaidPeriodOf(ctx context.Context, q Querier, id string, period int) (*Subscription, PaidPeriod, error) {
	x, err := scan(q.QueryRow(ctx, `SELECT `+cols+` FROM subscription WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, PaidPeriod{}, fmt.Errorf("subscription %q: %w", id, ErrUnverified)
	}
	if err != nil {
		return nil, PaidPeriod{}, fmt.Errorf("subscription %s: %w", id, err)
	}
	p := PaidPeriod{Period: period}
	err = q.QueryRow(ctx, `SELECT payment_id, amount_minor, starts_at, ends_at FROM subscription_period WHERE subscription_id=$1 AND period=$2`, id, period).
		Scan(&p.PaymentID, &p.AmountMinor, &p.StartsAt, &p.EndsAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return x, p, fmt.Errorf("subscription %s has no paid period %d: %w", id, period, ErrUnverified)
	}
	if err != nil {
		return x, p, fmt.Errorf("paid period %d of %s: %w", period, id, err)
	}
	return x, p, nil
}

// Status returns subscription id as the store holds it now (ErrUnverified
// when there is none).
func Status(ctx context.Context, q Querier, id string) (*Subscription, error) {
	x, err := scan(q.QueryRow(ctx, `SELECT `+cols+` FROM subscription WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("subscription %q: %w", id, ErrUnverified)
	}
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", id, err)
	}
	return x, nil
}
