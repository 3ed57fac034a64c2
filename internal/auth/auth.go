// Package auth is Overture's auth service: accounts with email confirmation,
// password login, Google / VK ID / Yandex ID login, short-lived EdDSA access
// tokens and rotating refresh tokens.
//
// Why it is shaped like this: every other service verifies access tokens
// offline against the JWKS (package token), so the tokens are short (≤15 min)
// and carry what those services need (roles, premium and its version). What
// must be revocable lives in Redis as refresh-token families with reuse
// detection. Accounts, signing keys and entitlements are in PostgreSQL because
// they must survive restarts and be shared by replicas; the events that
// announce new accounts and reset links go through the transactional outbox.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/token"
)

// Name is the service name (Knative Service, gateway mount, event source).
const Name = "auth"

// Source is the CloudEvents source of events auth emits.
const Source = "/overture/auth"

// Audience is the aud of every access token.
const Audience = "overture"

// MaxAccessTTL caps the access-token lifetime.
const MaxAccessTTL = 15 * time.Minute

// Service is the auth HTTP service (server.Service).
type Service struct {
	// Log receives structured logs; secrets are never logged. Defaults to
	// JSON on stderr.
	Log *slog.Logger
	// Argon2 are the password hashing parameters (DefaultArgon2 when zero).
	Argon2 Argon2Params
	// HTTPClient talks to external providers (http.DefaultClient when nil).
	HTTPClient *http.Client

	cfg      settings
	pool     *postgres.Pool
	rdb      *redis.Client
	keys     *Keyring
	sessions *Sessions
	limiter  Limiter
	verifier *token.Verifier
	provs    map[string]provider
	mux      *http.ServeMux
	stop     context.CancelFunc
	done     chan struct{}
	dummy    string         // a hash to verify against when an account does not exist
	bg       sync.WaitGroup // work left running after an answer (forgot)
}

type settings struct {
	baseURL      string
	issuer       string
	accessTTL    time.Duration
	confirmTTL   time.Duration
	resetTTL     time.Duration
	loginAcct    Limit
	loginIP      Limit
	refreshAcct  Limit
	refreshIP    Limit
	secureCookie bool
	resetLink    string // the reset URL up to the token
}

// New returns an unstarted service.
func New() *Service {
	s := &Service{}
	s.mux = http.NewServeMux()
	for _, r := range s.Routes() {
		s.mux.HandleFunc(r.Pattern(), s.handler(r))
	}
	return s
}

// Name implements server.Service.
func (s *Service) Name() string { return Name }

// Routes implements server.Service.
func (s *Service) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodPost, Path: "/v1/auth/register"},
		{Method: http.MethodGet, Path: "/v1/auth/confirm"},
		{Method: http.MethodPost, Path: "/v1/auth/login"},
		{Method: http.MethodPost, Path: "/v1/auth/refresh"},
		{Method: http.MethodPost, Path: "/v1/auth/logout"},
		{Method: http.MethodPost, Path: "/v1/auth/logout-all"},
		{Method: http.MethodPost, Path: "/v1/auth/password/forgot"},
		{Method: http.MethodPost, Path: "/v1/auth/password/reset"},
		{Method: http.MethodGet, Path: "/v1/auth/oauth/{provider}/start"},
		{Method: http.MethodGet, Path: "/v1/auth/oauth/{provider}/callback"},
		{Method: http.MethodGet, Path: "/v1/auth/me"},
		{Method: http.MethodGet, Path: "/.well-known/jwks.json"},
		{Method: http.MethodGet, Path: "/.well-known/openid-configuration"},
	}
}

