package authentitlement_test

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	authentitlement "github.com/overture-music/overture/functions/auth-entitlement"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type bundle struct {
	f    *authentitlement.Entitlement
	logs *bytes.Buffer
	pool *pgxpool.Pool
	rdb  *redis.Client
}

func setup(t *testing.T) bundle {
	t.Helper()
	ctx := context.Background()
	cfg := map[string]string{"DATABASE_URL": testenv.Postgres(t), "REDIS_URL": testenv.Redis(t)}
	b := bundle{f: authentitlement.New(), logs: &bytes.Buffer{}}
	b.f.Log = telemetry.NewLogger(b.logs, nil)
	if err := b.f.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.f.Stop(ctx) })
	if ok, err := b.f.Ready(ctx); !ok || err != nil {
		t.Fatalf("not ready: %v", err)
	}
	b.pool = postgrestest.Open(t, cfg["DATABASE_URL"])
	opt, _ := redis.ParseURL(cfg["REDIS_URL"])
	b.rdb = redis.NewClient(opt)
	t.Cleanup(func() { _ = b.rdb.Close() })
	return b
}

// issue sets the user function's row (app_user) as a grant or revoke of the
// user function would: the state at version.
func (b bundle) issue(t *testing.T, uid string, premium bool, until *time.Time, version int64) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO app_user (user_id, is_premium, premium_until, version) VALUES ($1,$2,$3,$4)
		ON CONFLICT (user_id) DO UPDATE SET is_premium=$2, premium_until=$3, version=$4`, uid, premium, until, version); err != nil {
		t.Fatal(err)
	}
}

func (b bundle) handle(t *testing.T, d eventtype.UserUpdatedData) {
	t.Helper()
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetSource("/overture/user")
	ev.SetType(eventtype.UserUpdated)
	_ = ev.SetData(event.ApplicationJSON, d)
	if reply, err := b.f.Handle(context.Background(), ev); err != nil || reply != nil {
		t.Fatalf("Handle = %v, %v (a refused event is acknowledged)", reply, err)
	}
}

func (b bundle) entitlement(t *testing.T, uid string) string {
	t.Helper()
	got, err := b.rdb.Get(context.Background(), auth.EntitlementKey(uid)).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return got
}

func TestHandleDuplicateAndBadEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	uid := uuid.NewString()
	b.issue(t, uid, true, nil, 7)
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetSource("/overture/user")
	ev.SetType(eventtype.UserUpdated)
	_ = ev.SetData(event.ApplicationJSON, eventtype.UserUpdatedData{UserID: uid, IsPremium: true, Version: 7})
	for range 2 {
		if reply, err := b.f.Handle(ctx, ev); err != nil || reply != nil {
			t.Fatalf("Handle = %v, %v", reply, err)
		}
	}
	if got := b.entitlement(t, uid); got != `{"version":1,"premium":true,"premium_until":null}` {
		t.Fatalf("entitlement key %q", got)
	}
	// An event with no user can never apply: acknowledged (no retry storm), logged.
	bad := ev.Clone()
	bad.SetID(uuid.NewString())
	_ = bad.SetData(event.ApplicationJSON, map[string]any{"is_premium": true})
	if _, err := b.f.Handle(ctx, bad); err != nil {
		t.Fatalf("unusable event should be acknowledged, got %v", err)
	}
	if !bytes.Contains(b.logs.Bytes(), []byte("dropping unusable event")) {
		t.Fatal("unusable event not logged")
	}
}

// The attacks of issue 10: a forged UserUpdated with is_premium true gave a
// free account a year of premium; one with is_premium false and the largest
// version took premium away for good (later real updates looked older). Now
// the entitlement follows the user function's row only: the claims change
// nothing, a version it never issued is refused and logged, and the next real
// update still applies.
func TestForgedUserUpdatedChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	year := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second)

	// A free account: forged premium, at the issued version and above it.
	free := uuid.NewString()
	b.issue(t, free, false, nil, 1)
	b.handle(t, eventtype.UserUpdatedData{UserID: free, Version: 1})
	want := b.entitlement(t, free)
	for _, v := range []int64{1, 2, 99} {
		b.handle(t, eventtype.UserUpdatedData{UserID: free, IsPremium: true, PremiumUntil: &year, Version: v})
	}
	if got := b.entitlement(t, free); got != want || got != `{"version":1,"premium":false,"premium_until":null}` {
		t.Fatalf("free account after forged premium: %s, want %s", got, want)
	}
	// A user the user function has never seen.
	ghost := uuid.NewString()
	b.handle(t, eventtype.UserUpdatedData{UserID: ghost, IsPremium: true, PremiumUntil: &year, Version: 1})
	if got := b.entitlement(t, ghost); got != "" {
		t.Fatalf("unknown user got entitlement %s", got)
	}

	// A paying account: forged revoke at the largest version.
	paying := uuid.NewString()
	until := time.Now().AddDate(0, 1, 0).UTC().Truncate(time.Second)
	b.issue(t, paying, true, &until, 1)
	b.handle(t, eventtype.UserUpdatedData{UserID: paying, IsPremium: true, PremiumUntil: &until, Version: 1})
	b.handle(t, eventtype.UserUpdatedData{UserID: paying, IsPremium: false, Version: math.MaxInt64})
	b.handle(t, eventtype.UserUpdatedData{UserID: paying, IsPremium: false, Version: 1}) // a replayed version, false claims
	if got := b.entitlement(t, paying); got != `{"version":1,"premium":true,"premium_until":"`+until.Format(time.RFC3339)+`"}` {
		t.Fatalf("paying account after a forged revoke: %s", got)
	}
	if !bytes.Contains(b.logs.Bytes(), []byte("was never issued")) {
		t.Fatal("the never-issued version was not logged")
	}
	// The next real update (a renewal, version 2) applies.
	later := until.AddDate(0, 1, 0)
	b.issue(t, paying, true, &later, 2)
	b.handle(t, eventtype.UserUpdatedData{UserID: paying, IsPremium: true, PremiumUntil: &later, Version: 2})
	if got := b.entitlement(t, paying); got != `{"version":2,"premium":true,"premium_until":"`+later.Format(time.RFC3339)+`"}` {
		t.Fatalf("paying account after the real renewal: %s", got)
	}
}
