package auth_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/testenv"
)

// TestRedisOutage: while Redis is down, logins and refreshes fail with a
// problem (nothing half-done, nothing leaked), access tokens keep verifying
// (they are stateless), and once Redis is back the same sessions continue.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(testenv.Dir(), "outage-redis-"+time.Now().Format("150405.000000"))
	r, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: dir, Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(5 * time.Second) })
	e := newEnv(t, map[string]string{"REDIS_URL": r.URL(0)})
	e.registerConfirmed("outage@example.com", "outage password")
	l := e.login("outage@example.com", "outage password")

	if err := r.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/v1/auth/login", map[string]string{"email": "outage@example.com", "password": "outage password"}).want(t, 503, "unavailable")
	e.refresh(l.str("refresh_token")).want(t, 500, "internal")
	e.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+l.str("access_token")).want(t, 200, "")
	if ok, _ := e.svc.Ready(ctx); ok {
		t.Fatal("ready while Redis is down")
	}

	r2, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: dir, Port: r.Port, Persist: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r2.Stop(5 * time.Second) })
	testenv.WaitFor(t, 5*time.Minute, "readiness after Redis came back", func() bool {
		ok, _ := e.svc.Ready(ctx)
		return ok
	})
	// The session survived the outage and the failed refresh rotated nothing.
	next := e.refresh(l.str("refresh_token")).want(t, 200, "").str("refresh_token")
	e.refresh(next).want(t, 200, "")
}
