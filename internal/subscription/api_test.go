package subscription_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/payment"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const secret = "whsec-test"

type env struct {
	srv  *httptest.Server
	auth *tokentest.Authority
	pool *pgxpool.Pool
	svc  *subscription.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := testenv.Postgres(t)
	auth := tokentest.New(t)
	sb := sandbox.New(sandbox.Config{})
	provider := httptest.NewServer(sb)
	t.Cleanup(func() { provider.Close(); sb.Close() })
	svc := subscription.New()
	if err := svc.Start(ctx, map[string]string{"DATABASE_URL": db, "AUTH_JWKS_URL": auth.JWKSURL(), "AUTH_ISSUER": tokentest.Issuer,
		"PAYMENT_PROVIDER_URL": provider.URL + "/v3", "PAYMENT_SHOP_ID": "sandbox-shop", "PAYMENT_SECRET_KEY": "sandbox-secret", "PAYMENT_WEBHOOK_SECRET": secret}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &env{srv: srv, auth: auth, pool: pool, svc: svc}
}

func (e *env) do(t *testing.T, method, path, tok string, body any, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func (e *env) count(t *testing.T, q string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPurchaseAcceptedWithStatusURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.auth.Token(t, "listener-1", tokentest.Options{})
	code, body, hdr := e.do(t, http.MethodPost, "/v1/subscriptions", tok, map[string]string{"plan": "annual", "payment_method": "tok_success"})
	if code != http.StatusAccepted || body["id"] == "" || body["status_url"] != "/v1/subscriptions/me" || hdr.Get("Location") == "" {
		t.Fatalf("POST = %d %v", code, body)
	}
	if body["amount_minor"].(float64) != 299000 || body["status"] != "pending" {
		t.Fatalf("POST body %v", body)
	}
	code, body, _ = e.do(t, http.MethodGet, "/v1/subscriptions/me", tok, nil)
	sub, _ := body["subscription"].(map[string]any)
	if code != 200 || sub["id"] != sub["id"] || sub["status"] != "pending" || len(body["history"].([]any)) != 1 {
		t.Fatalf("GET me = %d %v", code, body)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox WHERE event_type='music.overture.subscription.requested.v1'`); n != 1 {
		t.Fatalf("%d SubscriptionRequested in the outbox, want 1", n)
	}
}

// Bad input gets a specific problem document and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := e.auth.Token(t, "listener-2", tokentest.Options{})
	expired := e.auth.Token(t, "listener-2", tokentest.Options{TTL: -time.Hour})
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	if code, _, _ := e.do(t, http.MethodPost, "/v1/subscriptions", good, map[string]string{"plan": "monthly"}); code != 202 {
		t.Fatalf("first purchase: %d", code)
	}
	before := e.count(t, `SELECT count(*) FROM subscription`) + e.count(t, `SELECT count(*) FROM outbox`)
	cases := []struct {
		name, method, path, tok string
		body                    any
		hdr                     []string
		status                  int
		slug                    string
	}{
		{"unknown plan", "POST", "/v1/subscriptions", good, map[string]string{"plan": "weekly"}, nil, 422, "validation"},
		{"bad card token", "POST", "/v1/subscriptions", good, map[string]string{"plan": "monthly", "payment_method": "4242 4242"}, nil, 422, "validation"},
		{"not json", "POST", "/v1/subscriptions", good, []byte("plan=monthly"), nil, 400, "bad-request"},
		{"second purchase", "POST", "/v1/subscriptions", good, map[string]string{"plan": "annual"}, nil, 409, "subscription-exists"},
		{"cancel while paying", "DELETE", "/v1/subscriptions/me", good, nil, nil, 409, "purchase-in-progress"},
		{"expired token", "POST", "/v1/subscriptions", expired, map[string]string{"plan": "monthly"}, nil, 401, "invalid-token"},
		{"tampered token", "POST", "/v1/subscriptions", tampered, map[string]string{"plan": "monthly"}, nil, 401, "invalid-token"},
		{"no token", "GET", "/v1/subscriptions/me", "", nil, nil, 401, "invalid-token"},
		{"nothing to show", "GET", "/v1/subscriptions/me", e.auth.Token(t, "nobody", tokentest.Options{}), nil, nil, 404, "no-subscription"},
		{"unsigned webhook", "POST", "/v1/payments/webhook", "", []byte(`{"event":"payment.succeeded","object":{"id":"x"}}`), nil, 401, "invalid-webhook-signature"},
		{"forged webhook", "POST", "/v1/payments/webhook", "", []byte(`{"event":"payment.succeeded","object":{"id":"x"}}`),
			[]string{payment.SignatureHeader, payment.Sign("not-the-secret", []byte(`{"event":"payment.succeeded","object":{"id":"x"}}`), time.Now())}, 401, "invalid-webhook-signature"},
		{"webhook for an unknown payment", "POST", "/v1/payments/webhook", "", []byte(`{"type":"notification","event":"payment.succeeded","object":{"id":"0c1d"}}`),
			[]string{payment.SignatureHeader, payment.Sign(secret, []byte(`{"type":"notification","event":"payment.succeeded","object":{"id":"0c1d"}}`), time.Now())}, 404, "unknown-payment"},
	}
	for _, c := range cases {
		code, body, hdr := e.do(t, c.method, c.path, c.tok, c.body, c.hdr...)
		if code != c.status || body["type"] != "/problems/"+c.slug || body["detail"] == "" || hdr.Get("Content-Type") != problem.ContentType {
			t.Errorf("%s: %d %v (%s), want %d %s", c.name, code, body, hdr.Get("Content-Type"), c.status, c.slug)
		}
	}
	if after := e.count(t, `SELECT count(*) FROM subscription`) + e.count(t, `SELECT count(*) FROM outbox`); after != before {
		t.Fatalf("bad input changed the database: %d rows before, %d after", before, after)
	}
}
