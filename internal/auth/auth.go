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
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/server"
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
	// Base holds the host's logger (secrets are never logged), the pool and
	// the Redis client.
	lifecycle.Base
	// Argon2 are the password hashing parameters (DefaultArgon2 when zero).
	Argon2 Argon2Params
	// HTTPClient talks to external providers (http.DefaultClient when nil).
	HTTPClient *http.Client
	// Clock is the service's time (default: the real clock): access-token
	// lifetimes, one-time link expiry, the refresh grace and reuse windows,
	// the rate-limit windows and key rotation. Tests pass a fake one to make
	// time pass at will. Redis's own expiry (idle sessions, reclaiming spent
	// records) and PostgreSQL's now() stay on real time.
	Clock clockwork.Clock

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
	databaseURL  string
	redis        *redis.Options
	rotate       time.Duration // AUTH_KEY_ROTATE
	refreshTTL   time.Duration // AUTH_REFRESH_TTL
	grace        time.Duration // AUTH_REFRESH_GRACE
	reuse        time.Duration // AUTH_REFRESH_REUSE_WINDOW
	seedKey      []byte        // AUTH_KEY_ENCRYPTION_KEY
	oldSeedKeys  [][]byte      // AUTH_KEY_ENCRYPTION_OLD_KEYS
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
		{Method: http.MethodPost, Path: exchangePath},
		{Method: http.MethodGet, Path: "/v1/auth/me"},
		{Method: http.MethodPatch, Path: "/v1/auth/me"},
		{Method: http.MethodGet, Path: "/.well-known/jwks.json"},
		{Method: http.MethodGet, Path: "/.well-known/openid-configuration"},
	}
}

func (s *Service) handler(r server.Route) http.HandlerFunc {
	if r.Method == http.MethodPatch && r.Path == "/v1/auth/me" {
		return s.updateMe
	}
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
	case exchangePath:
		return s.oauthExchange
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
	if s.Argon2 == (Argon2Params{}) {
		s.Argon2 = DefaultArgon2
	}
	if s.Clock == nil {
		s.Clock = clockwork.NewRealClock()
	}
	r := config.NewReader(cfg)
	var st settings
	st.Read(r)
	provs := configureProviders(r, st.baseURL, s.HTTPClient)
	if err := r.Err(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	s.cfg, s.provs = st, provs
	seeds, err := NewSeedCipher(st.seedKey, st.oldSeedKeys...)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	pool, err := s.OpenPool(ctx, st.databaseURL, func(ctx context.Context, p *pgxpool.Pool) error {
		return Migrate(ctx, &postgres.Pool{Pool: p})
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	s.pool = pool
	if err := registerMetrics(s.Metrics); err != nil {
		return fmt.Errorf("auth: metrics: %w", err)
	}
	s.rdb = redis.NewClient(st.redis)
	rdb := s.rdb
	s.Hold("redis", rdb.Close, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("auth: redis ping: %w", err)
	}
	rotate, refreshTTL, grace, reuse := st.rotate, st.refreshTTL, st.grace, st.reuse
	s.keys = &Keyring{Pool: pool.Pool, Seeds: seeds, RotateEvery: rotate, TokenTTL: st.accessTTL, Now: s.Clock.Now}
	if err := s.keys.Ensure(ctx); err != nil {
		return fmt.Errorf("auth: signing keys: %w", err)
	}
	s.sessions = &Sessions{Redis: s.rdb, TTL: refreshTTL, Grace: grace, ReuseWindow: reuse, Now: s.Clock.Now}
	s.limiter = Limiter{Redis: s.rdb, Now: s.Clock.Now}
	s.verifier = &token.Verifier{Keys: s.keys, Issuer: st.issuer, Audience: Audience, Now: s.Clock.Now}
	if s.dummy, err = HashPassword("not a password", s.Argon2); err != nil {
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
	t := s.Clock.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
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
	return s.Base.Stop(ctx)
}

// ConfigKeys lists the settings the service reads (the providers' only
// when their client id is set).
func (s *Service) ConfigKeys() []config.Key {
	return config.KeysOf(func(r *config.Reader) {
		var st settings
		st.Read(r)
		configureProviders(r, "", nil)
	})
}

// Keys exposes the keyring (tests, the admin CLI, benchmarks).
func (s *Service) Keys() *Keyring { return s.keys }

// Verifier verifies this service's access tokens in process.
func (s *Service) Verifier() *token.Verifier { return s.verifier }

// Issuer is the iss of this service's tokens.
func (s *Service) Issuer() string { return s.cfg.issuer }

// Read fills st from r; every problem is recorded on r.
func (st *settings) Read(r *config.Reader) {
	st.databaseURL = r.String(postgres.KeyDatabaseURL)
	if u := r.Secret("REDIS_URL"); !u.IsZero() { // may carry a password
		opt, err := redis.ParseURL(u.Reveal())
		if err != nil {
			r.Fail("REDIS_URL", "not a redis:// URL")
		} else {
			// Fail fast when Redis is down: a login should answer 503 in
			// milliseconds, not after go-redis's default 5 dial attempts × retries.
			opt.DialerRetries = 2
			if !strings.Contains(u.Reveal(), "max_retries") {
				opt.MaxRetries = 1
			}
			st.redis = opt
		}
	}
	st.seedKey, st.oldSeedKeys = readSeedKeys(r)
	st.baseURL = r.URL("PUBLIC_BASE_URL")
	st.issuer = r.StringOr("AUTH_ISSUER", st.baseURL)
	st.secureCookie = strings.HasPrefix(st.baseURL, "https://")
	// Where the emailed reset link points: by default the API itself (a
	// client POSTs the token from it to /v1/auth/password/reset); a web app
	// with a "choose a new password" page sets AUTH_RESET_LINK to its own URL.
	st.resetLink = r.StringOr("AUTH_RESET_LINK", st.baseURL+"/v1/auth/password/reset?token=")
	if st.accessTTL = r.DurationOr("AUTH_ACCESS_TTL", MaxAccessTTL); st.accessTTL > MaxAccessTTL {
		r.Fail("AUTH_ACCESS_TTL", "must be in (0, %s]", MaxAccessTTL)
	}
	st.confirmTTL = r.DurationOr("AUTH_CONFIRM_TTL", 48*time.Hour)
	st.resetTTL = r.DurationOr("AUTH_RESET_TTL", time.Hour)
	st.rotate = r.DurationOr("AUTH_KEY_ROTATE", 24*time.Hour)
	st.refreshTTL = r.DurationOr("AUTH_REFRESH_TTL", 30*24*time.Hour)
	st.grace = r.DurationOr("AUTH_REFRESH_GRACE", 10*time.Second)
	st.reuse = r.DurationOr("AUTH_REFRESH_REUSE_WINDOW", 24*time.Hour)
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
		lim, err := parseLimit(l.name, r.StringOr(l.key, l.def))
		if err != nil {
			r.Fail(l.key, "%w", err)
		}
		*l.dst = lim
	}
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
