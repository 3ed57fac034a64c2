package sagamanager_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	sagamanager "github.com/overture-music/overture/functions/saga-manager"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/saga"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type clock struct{ t time.Time }

func start(t *testing.T, mode string) (*sagamanager.Function, *pgxpool.Pool, *clock) {
	t.Helper()
	ctx := context.Background()
	db := testenv.Postgres(t)
	f := sagamanager.New()
	if err := f.Start(ctx, map[string]string{"DATABASE_URL": db, "SAGA_MODE": mode, "SAGA_STEP_TIMEOUT": "10s", "SAGA_MAX_CHARGE_ATTEMPTS": "2"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(ctx) })
	c := &clock{t: time.Now()}
	f.Now = func() time.Time { return c.t }
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
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

func state(t *testing.T, pool *pgxpool.Pool, id string) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT state FROM saga_instance WHERE saga_id=$1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
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
	for _, step := range []string{saga.StepCharge, saga.StepApply, saga.StepGrant} {
		for range 2 {
			handle(t, f, reply(t, true, step, 1, id))
		}
		handle(t, f, reply(t, true, saga.StepCharge, 1, id)) // stale: must be ignored
	}
	want := []string{"charge_payment/charge/1", "apply_payment/apply/1", "grant_premium/grant/1"}
	if got := commands(t, pool); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("commands %v, want %v", got, want)
	}
	if s := state(t, pool, id); s != sagamanager.StateCompleted {
		t.Fatalf("state %s", s)
	}
}

// A declined charge releases the reservation; a payment the subscription
// refuses is refunded; compensations end the saga.
func TestCompensations(t *testing.T) {
	t.Parallel()
	f, pool, _ := start(t, "orchestration")
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r1", requested))
	handle(t, f, reply(t, false, saga.StepCharge, 1, "sub-1:1:1"))
	handle(t, f, reply(t, true, saga.StepRelease, 1, "sub-1:1:1"))
	if s := state(t, pool, "sub-1:1:1"); s != sagamanager.StateFailed {
		t.Fatalf("declined saga: %s", s)
	}
	r2 := requested
	r2.SubscriptionID = "sub-2"
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r2", r2))
	handle(t, f, reply(t, true, saga.StepCharge, 1, "sub-2:1:1"))
	handle(t, f, reply(t, false, saga.StepApply, 1, "sub-2:1:1"))
	handle(t, f, reply(t, true, saga.StepRefund, 1, "sub-2:1:1"))
	if s := state(t, pool, "sub-2:1:1"); s != sagamanager.StateCompensated {
		t.Fatalf("refused payment saga: %s", s)
	}
	got := commands(t, pool)
	want := []string{"charge_payment/charge/1", "apply_payment/release/1", "charge_payment/charge/1", "apply_payment/apply/1", "refund_payment/refund/1"}
	if len(got) != len(want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("commands %v, want %v", got, want)
		}
	}
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
	if s := state(t, pool, "sub-1:1:1"); s != sagamanager.StateAborting {
		t.Fatalf("state %s, want aborting", s)
	}
	handle(t, f, reply(t, true, saga.StepCharge, 1, "sub-1:1:1")) // the late charge reply: ignored
	handle(t, f, reply(t, true, saga.StepRefund, 1, "sub-1:1:1"))
	handle(t, f, reply(t, true, saga.StepRelease, 1, "sub-1:1:1"))
	if s := state(t, pool, "sub-1:1:1"); s != sagamanager.StateFailed {
		t.Fatalf("state %s, want failed", s)
	}
	want := []string{"charge_payment/charge/1", "charge_payment/charge/2", "refund_payment/refund/1", "apply_payment/release/1"}
	got := commands(t, pool)
	if len(got) != len(want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("commands %v, want %v", got, want)
		}
	}
}

func TestChoreographyModeIgnoresEverything(t *testing.T) {
	t.Parallel()
	f, pool, _ := start(t, "choreography")
	handle(t, f, ev(t, eventtype.SubscriptionRequested, "r1", requested))
	if got := commands(t, pool); len(got) != 0 {
		t.Fatalf("choreography mode sent %v", got)
	}
}
