package auth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/idp"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// localBundle is auth with `make run`'s local OIDC provider in front of it.
type localBundle struct {
	ts, lts *httptest.Server
	pool    *pgxpool.Pool
	logs    *syncBuf
}

func newLocalBundle(t *testing.T) *localBundle {
	t.Helper()
	var local *idp.Server
	lts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { local.ServeHTTP(w, r) }))
	t.Cleanup(lts.Close)
	svc := auth.New()
	svc.Argon2 = testArgon
	logs := &syncBuf{}
	svc.Log = telemetry.NewLogger(logs, nil)
	ts := httptest.NewServer(svc)
	t.Cleanup(ts.Close)
	users, err := idp.OpenLocalUsers("")
	if err != nil {
		t.Fatal(err)
	}
	users.Argon2 = testArgon
	if local, err = idp.NewLocal(lts.URL, "overture-local", "local-secret", ts.URL, users); err != nil {
		t.Fatal(err)
	}
	db := testenv.Postgres(t)
	cfg := map[string]string{"DATABASE_URL": db, "REDIS_URL": testenv.Redis(t), "PUBLIC_BASE_URL": ts.URL,
		"LOCAL_OIDC_ISSUER": lts.URL, "LOCAL_OIDC_CLIENT_SECRET": "local-secret",
		"AUTH_KEY_ENCRYPTION_KEY": testKEK}
	if err := svc.Start(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	pool, err := pgxpool.New(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &localBundle{ts: ts, lts: lts, pool: pool, logs: logs}
}

// login runs the browser: /v1/auth/oauth/local/start, the provider's page,
// the form filled with fields, and whatever follows. It returns the last
// answer's status and body.
func (b *localBundle) login(t *testing.T, fields url.Values) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(b.ts.URL + "/v1/auth/oauth/local/start")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `<form method="post"`) {
		t.Fatalf("login page: %d %s", res.StatusCode, page)
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`type="hidden" name="([a-z_]+)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	res, err = c.PostForm(res.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(body)
}

// TestLocalProviderLoginPage walks the flow `make run` offers: the local OIDC
// provider's HTML page, a new account there with a password, back to auth
// with our tokens (a new Overture account); then the same account signs in
// again with its password and lands in the same Overture account.
func TestLocalProviderLoginPage(t *testing.T) {
	t.Parallel()
	b := newLocalBundle(t)
	st, body := b.login(t, url.Values{"login_email": {"laptop@example.com"}, "login_password": {"laptop password"}, "action": {"signup"}})
	if st != 200 || !strings.Contains(body, `"access_token"`) {
		t.Fatalf("after signing up at the local IdP: %d %s", st, body)
	}
	id := regexp.MustCompile(`"user_id":"([^"]+)"`).FindStringSubmatch(body)
	st, body = b.login(t, url.Values{"login_email": {"laptop@example.com"}, "login_password": {"laptop password"}, "action": {"login"}})
	if st != 200 || id == nil || !strings.Contains(body, `"user_id":"`+id[1]+`"`) {
		t.Fatalf("signing in again: %d %s, want user %v", st, body, id)
	}
	if strings.Contains(b.logs.String(), "local-secret") || strings.Contains(b.logs.String(), "laptop password") {
		t.Fatal("a secret was logged")
	}
}

// The original attack: at `make run`'s local IdP, type an admin's email and
// get a session for that admin (and a permanent link to the account). Now
// the IdP does not know the email, so it signs nobody in; and signing up
// there with the admin's email creates an IdP account that auth refuses to
// link to the existing Overture account — admin or not.
func TestLocalProviderNeverSignsInAsAnExistingAccount(t *testing.T) {
	t.Parallel()
	b := newLocalBundle(t)
	ctx := t.Context()
	if _, _, err := auth.CreateAdmin(ctx, b.pool, "admin@overture.test", "the admin's password", testArgon); err != nil {
		t.Fatal(err)
	}
	for _, fields := range []url.Values{
		{"login_email": {"admin@overture.test"}},
		{"login_email": {"admin@overture.test"}, "login_password": {"a guess at it"}, "action": {"login"}},
	} {
		st, body := b.login(t, fields)
		if st == 200 && strings.Contains(body, "access_token") || !strings.Contains(body, "Local identity provider") {
			t.Fatalf("typing the admin's email: %d %s", st, body)
		}
	}
	st, body := b.login(t, url.Values{"login_email": {"admin@overture.test"}, "login_password": {"attacker password"}, "action": {"signup"}})
	if st != http.StatusConflict || !strings.Contains(body, "account-exists") || strings.Contains(body, "access_token") {
		t.Fatalf("signing up at the IdP with the admin's email: %d %s, want 409 account-exists", st, body)
	}
	var links int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM auth_identity WHERE provider = 'local'`).Scan(&links); err != nil || links != 0 {
		t.Fatalf("%d local identities linked (%v), want 0", links, err)
	}
	// The same for a listener's confirmed account.
	if _, err := b.pool.Exec(ctx, `INSERT INTO auth_account (id, email, locale, roles, confirmed_at) VALUES (gen_random_uuid(), 'listener@example.com', 'en', '{listener}', now())`); err != nil {
		t.Fatal(err)
	}
	st, body = b.login(t, url.Values{"login_email": {"listener@example.com"}, "login_password": {"attacker password"}, "action": {"signup"}})
	if st != http.StatusConflict || strings.Contains(body, "access_token") {
		t.Fatalf("signing up at the IdP with a listener's email: %d %s, want 409", st, body)
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&lt;", "<", "&gt;", ">", "&#39;", "'").Replace(s)
}
