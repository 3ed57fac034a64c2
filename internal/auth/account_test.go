package auth_test

import (
	"context"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/overture-music/overture/internal/auth"
)

func TestRegisterConfirmLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const pw = "correct horse battery"
	e.secret(pw)

	// Bad input changes nothing.
	e.do("POST", "/v1/auth/register", map[string]string{"email": "not-an-email", "password": "short"}).want(t, 422, "validation")
	var n int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM auth_account`).Scan(&n)
	if n != 0 {
		t.Fatalf("invalid registration stored %d accounts", n)
	}

	r := e.do("POST", "/v1/auth/register", map[string]string{"email": "Ann@Example.com", "password": pw, "locale": "ru"}).want(t, 201, "")
	id := r.str("user_id")
	// Case-insensitive uniqueness.
	e.do("POST", "/v1/auth/register", map[string]string{"email": "ann@example.COM", "password": pw}).want(t, 409, "email-taken")

	// The UserRegistered event is in the outbox, with the confirmation link.
	d := e.outboxData("music.overture.auth.user_registered.v1", id)
	if d == nil {
		t.Fatal("no UserRegistered event in the outbox")
	}
	link, _ := d["confirm_url"].(string)
	if !strings.HasPrefix(link, e.srv.URL+"/v1/auth/confirm?token=oct_") || d["locale"] != "ru" || d["email"] != "Ann@example.com" {
		t.Fatalf("event data %v", d)
	}
	u, _ := url.Parse(link)
	e.secret(u.Query().Get("token"))

	// Login is refused until the email is confirmed, but only with the right password.
	e.do("POST", "/v1/auth/login", map[string]string{"email": "ann@example.com", "password": "wrong password!"}).want(t, 401, "invalid-credentials")
	e.do("POST", "/v1/auth/login", map[string]string{"email": "ann@example.com", "password": pw}).want(t, 403, "email-not-confirmed")
	if !strings.Contains(e.logs.String(), `"problem":"/problems/email-not-confirmed"`) {
		t.Fatal("refused unconfirmed login not logged")
	}

	e.do("GET", u.RequestURI(), nil).want(t, 200, "")
	e.do("GET", u.RequestURI(), nil).want(t, 410, "confirmation-used")
	e.do("GET", "/v1/auth/confirm?token=oct_bogus", nil).want(t, 400, "confirmation-invalid")
	e.do("GET", "/v1/auth/confirm", nil).want(t, 400, "bad-request")

	lr := e.login("ANN@example.com", pw)
	at := lr.str("access_token")
	h := header(t, at)
	if h["typ"] != "at+jwt" || h["alg"] != "EdDSA" || h["kid"] == "" {
		t.Fatalf("access token header %v", h)
	}
	c := e.claims(at)
	if c.Subject != id || !c.HasRole("listener") || c.HasRole("admin") || c.ID == "" || c.Premium || c.EntitlementVersion != 0 {
		t.Fatalf("claims %+v", c)
	}
	if ttl := c.ExpiresAt.Sub(c.IssuedAt.Time); ttl <= 0 || ttl > 15*time.Minute {
		t.Fatalf("access token lifetime %s", ttl)
	}
	me := e.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+at).want(t, 200, "")
	if me.str("user_id") != id || me.Body["confirmed"] != true {
		t.Fatalf("/me %v", me.Body)
	}
	e.do("GET", "/v1/auth/me", nil).want(t, 401, "invalid-token")
}

func TestConfirmationExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.secret("a long password")
	r := e.do("POST", "/v1/auth/register", map[string]string{"email": "exp@example.com", "password": "a long password"}).want(t, 201, "")
	link := e.outboxData("music.overture.auth.user_registered.v1", r.str("user_id"))["confirm_url"].(string)
	u, _ := url.Parse(link)
	e.secret(u.Query().Get("token"))
	if _, err := e.pool.Exec(context.Background(), `UPDATE auth_onetime SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	e.do("GET", u.RequestURI(), nil).want(t, 410, "confirmation-expired")
	e.do("POST", "/v1/auth/login", map[string]string{"email": "exp@example.com", "password": "a long password"}).want(t, 403, "email-not-confirmed")
}

// withClock runs the service on clock.
func withClock(clock clockwork.Clock) func(*auth.Service) {
	return func(s *auth.Service) { s.Clock = clock }
}