func (s *Service) handler(r server.Route) http.HandlerFunc {
	switch r.Path {
	case "/v1/auth/register":
		return s.register
	case "/v1/auth/confirm":
		return s.confirm
	case "/v1/auth/login":
		return s.login
	case "/v1/auth/refresh":
		return s.refresh
	case "/v1/auth/logout":
		return s.logout
	case "/v1/auth/logout-all":
		return s.logoutAll
	case "/v1/auth/password/forgot":
		return s.forgot
	case "/v1/auth/password/reset":
		return s.reset
	case "/v1/auth/oauth/{provider}/start":
		return s.oauthStart
	case "/v1/auth/oauth/{provider}/callback":
		return s.oauthCallback
	case "/v1/auth/me":
		return s.me
	case "/.well-known/jwks.json":
		return s.jwks
	case "/.well-known/openid-configuration":
		return s.discovery
	}
	panic("auth: no handler for " + r.Path)
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Start connects to PostgreSQL and Redis, migrates, loads or creates the
// signing keys and configures the providers. cfg keys: DATABASE_URL,
// REDIS_URL, PUBLIC_BASE_URL, AUTH_ISSUER, AUTH_ACCESS_TTL, AUTH_REFRESH_TTL,
// AUTH_REFRESH_GRACE, AUTH_REFRESH_REUSE_WINDOW, AUTH_KEY_ROTATE,
// AUTH_CONFIRM_TTL, AUTH_RESET_TTL, AUTH_RESET_LINK, AUTH_LOGIN_LIMIT_ACCOUNT,
// AUTH_LOGIN_LIMIT_IP, AUTH_REFRESH_LIMIT_ACCOUNT, AUTH_REFRESH_LIMIT_IP
// (each "N/duration", e.g. "10/1m"), AUTH_KEY_ENCRYPTION_KEY (required) and
// AUTH_KEY_ENCRYPTION_OLD_KEYS (see seal.go) and the provider keys (see
// providers.go).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	if s.Log == nil {
		s.Log = telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv())
	}
	s.Log = s.Log.With("service", Name)
	if s.Argon2 == (Argon2Params{}) {
		s.Argon2 = DefaultArgon2
	}
	st, err := parseSettings(cfg)
	if err != nil {
		return err
	}
	s.cfg = st
	pool, err := postgres.Open(ctx, cfg["DATABASE_URL"])
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	s.pool = pool
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return err
	}
	if cfg["REDIS_URL"] == "" {
		pool.Close()
		return errors.New("auth: REDIS_URL is not set")
	}
	opt, err := redis.ParseURL(cfg["REDIS_URL"])
	if err != nil {
		pool.Close()
		return fmt.Errorf("auth: parse REDIS_URL: %w", err)
	}
	// Fail fast when Redis is down: a login should answer 503 in
	// milliseconds, not after go-redis's default 5 dial attempts × retries.
	opt.DialerRetries = 2
	if !strings.Contains(cfg["REDIS_URL"], "max_retries") {
		opt.MaxRetries = 1
	}
	s.rdb = redis.NewClient(opt)
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.closeClients()
		return fmt.Errorf("auth: redis ping: %w", err)
	}
	rotate, err := durationOr(cfg, "AUTH_KEY_ROTATE", 24*time.Hour)
	if err != nil {
		s.closeClients()
		return err
	}
	seeds, err := SeedCipherFromConfig(cfg)
	if err != nil {
		s.closeClients()
		return fmt.Errorf("auth: %w", err)
	}
	s.keys = &Keyring{Pool: pool.Pool, Seeds: seeds, RotateEvery: rotate, TokenTTL: st.accessTTL}
	if err := s.keys.Ensure(ctx); err != nil {
		s.closeClients()
		return fmt.Errorf("auth: signing keys: %w", err)
	}
	refreshTTL, err := durationOr(cfg, "AUTH_REFRESH_TTL", 30*24*time.Hour)
	if err != nil {
		s.closeClients()
		return err
	}
	grace, err := durationOr(cfg, "AUTH_REFRESH_GRACE", 10*time.Second)
	if err != nil {
		s.closeClients()
		return err
	}
	reuse, err := durationOr(cfg, "AUTH_REFRESH_REUSE_WINDOW", 24*time.Hour)
	if err != nil {
		s.closeClients()
		return err
	}
	s.sessions = &Sessions{Redis: s.rdb, TTL: refreshTTL, Grace: grace, ReuseWindow: reuse}
	s.limiter = Limiter{Redis: s.rdb}
	s.verifier = &token.Verifier{Keys: s.keys, Issuer: st.issuer, Audience: Audience}
	if s.provs, err = configureProviders(cfg, st.baseURL, s.HTTPClient); err != nil {
		s.closeClients()
		return err
	}
	if s.dummy, err = HashPassword("not a password", s.Argon2); err != nil {
		s.closeClients()
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.done = cancel, make(chan struct{})
	go s.rotateLoop(bg)
	s.Log.Info("auth started", "issuer", st.issuer, "providers", providerNames(s.provs), "argon2", s.Argon2.String())
	return nil
}

