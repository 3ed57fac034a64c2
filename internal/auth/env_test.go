package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testKEK encrypts the signing-key seeds of the suite's services (base64, 32 bytes).
const testKEK = "dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI="

// cheap argon2 parameters keep the suite fast; the bench uses the defaults.
var testArgon = auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one auth service on real PostgreSQL and Redis behind an httptest server.
type env struct {
	t    testing.TB
	svc  *auth.Service
	srv  *httptest.Server
	pool *pgxpool.Pool
	rdb  *redis.Client
	logs *syncBuf
	cfg  map[string]string

	mu      sync.Mutex
	secrets []string // every secret the test saw; none may appear in the logs
}

// newEnv starts the service with extra settings; opts adjust it before it
// starts (a fake Clock, say).
func newEnv(t testing.TB, extra map[string]string, opts ...func(*auth.Service)) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuf{}}
	e.svc = auth.New()
	e.svc.Log = telemetry.NewLogger(e.logs, slogDebug)
	e.svc.Argon2 = testArgon
	for _, o := range opts {
		o(e.svc)
	}
	e.srv = httptest.NewServer(e.svc)
	t.Cleanup(e.srv.Close)
	e.cfg = map[string]string{
		"DATABASE_URL":            testenv.Postgres(t),
		"REDIS_URL":               testenv.Redis(t),
		"PUBLIC_BASE_URL":         e.srv.URL,
		"AUTH_KEY_ENCRYPTION_KEY": testKEK,
	}
	for k, v := range extra {
		e.cfg[k] = v
	}
	ctx := context.Background()
	if err := e.svc.Start(ctx, e.cfg); err != nil {
		t.Fatalf("start auth: %v", err)
	}
	t.Cleanup(func() { _ = e.svc.Stop(context.Background()) })
	var err error
	if e.pool, err = pgxpool.New(ctx, e.cfg["DATABASE_URL"]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	opt, _ := redis.ParseURL(e.cfg["REDIS_URL"])
	e.rdb = redis.NewClient(opt)
	t.Cleanup(func() { _ = e.rdb.Close() })
	t.Cleanup(e.assertNoSecretsLogged)
	return e
}

func (e *env) secret(s ...string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, s...)
	e.mu.Unlock()
}

// assertNoSecretsLogged fails when any password, token, code or key the test
// handled shows up in the service's logs.
func (e *env) assertNoSecretsLogged() {
	logs := e.logs.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a secret (%.6s…) appears in the logs", s)
		}
	}
	for _, marker := range []string{"ort_", "oct_", "opr_", "ost_", "eyJ", "argon2id$"} {
		if strings.Contains(logs, marker) {
			e.t.Errorf("logs contain %q, the mark of a token or hash", marker)
		}
	}
}

type resp struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r resp) str(k string) string { s, _ := r.Body[k].(string); return s }

func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	if r.Status >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		e.t.Errorf("%s %s: error %d is %q, not problem+json", method, path, r.Status, res.Header.Get("Content-Type"))
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		e.secret(r.str(k))
	}
	return r
}

// want asserts the status and, for problems, the problem type slug.
func (r resp) want(t testing.TB, status int, problem string) resp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if problem != "" && r.str("type") != "/problems/"+problem {
		t.Fatalf("problem %q, want %q: %s", r.str("type"), problem, r.Raw)
	}
	return r
}

// outboxData returns the data of the newest outbox event of typ about subject.
func (e *env) outboxData(typ, subject string) map[string]any {
	e.t.Helper()
	var raw []byte
	err := e.pool.QueryRow(context.Background(),
		`SELECT event FROM outbox WHERE event_type = $1 AND event->>'subject' = $2 ORDER BY id DESC LIMIT 1`, typ, subject).Scan(&raw)
	if err != nil {
		return nil
	}
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		e.t.Fatal(err)
	}
	var d map[string]any
	_ = json.Unmarshal(ev.Data, &d)
	return d
}

// registerConfirmed registers and confirms an account, returning its id.
func (e *env) registerConfirmed(email, password string) string {
	e.t.Helper()
	e.secret(password)
	r := e.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "locale": "ru"}).want(e.t, 201, "")
	id := r.str("user_id")
	link := e.outboxData("music.overture.auth.user_registered.v1", id)["confirm_url"].(string)
	e.secret(strings.TrimPrefix(link, e.srv.URL+"/v1/auth/confirm?token="))
	e.do("GET", strings.TrimPrefix(link, e.srv.URL), nil).want(e.t, 200, "")
	return id
}

func (e *env) login(email, password string) resp {
	e.t.Helper()
	return e.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}).want(e.t, 200, "")
}

func (e *env) refresh(rt string) resp {
	e.t.Helper()
	return e.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": rt})
}

// claims verifies an access token through the published JWKS, as other
// services do, and returns its claims.
func (e *env) claims(at string) *token.Claims {
	e.t.Helper()
	v := &token.Verifier{Keys: &token.RemoteKeys{URL: e.srv.URL + "/.well-known/jwks.json"}, Issuer: e.srv.URL, Audience: "overture"}
	c, err := v.Verify(context.Background(), at)
	if err != nil {
		e.t.Fatalf("issued access token does not verify against the JWKS: %v", err)
	}
	return c
}

func header(t *testing.T, jws string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

var _ = time.Second