// TestRefreshRotationAndReuse: every refresh rotates; a rotated-out token
// whose successor is still current answers that successor again until the
// grace window ends, and after it its replay ends the whole session. The
// grace window passes on a fake clock.
func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, map[string]string{"AUTH_REFRESH_GRACE": "10s"}, withClock(clock))
	e.registerConfirmed("rot@example.com", "rotation password")
	r1 := e.login("rot@example.com", "rotation password").str("refresh_token")
	r2 := e.refresh(r1).want(t, 200, "").str("refresh_token")
	if r2 == r1 || !strings.HasPrefix(r2, "ort_") {
		t.Fatalf("refresh did not rotate: %q", r2)
	}
	r3 := e.refresh(r2).want(t, 200, "").str("refresh_token")
	// Up to the grace window's last millisecond, r2 (rotated out, its
	// successor r3 still current) answers r3 again.
	clock.Advance(10 * time.Second)
	if got := e.refresh(r2).want(t, 200, "").str("refresh_token"); got != r3 {
		t.Fatalf("replay within the grace window answered %.10q, want its successor", got)
	}
	clock.Advance(time.Millisecond) // past the grace window
	// r2 was rotated out: replaying it now revokes the whole family.
	e.refresh(r2).want(t, 401, "refresh-token-reused")
	e.refresh(r3).want(t, 401, "session-revoked")
	e.refresh(r1).want(t, 401, "session-revoked")
	e.refresh("ort_garbage").want(t, 400, "invalid-refresh-token")
	e.refresh("ort_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").want(t, 401, "invalid-refresh-token")
	if !strings.Contains(e.logs.String(), "refresh-token-reused") {
		t.Fatal("reuse was not logged")
	}
}

func TestConcurrentRefreshWithinGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // default grace 10 s
	e.registerConfirmed("tabs@example.com", "two tabs password")
	r1 := e.login("tabs@example.com", "two tabs password").str("refresh_token")
	const n = 8
	got := make([]resp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = e.refresh(r1) }()
	}
	wg.Wait()
	succ := got[0].str("refresh_token")
	for i, r := range got {
		if r.Status != 200 || r.str("refresh_token") != succ {
			t.Fatalf("refresh %d: %d %q (want the same successor for all)", i, r.Status, r.str("refresh_token"))
		}
	}
	// The family is intact: the successor refreshes, and then r1 is a replay.
	r3 := e.refresh(succ).want(t, 200, "").str("refresh_token")
	e.refresh(r1).want(t, 401, "refresh-token-reused")
	e.refresh(r3).want(t, 401, "session-revoked")
}

func TestLogoutAndLogoutAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.registerConfirmed("out@example.com", "logout password")
	a := e.login("out@example.com", "logout password")
	b := e.login("out@example.com", "logout password")
	c := e.login("out@example.com", "logout password")
	e.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": a.str("refresh_token")}).want(t, 204, "")
	e.refresh(a.str("refresh_token")).want(t, 401, "")
	e.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": a.str("refresh_token")}).want(t, 204, "")
	e.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": "nope"}).want(t, 400, "invalid-refresh-token")
	bNext := e.refresh(b.str("refresh_token")).want(t, 200, "").str("refresh_token")

	e.do("POST", "/v1/auth/logout-all", nil).want(t, 401, "invalid-token")
	r := e.do("POST", "/v1/auth/logout-all", nil, "Authorization", "Bearer "+c.str("access_token")).want(t, 200, "")
	if r.Body["sessions_ended"] != float64(2) {
		t.Fatalf("logout-all ended %v sessions, want 2", r.Body["sessions_ended"])
	}
	e.refresh(bNext).want(t, 401, "session-revoked")
	e.refresh(c.str("refresh_token")).want(t, 401, "session-revoked")
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.registerConfirmed("reset@example.com", "the old password")
	old := e.login("reset@example.com", "the old password")

	// Unknown email: the same 202, and nothing is emitted.
	e.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "nobody@example.com"}).want(t, 202, "")
	e.svc.Settle()
	var n int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE event_type LIKE '%password_reset%'`).Scan(&n)
	if n != 0 {
		t.Fatalf("reset for an unknown email emitted %d events", n)
	}
	e.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "RESET@example.com"}).want(t, 202, "")
	e.svc.Settle()
	d := e.outboxData("music.overture.auth.password_reset_requested.v1", id)
	link, _ := d["reset_url"].(string)
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, e.srv.URL+"/v1/auth/password/reset?token=opr_") {
		t.Fatalf("reset event %v", d)
	}
	tok := u.Query().Get("token")
	e.secret(tok, "the new password")

	e.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": "short"}).want(t, 422, "validation")
	e.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": "the new password"}).want(t, 204, "")
	e.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": "another new password"}).want(t, 410, "reset-used")
	e.do("POST", "/v1/auth/login", map[string]string{"email": "reset@example.com", "password": "the old password"}).want(t, 401, "invalid-credentials")
	e.login("reset@example.com", "the new password")
	// A reset ends the sessions opened with the old password.
	e.refresh(old.str("refresh_token")).want(t, 401, "session-revoked")
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("PerAccount", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]string{"AUTH_LOGIN_LIMIT_ACCOUNT": "3/1m", "AUTH_LOGIN_LIMIT_IP": "100/1m"})
		e.registerConfirmed("rl@example.com", "rate limit password")
		// Varying the case of the address does not buy more guesses.
		for i, addr := range []string{"rl@example.com", "RL@example.com", "rL@EXAMPLE.com"} {
			e.do("POST", "/v1/auth/login", map[string]string{"email": addr, "password": "guess number " + string(rune('a'+i))}).want(t, 401, "invalid-credentials")
		}
		r := e.do("POST", "/v1/auth/login", map[string]string{"email": "rl@example.com", "password": "rate limit password"}).want(t, 429, "rate-limited")
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After = %q", ra)
		}
		// Another account from the same address is unaffected.
		e.registerConfirmed("other@example.com", "another password")
		e.login("other@example.com", "another password")
	})
	t.Run("PerAddress", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]string{"AUTH_LOGIN_LIMIT_ACCOUNT": "100/1m", "AUTH_LOGIN_LIMIT_IP": "4/1m"})
		for i := range 4 {
			e.do("POST", "/v1/auth/login", map[string]string{"email": "u" + string(rune('a'+i)) + "@example.com", "password": "whatever pw"}).want(t, 401, "")
		}
		e.do("POST", "/v1/auth/login", map[string]string{"email": "ue@example.com", "password": "whatever pw"}).want(t, 429, "rate-limited")
	})
	t.Run("Refresh", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]string{"AUTH_REFRESH_LIMIT_ACCOUNT": "2/1m"})
		e.registerConfirmed("rr@example.com", "refresh limit pw")
		rt := e.login("rr@example.com", "refresh limit pw").str("refresh_token")
		rt = e.refresh(rt).want(t, 200, "").str("refresh_token")
		rt = e.refresh(rt).want(t, 200, "").str("refresh_token")
		r := e.refresh(rt).want(t, 429, "rate-limited")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
	t.Run("RefreshPerAddress", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]string{"AUTH_REFRESH_LIMIT_IP": "3/1m"})
		for range 3 {
			e.refresh(auth.NewSecret(auth.KindRefresh)).want(t, 401, "invalid-refresh-token")
		}
		e.refresh(auth.NewSecret(auth.KindRefresh)).want(t, 429, "rate-limited")
	})
	t.Run("ThrottledRefreshRotatesNothing", func(t *testing.T) {
		t.Parallel()
		// The fake clock starts as a one-minute window begins (windows are
		// aligned to the epoch).
		clock := clockwork.NewFakeClockAt(time.Now().Truncate(time.Minute))
		e := newEnv(t, map[string]string{"AUTH_REFRESH_LIMIT_ACCOUNT": "1/1m", "AUTH_REFRESH_GRACE": "1ms"}, withClock(clock))
		e.registerConfirmed("thr@example.com", "throttle password")
		rt := e.login("thr@example.com", "throttle password").str("refresh_token")
		rt = e.refresh(rt).want(t, 200, "").str("refresh_token")
		// The window's last millisecond: still refused, retry in (rounded up) 1 s.
		clock.Advance(time.Minute - time.Millisecond)
		if ra := e.refresh(rt).want(t, 429, "rate-limited").Header.Get("Retry-After"); ra != "1" {
			t.Fatalf("Retry-After = %q on the window's last millisecond, want 1", ra)
		}
		// The next window: rt was not rotated by the refused attempt, so it
		// still refreshes (a rotated rt would now be a replay).
		clock.Advance(time.Millisecond)
		e.refresh(rt).want(t, 200, "")
	})
}

// TestRotatedTokensAreForgottenAfterReuseWindow: Redis does not keep every
// rotated token for the whole session; past the reuse window an old token is
// simply unknown (refused) and the family lives on. The window is measured on
// the service's (fake) clock; Redis's expiry of the record, which only
// reclaims memory, is checked by its TTL rather than waited for.
func TestRotatedTokensAreForgottenAfterReuseWindow(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, map[string]string{"AUTH_REFRESH_REUSE_WINDOW": "1h", "AUTH_REFRESH_GRACE": "1ms"}, withClock(clock))
	e.registerConfirmed("mem@example.com", "memory password")
	// Two sessions, rotated at the same moment.
	a1 := e.login("mem@example.com", "memory password").str("refresh_token")
	b1 := e.login("mem@example.com", "memory password").str("refresh_token")
	a2 := e.refresh(a1).want(t, 200, "").str("refresh_token")
	b2 := e.refresh(b1).want(t, 200, "").str("refresh_token")

	// Redis drops a rotated-out record within the reuse window; the current
	// one lives as long as the session.
	pttl := func(tok string) time.Duration {
		t.Helper()
		h, err := auth.ParseSecret(auth.KindRefresh, tok)
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.rdb.PTTL(context.Background(), "auth:rt:"+hex.EncodeToString(h[:])).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := pttl(a1); d <= 0 || d > time.Hour {
		t.Fatalf("rotated-out token kept %s in Redis, want at most the reuse window (1h)", d)
	}
	if d := pttl(a2); d <= time.Hour {
		t.Fatalf("current token kept %s in Redis, want the session's lifetime", d)
	}

	// On the window's last millisecond a replay is still reuse: b's session ends.
	clock.Advance(time.Hour)
	e.refresh(b1).want(t, 401, "refresh-token-reused")
	e.refresh(b2).want(t, 401, "session-revoked")
	// Past it, a1 is just unknown, and a's session lives on.
	clock.Advance(time.Millisecond)
	e.refresh(a1).want(t, 401, "invalid-refresh-token")
	e.refresh(a2).want(t, 200, "")
}