// Migrate creates auth's tables (and the outbox and inbox it writes to).
func Migrate(ctx context.Context, pool *postgres.Pool) error {
	if err := outbox.Migrate(ctx, pool.Pool); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := inbox.Migrate(ctx, pool.Pool); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := postgres.Migrate(ctx, pool.Pool, "auth", migrationFS()); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

func (s *Service) rotateLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.keys.Ensure(ctx); err != nil && ctx.Err() == nil {
				s.Log.Warn("signing key rotation check failed", "error", err)
			}
		}
	}
}

// Stop ends the rotation loop and closes the clients.
func (s *Service) Stop(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
		select {
		case <-s.done:
		case <-ctx.Done():
		}
	}
	s.Settle()
	s.closeClients()
	return nil
}

func (s *Service) closeClients() {
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// Ready reports whether PostgreSQL and Redis answer.
func (s *Service) Ready(ctx context.Context) (bool, error) {
	if s.pool == nil || s.rdb == nil {
		return false, nil
	}
	if err := s.pool.Ping(ctx); err != nil {
		return false, err
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return false, err
	}
	return true, nil
}

// Keys exposes the keyring (tests, the admin CLI, benchmarks).
func (s *Service) Keys() *Keyring { return s.keys }

// Verifier verifies this service's access tokens in process.
func (s *Service) Verifier() *token.Verifier { return s.verifier }

// Issuer is the iss of this service's tokens.
func (s *Service) Issuer() string { return s.cfg.issuer }

func parseSettings(cfg map[string]string) (settings, error) {
	var st settings
	st.baseURL = strings.TrimRight(cfg["PUBLIC_BASE_URL"], "/")
	if st.baseURL == "" {
		return st, errors.New("auth: PUBLIC_BASE_URL is not set")
	}
	st.issuer = cfg["AUTH_ISSUER"]
	if st.issuer == "" {
		st.issuer = st.baseURL
	}
	st.secureCookie = strings.HasPrefix(st.baseURL, "https://")
	// Where the emailed reset link points: by default the API itself (a
	// client POSTs the token from it to /v1/auth/password/reset); a web app
	// with a "choose a new password" page sets AUTH_RESET_LINK to its own URL.
	st.resetLink = cfg["AUTH_RESET_LINK"]
	if st.resetLink == "" {
		st.resetLink = st.baseURL + "/v1/auth/password/reset?token="
	}
	var err error
	if st.accessTTL, err = durationOr(cfg, "AUTH_ACCESS_TTL", MaxAccessTTL); err != nil {
		return st, err
	}
	if st.accessTTL <= 0 || st.accessTTL > MaxAccessTTL {
		return st, fmt.Errorf("auth: AUTH_ACCESS_TTL must be in (0, %s]", MaxAccessTTL)
	}
	if st.confirmTTL, err = durationOr(cfg, "AUTH_CONFIRM_TTL", 48*time.Hour); err != nil {
		return st, err
	}
	if st.resetTTL, err = durationOr(cfg, "AUTH_RESET_TTL", time.Hour); err != nil {
		return st, err
	}
	for _, l := range []struct {
		dst  *Limit
		name string
		key  string
		def  string
	}{
		{&st.loginAcct, "login-account", "AUTH_LOGIN_LIMIT_ACCOUNT", "10/5m"},
		{&st.loginIP, "login-ip", "AUTH_LOGIN_LIMIT_IP", "50/5m"},
		{&st.refreshAcct, "refresh-account", "AUTH_REFRESH_LIMIT_ACCOUNT", "60/1m"},
		{&st.refreshIP, "refresh-ip", "AUTH_REFRESH_LIMIT_IP", "300/1m"},
	} {
		v := cfg[l.key]
		if v == "" {
			v = l.def
		}
		lim, err := parseLimit(l.name, v)
		if err != nil {
			return st, fmt.Errorf("auth: %s: %w", l.key, err)
		}
		*l.dst = lim
	}
	return st, nil
}

func parseLimit(name, v string) (Limit, error) {
	n, d, ok := strings.Cut(v, "/")
	if !ok {
		return Limit{}, fmt.Errorf("%q is not N/duration", v)
	}
	max, err := strconv.Atoi(n)
	if err != nil || max < 0 {
		return Limit{}, fmt.Errorf("%q: bad count", v)
	}
	win, err := time.ParseDuration(d)
	if err != nil || win <= 0 {
		return Limit{}, fmt.Errorf("%q: bad window", v)
	}
	return Limit{Name: name, Max: max, Window: win}, nil
}

func durationOr(cfg map[string]string, key string, def time.Duration) (time.Duration, error) {
	v := cfg[key]
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("auth: %s: %w", key, err)
	}
	return d, nil
}
