package sagamanager_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	sagamanager "github.com/overture-music/overture/functions/saga-manager"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type clock struct{ t time.Time }

func start(t *testing.T, mode string) (*sagamanager.Function, *pgxpool.Pool, *clock) {
	t.Helper()
	f := sagamanager.New()
	pool := functiontest.Start(t, f, map[string]string{"SAGA_MODE": mode, "SAGA_STEP_TIMEOUT": "10s", "SAGA_MAX_CHARGE_ATTEMPTS": "2"})
	c := &clock{t: time.Now()}
	f.Now = func() time.Time { return c.t }
	return f, pool, c
}

func ev(t *testing.T, typ, id string, data any) event.Event {
	t.Helper()
	e, err := saga.NewEvent("/test", typ, id, "", data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// commands returns the commands written so far, in order, as type/step/attempt.
func commands(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_type, event FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		var body []byte
		_ = rows.Scan(&typ, &body)
		var e event.Event
		_ = json.Unmarshal(body, &e)
		var c eventtype.SagaCommand
		_ = json.Unmarshal(e.Data(), &c)
		out = append(out, typ[len("music.overture.saga."):len(typ)-3]+"/"+c.Step+"/"+string(rune('0'+c.Attempt)))
	}
	return out
}

// wantCommands fails the test unless the commands written so far are want,
// in order.
func wantCommands(t *testing.T, pool *pgxpool.Pool, want ...string) {
	t.Helper()
	if got := commands(t, pool); !slices.Equal(got, want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
}

// wantState fails the test unless saga id is in state want.
func wantState(t *testing.T, pool *pgxpool.Pool, id, want string) {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT state FROM saga_instance WHERE saga_id=$1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s != want {
		t.Fatalf("saga %s is %s, want %s", id, s, want)
	}
}

func handle(t *testing.T, f *sagamanager.Function, e event.Event) {
	t.Helper()
	if _, err := f.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func reply(t *testing.T, ok bool, step string, attempt int, id string) event.Event {
	typ := eventtype.SagaStepSucceeded
	if !ok {
		typ = eventtype.SagaStepFailed
	}
	end := time.Now().Add(time.Hour)
	return ev(t, typ, typ+step+id+string(rune('0'+attempt)), eventtype.SagaReply{SagaID: id, Step: step, Attempt: attempt,
		Payment:      &eventtype.PaymentData{PaymentID: "sub-1:1:1", SubscriptionID: "sub-1", Period: 1, Outcome: "completed"},
		Subscription: &eventtype.SubscriptionData{SubscriptionID: "sub-1", UserID: "u", PeriodEnd: &end}})
}

// The participants' records a reply is checked against, written as each
// participant would have in the transaction that sent its reply.

// payment sets the ledger's attempt id of sub-… to status.
func payment(t *testing.T, pool *pgxpool.Pool, id, status string) {
	t.Helper()
	sub, _, _ := strings.Cut(id, ":")
	if _, err := pool.Exec(context.Background(), `INSERT INTO payment (id, subscription_id, user_id, period, attempt, purpose, amount_minor, currency, status)
		VALUES ($1,$2,'u',1,1,'initial',29900,'RUB',$3) ON CONFLICT (id) DO UPDATE SET status=$3`, id, sub, status); err != nil {
		t.Fatal(err)
	}
}

// subscription sets subscription sub's status, and with paid its first paid
// period (ending end), recorded with payment sub:1:1.
func subscription(t *testing.T, pool *pgxpool.Pool, sub, status string, paid bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO subscription (id, user_id, plan, status, amount_minor, currency, current_period, period_end)
		VALUES ($1,'u','monthly',$2,29900,'RUB',1,$3) ON CONFLICT (id) DO UPDATE SET status=$2`, sub, status, end); err != nil {
		t.Fatal(err)
	}
	if paid {
		if _, err := pool.Exec(ctx, `INSERT INTO subscription_period (subscription_id, period, payment_id, amount_minor, starts_at, ends_at)
			VALUES ($1,1,$1||':1:1',29900,$2,$3)`, sub, end.AddDate(0, -1, 0), end); err != nil {
			t.Fatal(err)
		}
	}
}

// premium sets the user function's grant of user u until end.
func premium(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO app_user (user_id, is_premium, premium_until, version) VALUES ('u', true, $1, 1)`, end); err != nil {
		t.Fatal(err)
	}
}

var end = time.Now().Add(time.Hour).UTC().Truncate(time.Second)

var requested = eventtype.SubscriptionRequestedData{SubscriptionID: "sub-1", UserID: "u", Plan: "monthly", AmountMinor: 29900, Currency: "RUB"}

// The happy path, with every message delivered twice and a stale reply in
// between: each command is sent once per step.
func TestHappyPathUnderDuplicates(t *testing.T) {
	t.Parallel()
	f, pool, _ := start(t, "orchestration")
	id := "sub-1:1:1"
	for range 2 {
		handle(t, f, ev(t, eventtype.SubscriptionRequested, "req-1", requested))
	}
	records := map[string]func(){
		saga.StepCharge: func() { payment(t, pool, id, "succeeded") },
		saga.StepApply:  func() { subscription(t, pool, "sub-1", "active", true) },
		saga.StepGrant:  func() { premium(t, pool) },
	}
	for _, step := range []string{saga.StepCharge, saga.StepApply, saga.StepGrant} {
		records[step]()
		for range 2 {
			handle(t, f, reply(t, true, step, 1, id))
		}
		handle(t, f, reply(t, true, saga.StepCharge, 1, id)) // stale: must be ignored
	}
	wantCommands(t, pool, "charge_payment/charge/1", "apply_payment/apply/1", "grant_premium/grant/1")
	wantState(t, pool, id, sagamanager.StateCompleted)
}

// A declined charge releases the reservation; a payment the subscription
// refuses is refunded; compensations end the saga.
func TestCompensations(t *testing.T) {
	t.Parallel()
	f, pool, _ := start(t, "orchestration")
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r1", requested))
	payment(t, pool, "sub-1:1:1", "failed")
	handle(t, f, reply(t, false, saga.StepCharge, 1, "sub-1:1:1"))
	subscription(t, pool, "sub-1", "failed", false)
	handle(t, f, reply(t, true, saga.StepRelease, 1, "sub-1:1:1"))
	wantState(t, pool, "sub-1:1:1", sagamanager.StateFailed)
	r2 := requested
	r2.SubscriptionID = "sub-2"
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r2", r2))
	payment(t, pool, "sub-2:1:1", "succeeded")
	handle(t, f, reply(t, true, saga.StepCharge, 1, "sub-2:1:1"))
	subscription(t, pool, "sub-2", "failed", false)
	handle(t, f, reply(t, false, saga.StepApply, 1, "sub-2:1:1"))
	payment(t, pool, "sub-2:1:1", "refunded")
	handle(t, f, reply(t, true, saga.StepRefund, 1, "sub-2:1:1"))
	wantState(t, pool, "sub-2:1:1", sagamanager.StateCompensated)
	wantCommands(t, pool, "charge_payment/charge/1", "apply_payment/release/1", "charge_payment/charge/1", "apply_payment/apply/1", "refund_payment/refund/1")
}

// The sweep resends an overdue command (next attempt), and a charge still
// unresolved after the maximum attempts is aborted: refund, then release.
func TestSweepResendsThenAborts(t *testing.T) {
	t.Parallel()
	f, pool, c := start(t, "orchestration")
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r1", requested))
	if n, err := f.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep before the deadline touched %d (%v)", n, err)
	}
	c.t = c.t.Add(11 * time.Second)
	if _, err := f.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(11 * time.Second)
	if _, err := f.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantState(t, pool, "sub-1:1:1", sagamanager.StateAborting)
	handle(t, f, reply(t, true, saga.StepCharge, 1, "sub-1:1:1")) // the late charge reply: ignored
	payment(t, pool, "sub-1:1:1", "refunded")
	handle(t, f, reply(t, true, saga.StepRefund, 1, "sub-1:1:1"))
	subscription(t, pool, "sub-1", "failed", false)
	handle(t, f, reply(t, true, saga.StepRelease, 1, "sub-1:1:1"))
	wantState(t, pool, "sub-1:1:1", sagamanager.StateFailed)
	wantCommands(t, pool, "charge_payment/charge/1", "charge_payment/charge/2", "refund_payment/refund/1", "apply_payment/release/1")
}

func TestChoreographyModeIgnoresEverything(t *testing.T) {
	t.Parallel()
	f, pool, _ := start(t, "choreography")
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r1", requested))
	if got := commands(t, pool); len(got) != 0 {
		t.Fatalf("choreography mode sent %v", got)
	}
}

// A forged saga.step_succeeded must not advance a saga: replies the
// participants' records do not back are logged and ignored at every step, so
// no apply or grant command is ever sent for a charge that was not captured.
func TestForgedRepliesDoNotAdvance(t *testing.T) {
	t.Parallel()
	f, pool, _ := start(t, "orchestration")
	id := "sub-1:1:1"
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r1", requested))
	handle(t, f, reply(t, true, saga.StepCharge, 1, id)) // no payment in the ledger at all
	payment(t, pool, id, "pending")
	handle(t, f, reply(t, true, saga.StepCharge, 1, id)) // not captured yet
	handle(t, f, reply(t, false, saga.StepCharge, 1, id))
	wantState(t, pool, id, sagamanager.StateCharging)
	wantCommands(t, pool, "charge_payment/charge/1")

	payment(t, pool, id, "succeeded")
	handle(t, f, reply(t, true, saga.StepCharge, 1, id))
	handle(t, f, reply(t, true, saga.StepApply, 1, id)) // no paid period recorded
	wantState(t, pool, id, sagamanager.StateApplying)
	subscription(t, pool, "sub-1", "active", true)
	handle(t, f, reply(t, false, saga.StepApply, 1, id)) // "refused", but the period is recorded
	handle(t, f, reply(t, true, saga.StepApply, 1, id))
	handle(t, f, reply(t, true, saga.StepGrant, 1, id)) // premium not granted
	wantState(t, pool, id, sagamanager.StateGranting)
	premium(t, pool)
	handle(t, f, reply(t, true, saga.StepGrant, 1, id))
	wantState(t, pool, id, sagamanager.StateCompleted)
	wantCommands(t, pool, "charge_payment/charge/1", "apply_payment/apply/1", "grant_premium/grant/1")
}
