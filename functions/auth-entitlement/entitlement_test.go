package authentitlement_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	authentitlement "github.com/overture-music/overture/functions/auth-entitlement"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestHandleDuplicateAndBadEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := map[string]string{"DATABASE_URL": testenv.Postgres(t), "REDIS_URL": testenv.Redis(t)}
	var logs bytes.Buffer
	f := authentitlement.New()
	f.Log = telemetry.NewLogger(&logs, nil)
	if err := f.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(ctx)
	if ok, err := f.Ready(ctx); !ok || err != nil {
		t.Fatalf("not ready: %v", err)
	}
	uid := uuid.NewString()
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetSource("/overture/user")
	ev.SetType(eventtype.UserUpdated)
	_ = ev.SetData(event.ApplicationJSON, eventtype.UserUpdatedData{UserID: uid, IsPremium: true, Version: 7})
	for range 2 {
		if reply, err := f.Handle(ctx, ev); err != nil || reply != nil {
			t.Fatalf("Handle = %v, %v", reply, err)
		}
	}
	opt, _ := redis.ParseURL(cfg["REDIS_URL"])
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	got, err := rdb.Get(ctx, auth.EntitlementKey(uid)).Result()
	if err != nil || got != `{"version":1,"premium":true,"premium_until":null}` {
		t.Fatalf("entitlement key %q %v", got, err)
	}
	// An event with no user can never apply: acknowledged (no retry storm), logged.
	bad := ev.Clone()
	bad.SetID(uuid.NewString())
	_ = bad.SetData(event.ApplicationJSON, map[string]any{"is_premium": true})
	if _, err := f.Handle(ctx, bad); err != nil {
		t.Fatalf("unusable event should be acknowledged, got %v", err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("dropping unusable event")) {
		t.Fatal("unusable event not logged")
	}
}
