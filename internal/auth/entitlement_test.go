package auth_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
)

func userUpdated(t *testing.T, id string, d eventtype.UserUpdatedData) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/overture/user")
	e.SetType(eventtype.UserUpdated)
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		t.Fatal(err)
	}
	return e
}

// issue sets the user function's row for uid (app_user), the state
// ApplyUserUpdated applies, as a grant or revoke at version would.
func issue(t *testing.T, pool *pgxpool.Pool, uid string, premium bool, until *time.Time, version int64) {
	t.Helper()
	ctx := context.Background()
	if err := user.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO app_user (user_id, is_premium, premium_until, version) VALUES ($1,$2,$3,$4)
		ON CONFLICT (user_id) DO UPDATE SET is_premium=$2, premium_until=$3, version=$4`, uid, premium, until, version); err != nil {
		t.Fatal(err)
	}
}

// TestEntitlementReachesNextRefresh: UserUpdated delivered twice bumps the
// version once; the next refresh carries premium and the higher ent_ver; the
// Redis key the CDN edge reads follows.
func TestEntitlementReachesNextRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	uid := e.registerConfirmed("prem@example.com", "premium password")
	l := e.login("prem@example.com", "premium password")
	if c := e.claims(l.str("access_token")); c.Premium || c.EntitlementVersion != 0 {
		t.Fatalf("fresh account claims premium=%v ent_ver=%d", c.Premium, c.EntitlementVersion)
	}
	ctx := context.Background()
	until := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	issue(t, e.pool, uid, true, &until, 3)
	ev := userUpdated(t, uuid.NewString(), eventtype.UserUpdatedData{UserID: uid, IsPremium: true, PremiumUntil: &until, Version: 3})
	for i, want := range []bool{true, false} { // the broker delivers twice
		bumped, err := auth.ApplyUserUpdated(ctx, e.pool, e.rdb, ev)
		if err != nil || bumped != want {
			t.Fatalf("delivery %d: bumped=%v err=%v, want bumped=%v", i+1, bumped, err, want)
		}
	}
	// A different event carrying an older user version changes nothing.
	stale := userUpdated(t, uuid.NewString(), eventtype.UserUpdatedData{UserID: uid, IsPremium: false, Version: 2})
	if bumped, err := auth.ApplyUserUpdated(ctx, e.pool, e.rdb, stale); err != nil || bumped {
		t.Fatalf("stale event: bumped=%v err=%v", bumped, err)
	}
	var st auth.EntitlementState
	b, err := e.rdb.Get(ctx, auth.EntitlementKey(uid)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &st)
	if st.Version != 1 || !st.Premium || st.PremiumUntil == nil || !st.PremiumUntil.Equal(until) {
		t.Fatalf("redis entitlement %s", b)
	}

	r := e.refresh(l.str("refresh_token")).want(t, 200, "")
	c := e.claims(r.str("access_token"))
	if !c.Premium || c.EntitlementVersion != 1 || c.PremiumUntil == nil || !c.PremiumUntil.Time.Equal(until) {
		t.Fatalf("after UserUpdated the refresh carries premium=%v ent_ver=%d until=%v", c.Premium, c.EntitlementVersion, c.PremiumUntil)
	}

	// Revocation: a newer event turns premium off and bumps again.
	issue(t, e.pool, uid, false, &until, 4)
	off := userUpdated(t, uuid.NewString(), eventtype.UserUpdatedData{UserID: uid, IsPremium: false, Version: 4})
	if bumped, err := auth.ApplyUserUpdated(ctx, e.pool, e.rdb, off); err != nil || !bumped {
		t.Fatalf("revocation: bumped=%v err=%v", bumped, err)
	}
	c = e.claims(e.refresh(r.str("refresh_token")).want(t, 200, "").str("access_token"))
	if c.Premium || c.EntitlementVersion != 2 {
		t.Fatalf("after revocation premium=%v ent_ver=%d", c.Premium, c.EntitlementVersion)
	}
}

// TestEntitlementRedisHealsOnRedelivery: the commit happened but the Redis
// write was lost (crash); the redelivered duplicate restores the key.
func TestEntitlementRedisHealsOnRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	uid := uuid.NewString()
	issue(t, e.pool, uid, true, nil, 1)
	ev := userUpdated(t, uuid.NewString(), eventtype.UserUpdatedData{UserID: uid, IsPremium: true, Version: 1})
	if _, err := auth.ApplyUserUpdated(ctx, e.pool, e.rdb, ev); err != nil {
		t.Fatal(err)
	}
	e.rdb.Del(ctx, auth.EntitlementKey(uid))
	if bumped, err := auth.ApplyUserUpdated(ctx, e.pool, e.rdb, ev); err != nil || bumped {
		t.Fatalf("redelivery bumped=%v err=%v", bumped, err)
	}
	if b, err := e.rdb.Get(ctx, auth.EntitlementKey(uid)).Bytes(); err != nil || string(b) != `{"version":1,"premium":true,"premium_until":null}` {
		t.Fatalf("redis key after redelivery: %s %v", b, err)
	}
}
