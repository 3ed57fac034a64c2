package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/server"
)

// postRaw sends body as it is (no encoding) with hdr to base+path.
func postRaw(t *testing.T, c *http.Client, base, path, body string, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

var jsonType = map[string]string{"Content-Type": "application/json"}

// The attack: auth parsed any body as JSON whatever its type, ignored members
// it did not know and anything after the object. Now every handler's body
// reader refuses them, and a refused request changes nothing.
func TestAuthBodiesAreStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	reg := `{"email":"strict@example.com","password":"strict password"}`
	for _, tt := range []struct {
		name, path, body string
		hdr              map[string]string
		status           int
		mention          string
	}{
		{"FormType", "/v1/auth/register", reg, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"TextPlain", "/v1/auth/login", reg, map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"NoType", "/v1/auth/password/forgot", `{"email":"strict@example.com"}`, nil, 415, "application/json"},
		{"UnknownField", "/v1/auth/register", `{"email":"strict@example.com","password":"strict password","roles":["admin"]}`, jsonType, 400, `"roles"`},
		{"TrailingObject", "/v1/auth/register", reg + `{"email":"other@example.com"}`, jsonType, 400, "nothing after"},
		{"TrailingGarbage", "/v1/auth/login", reg + ` x`, jsonType, 400, "nothing after"},
		{"Oversized", "/v1/auth/register", `{"email":"` + strings.Repeat("a", 70<<10) + `"}`, jsonType, 400, "cut short"},
	} {
		r := postRaw(t, http.DefaultClient, e.srv.URL, tt.path, tt.body, tt.hdr)
		if r.Status != tt.status || !strings.Contains(r.str("detail"), tt.mention) {
			t.Errorf("%s: %d %s; want %d naming %s", tt.name, r.Status, r.Raw, tt.status, tt.mention)
		}
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM auth_account`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused bodies created %d accounts (%v)", n, err)
	}
	// The same body with its type and nothing else is accepted.
	postRaw(t, http.DefaultClient, e.srv.URL, "/v1/auth/register", reg, map[string]string{"Content-Type": "application/json; charset=utf-8"}).want(t, 201, "")
}

// The attack: /password/reset hashed the new password (argon2, the costliest
// thing auth does) before looking at the token, with no limit, so anyone
// could burn auth's CPU with made-up tokens. Now a made-up, used or expired
// token is refused without a hash, and a client is throttled.
//
// Not parallel: it counts the package's argon2 derivations, and Go runs the
// parallel tests only after the sequential ones, so nothing else hashes while
// it counts.
func TestResetChecksTheTokenBeforeHashing(t *testing.T) {
	e := newEnv(t, map[string]string{"AUTH_LOGIN_LIMIT_IP": "5/1m"})
	before := testutil.ToFloat64(auth.PasswordHashes())
	for i, tok := range []string{"", "opr_not-a-token", "opr_" + strings.Repeat("A", 43), "ort_" + strings.Repeat("B", 43), "guess"} {
		r := e.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": "a fine new password"})
		r.want(t, 400, "reset-invalid")
		if got := testutil.ToFloat64(auth.PasswordHashes()); got != before {
			t.Fatalf("made-up token %d cost %v argon2 derivations", i, got-before)
		}
	}
	// The sixth attempt from this client within the window is throttled.
	r := e.do("POST", "/v1/auth/password/reset", map[string]string{"token": "opr_x", "password": "a fine new password"}).want(t, 429, "rate-limited")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	if got := testutil.ToFloat64(auth.PasswordHashes()); got != before {
		t.Fatalf("refused resets cost %v argon2 derivations", got-before)
	}
}

// The attack: forgot-password answered an existing address only after a
// transaction that wrote a link and an event, an unknown one at once, so the
// answer's timing told which addresses have accounts. Now neither answer
// waits for the lookup. Shown without a clock: while the table the link goes
// into is locked (the existing-account path cannot finish its work), both
// addresses are still answered; the link is written once the lock goes.
func TestForgotAnswersBeforeLookingUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.registerConfirmed("known@example.com", "known password")
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE auth_onetime IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	var answers []string
	for _, email := range []string{"known@example.com", "unknown@example.com"} {
		r := postRaw(t, c, e.srv.URL, "/v1/auth/password/forgot", `{"email":"`+email+`"}`, jsonType)
		if r.Status != 202 {
			t.Fatalf("forgot %s: %d %s", email, r.Status, r.Raw)
		}
		answers = append(answers, r.Raw)
	}
	if answers[0] != answers[1] {
		t.Fatalf("different answers: %q vs %q", answers[0], answers[1])
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc.Settle()
	if d := e.outboxData("music.overture.auth.password_reset_requested.v1", id); d["reset_url"] == nil {
		t.Fatal("the existing account got no reset link after the lock went")
	}
	e.secret(strings.TrimPrefix(e.outboxData("music.overture.auth.password_reset_requested.v1", id)["reset_url"].(string), e.srv.URL+"/v1/auth/password/reset?token="))
}

// The attack: behind a proxy (Knative's activator and queue-proxy), every
// login arrived from the proxy's address, so one client's failed logins
// locked every user out. Now the per-address limit keys on the client a
// trusted proxy names, and a header from anyone else is ignored.
func TestLoginLimitKeysOnTheForwardedClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"AUTH_LOGIN_LIMIT_IP": "3/1m", "AUTH_LOGIN_LIMIT_ACCOUNT": "100/1m"})
	e.registerConfirmed("victim@example.com", "victim password")
	behind := func(trusted ...netip.Prefix) string {
		srv := httptest.NewServer(server.Guard{TrustedProxies: trusted}.Wrap(e.svc))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	login := func(base, from, password string) resp {
		hdr := map[string]string{"Content-Type": "application/json", "X-Forwarded-For": from}
		return postRaw(t, http.DefaultClient, base, "/v1/auth/login", `{"email":"victim@example.com","password":"`+password+`"}`, hdr)
	}
	proxy := behind(netip.MustParsePrefix("127.0.0.0/8"))
	for range 3 {
		login(proxy, "198.51.100.1", "wrong password").want(t, 401, "invalid-credentials")
	}
	login(proxy, "198.51.100.1", "wrong password").want(t, 429, "rate-limited")
	// Another client behind the same proxy is not locked out.
	login(proxy, "198.51.100.2", "victim password").want(t, 200, "")

	// Without a trusted proxy the header is the client's say-so: changing it
	// buys no more attempts.
	direct := behind()
	for i := range 3 {
		login(direct, "203.0.113."+string(rune('1'+i)), "wrong password").want(t, 401, "invalid-credentials")
	}
	login(direct, "203.0.113.9", "wrong password").want(t, 429, "rate-limited")
}
