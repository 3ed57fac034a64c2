// Package listens is the listens service: where listeners' clients submit
// what they played, in the ListenBrainz submit format, and where they read
// their listening statistics back.
//
// POST /v1/listens takes an Overture access token; existing scrobblers use
// ListenBrainz's own endpoints (POST /1/submit-listens, GET
// /1/validate-token) with "Authorization: Token <listen token>", a token the
// listener creates under /v1/me/listen-tokens (kept hashed in table
// listens_token). A submission is validated whole (Parse); an accepted batch
// becomes one ListensSubmitted event, published with the service's own
// identity, and the client is answered only after the broker acknowledged
// it; the stats-writer function stores it. playing_now listens go to Redis
// with a short TTL instead. docs/stats.md describes the path and the rules.
package listens

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/token"
)

// Name is the service's name, and the workload identity it publishes with.
const Name = "listens"

// Source is the CloudEvents source of ListensSubmitted.
const Source = "/overture/listens"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the service's own tables (listens_token).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "listens", migrations)
}

// Config is the service's settings.
type Config struct {
	// DatabaseURL holds the listen tokens (and, with STATS_BACKEND=postgres,
	// the statistics).
	DatabaseURL string
	// Redis keeps the playing_now listens and the charts cache (REDIS_URL).
	Redis *redis.Options
	// MaxSkew is how far in the future listened_at may lie
	// (LISTENS_MAX_SKEW, default 5m): clients' clocks drift.
	MaxSkew time.Duration
	// NowPlayingTTL is how long a playing_now listen is shown when its
	// duration is unknown (LISTENS_NOW_PLAYING_TTL, default 8m); a known
	// duration is used instead, up to 30 minutes.
	NowPlayingTTL time.Duration
	// Token verifies listeners' access tokens (AUTH_JWKS_URL, AUTH_ISSUER,
	// else PUBLIC_BASE_URL).
	Token token.VerifierConfig
	// Stats is the statistics store the read API answers from (STATS_BACKEND
	// and its backend's keys; stats.Open reads them).
	Stats stats.Config
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(postgres.KeyDatabaseURL)
	if u := r.Secret("REDIS_URL"); !u.IsZero() { // may carry a password
		opt, err := redis.ParseURL(u.Reveal())
		if err != nil {
			r.Fail("REDIS_URL", "not a redis:// URL")
		}
		c.Redis = opt
	}
	c.MaxSkew = r.DurationOr("LISTENS_MAX_SKEW", 5*time.Minute)
	c.NowPlayingTTL = r.DurationOr("LISTENS_NOW_PLAYING_TTL", 8*time.Minute)
	c.Token = token.ReadVerifierConfig(r)
	c.Stats.Read(r, false)
}

// Service is the listens HTTP service.
type Service struct {
	lifecycle.Base
	// Pool, Redis, Verifier, Publisher and Stats may be set before Start
	// (tests); Start acquires what is missing through the Base. Publisher
	// otherwise comes from Start's context.
	Pool      *pgxpool.Pool
	Redis     *redis.Client
	Verifier  *token.Verifier
	Publisher function.Publisher
	// Stats is the statistics store the read API answers from (default:
	// stats.Open, PostgreSQL on the service's database).
	Stats stats.Store
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time

	cfg     Config
	tokens  Tokens
	once    sync.Once
	handler http.Handler
	// extra (access token), admin (access token with the admin role) and
	// public (no token) are the read API's routes.
	extra, admin, public map[string]func(http.ResponseWriter, *http.Request) error
}

// New returns an unstarted service.
func New() *Service { return &Service{} }

// Name implements server.Service.
func (s *Service) Name() string { return Name }

// submitRoutes are the ingestion and token routes.
var submitRoutes = []server.Route{
	{Method: http.MethodPost, Path: "/v1/listens"},
	{Method: http.MethodPost, Path: "/1/submit-listens"},
	{Method: http.MethodGet, Path: "/1/validate-token"},
	{Method: http.MethodPost, Path: "/v1/me/listen-tokens"},
	{Method: http.MethodGet, Path: "/v1/me/listen-tokens"},
	{Method: http.MethodDelete, Path: "/v1/me/listen-tokens/{id}"},
	{Method: http.MethodGet, Path: "/v1/me/now-playing"},
}

// Routes implements server.Service.
func (s *Service) Routes() []server.Route {
	return slices.Concat(submitRoutes, readRoutes, dashboardRoutes)
}

// ConfigKeys lists the settings the service reads (Config's, and every
// key stats.Open may read).
func (s *Service) ConfigKeys() []config.Key {
	keys := config.KeysFor[Config]()
	for _, k := range stats.Keys() {
		if !slices.ContainsFunc(keys, func(h config.Key) bool { return h.Name == k.Name }) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Start reads Config, opens the database (migrating the service's tables),
// Redis and the statistics store through the Base (Ready follows all three;
// Stop releases them), and takes the publisher bound to the service's
// identity from ctx (the platform puts it there; standalone, `overture
// serve listens` posts to K_SINK).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	s.Begin()
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	s.cfg = c
	if s.Publisher == nil {
		if s.Publisher = function.PublisherFrom(ctx); s.Publisher == nil {
			return errors.New(Name + ": no publisher: run it in the platform, or set K_SINK")
		}
	}
	if s.Pool, err = s.UsePool(ctx, s.Pool, c.DatabaseURL, Migrate); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if s.Redis == nil {
		rdb := redis.NewClient(c.Redis)
		s.Hold("redis", rdb.Close, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
		s.Redis = rdb
	}
	if s.Stats == nil {
		// The stats-writer owns and migrates the same tables; migrating
		// here too lets either start first.
		o, err := stats.OpenHeld(ctx, s, cfg, s.Pool)
		if err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		s.Stats = o
	}
	if s.Verifier == nil {
		s.Verifier = c.Token.Verifier()
	}
	s.tokens = Tokens{Pool: s.Pool}
	s.readHandlers()
	s.build()
	return nil
}

// ServeHTTP implements server.Service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.handler == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-started", "the listens service is starting"))
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// build mounts the routes: /1/... authenticate with listen tokens, the
// rest with access tokens.
func (s *Service) build() {
	s.once.Do(func() {
		mux := http.NewServeMux()
		bearer := map[string]func(http.ResponseWriter, *http.Request) error{
			"POST /v1/listens":                 s.submitBearer,
			"POST /v1/me/listen-tokens":        s.createToken,
			"GET /v1/me/listen-tokens":         s.listTokens,
			"DELETE /v1/me/listen-tokens/{id}": s.revokeToken,
			"GET /v1/me/now-playing":           s.nowPlaying,
		}
		for k, v := range s.extra {
			bearer[k] = v
		}
		listenToken := map[string]func(http.ResponseWriter, *http.Request) error{
			"POST /1/submit-listens": s.submitToken,
			"GET /1/validate-token":  s.validateToken,
		}
		for k, v := range s.public {
			listenToken[k] = v
		}
		for _, rt := range s.Routes() {
			if fn, ok := bearer[rt.Pattern()]; ok {
				mux.Handle(rt.Pattern(), s.Verifier.Middleware(s.Log, s.wrap(fn)))
			} else if fn, ok := s.admin[rt.Pattern()]; ok {
				mux.Handle(rt.Pattern(), s.Verifier.Middleware(s.Log, token.RequireRole(token.RoleAdmin, s.wrap(fn))))
			} else if fn, ok := listenToken[rt.Pattern()]; ok {
				mux.Handle(rt.Pattern(), s.wrap(listenBrainzErrors(fn)))
			} else {
				panic("listens: route without a handler: " + rt.Pattern())
			}
		}
		s.handler = mux
	})
}

func (s *Service) wrap(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return server.Handle(s.Log, "listens", fn)
}

// listenBrainzErrors gives the problems of ListenBrainz's own endpoints
// ListenBrainz's error members too, "code" (the status) and "error" (the
// detail): ListenBrainz clients show "error" to their user (liblistenbrainz
// raises it as the exception's message), so a refused listen says why there.
func listenBrainzErrors(fn func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := fn(w, r)
		var p *problem.Problem
		if err == nil || !errors.As(err, &p) {
			return err
		}
		q := *p
		q.Extra = maps.Clone(p.Extra)
		if q.Extra == nil {
			q.Extra = map[string]any{}
		}
		q.Extra["code"], q.Extra["error"] = p.Status, cmp.Or(p.Detail, p.Title)
		return &q
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads a submission, refusing one larger than any valid batch.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		p := problem.New(http.StatusBadRequest, "invalid-listens", fmt.Sprintf("payload: the submission is larger than %d bytes (%d listens of at most %d bytes)", maxBody, MaxListens, MaxListenBytes))
		p.Extra = map[string]any{"errors": map[string]string{"payload": "too large"}}
		return nil, p
	}
	if err != nil {
		return nil, problem.BadRequest("read the submission: " + err.Error())
	}
	return body, nil
}

// submitBearer is POST /v1/listens (Overture's player, access token).
func (s *Service) submitBearer(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	return s.submit(w, r, c.Subject, c.IsPremium(s.now()), "overture")
}

// submitToken is ListenBrainz's POST /1/submit-listens.
func (s *Service) submitToken(w http.ResponseWriter, r *http.Request) error {
	user, err := s.listenUser(r)
	if err != nil {
		return err
	}
	return s.submit(w, r, user, false, "listenbrainz")
}

// listenUser authenticates "Authorization: Token <listen token>".
func (s *Service) listenUser(r *http.Request) (string, error) {
	tok := listenToken(r)
	if tok == "" {
		return "", problem.New(http.StatusUnauthorized, "invalid-token", "send your listen token as \"Authorization: Token <token>\" (create one under /v1/me/listen-tokens)")
	}
	user, err := s.tokens.User(r.Context(), tok)
	if errors.Is(err, ErrNoToken) {
		s.Log.WarnContext(r.Context(), "listen token rejected", "reason", "unknown or revoked", "remote", r.RemoteAddr)
		return "", problem.New(http.StatusUnauthorized, "invalid-token", "the listen token is unknown or revoked")
	}
	return user, err
}

func listenToken(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) > 6 && strings.EqualFold(h[:6], "token ") {
		return strings.TrimSpace(h[6:])
	}
	return ""
}

// submit validates, then publishes one event (single, import) or keeps the
// playing_now listen in Redis. The answer is ListenBrainz's {"status": "ok"}.
func (s *Service) submit(w http.ResponseWriter, r *http.Request, user string, premium bool, client string) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	sub, err := Parse(body, user, s.now(), s.cfg.MaxSkew)
	if err != nil {
		return err
	}
	for i := range sub.Listens {
		sub.Listens[i].Premium = premium
		sub.Listens[i].Client = cmp.Or(sub.Listens[i].Client, client)
	}
	if sub.ListenType == TypePlayingNow {
		if err := s.setNowPlaying(r.Context(), user, sub.Listens[0]); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}
	e, err := BatchEvent(user, sub)
	if err != nil {
		return err
	}
	if err := s.Publisher.Publish(r.Context(), e); err != nil {
		s.Log.ErrorContext(r.Context(), "publish listens", "listens", len(sub.Listens), "error", err)
		return problem.New(http.StatusServiceUnavailable, "not-stored", "the listens could not be handed to the broker; nothing was stored, submit them again")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// BatchEvent is the ListensSubmitted event of an accepted submission.
func BatchEvent(user string, sub *Submission) (event.Event, error) {
	d := eventtype.ListensData{BatchID: BatchID(user, sub.Listens), UserID: user, ListenType: sub.ListenType, Listens: sub.Listens}
	e := event.New()
	e.SetID(d.BatchID)
	e.SetType(eventtype.ListensSubmitted)
	e.SetSource(Source)
	e.SetSubject(user)
	e.SetTime(time.Now())
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		return e, fmt.Errorf("encode %s: %w", eventtype.ListensSubmitted, err)
	}
	return e, nil
}

// validateToken is ListenBrainz's GET /1/validate-token: 200 with valid
// true or false (as ListenBrainz answers), 400 without a token.
func (s *Service) validateToken(w http.ResponseWriter, r *http.Request) error {
	tok := listenToken(r)
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		return problem.New(http.StatusBadRequest, "invalid-token", "You need to provide an Authorization token.")
	}
	user, err := s.tokens.User(r.Context(), tok)
	if errors.Is(err, ErrNoToken) {
		writeJSON(w, http.StatusOK, map[string]any{"code": 200, "message": "Token invalid.", "valid": false})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": 200, "message": "Token valid.", "valid": true, "user_name": user})
	return nil
}

type createTokenRequest struct {
	Name string `json:"name"`
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	var req createTokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return problem.BadRequest("the body is not {\"name\": \"…\"}: " + err.Error())
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		req.Name = "scrobbler"
	}
	if len(req.Name) > 100 {
		return problem.Validation(map[string]string{"name": "at most 100 bytes"})
	}
	tok, info, err := s.tokens.Create(r.Context(), c.Subject, req.Name)
	if errors.Is(err, ErrTooManyTokens) {
		return problem.New(http.StatusConflict, "too-many-tokens", fmt.Sprintf("you hold %d listen tokens; revoke one first", MaxTokens))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		TokenInfo
		Token string `json:"token"`
	}{info, tok})
	return nil
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	list, err := s.tokens.List(r.Context(), c.Subject)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
	return nil
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	err := s.tokens.Revoke(r.Context(), c.Subject, r.PathValue("id"))
	if errors.Is(err, ErrNoToken) {
		return problem.New(http.StatusNotFound, "not-found", "you have no live listen token with this id")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// NowPlaying is what GET /v1/me/now-playing answers.
type NowPlaying struct {
	ArtistName  string    `json:"artist_name"`
	TrackName   string    `json:"track_name"`
	ReleaseName string    `json:"release_name,omitempty"`
	TrackID     string    `json:"track_id,omitempty"`
	DurationMS  int64     `json:"duration_ms,omitempty"`
	Since       time.Time `json:"since"`
}

func nowPlayingKey(user string) string { return "listens:now:" + user }

func (s *Service) setNowPlaying(ctx context.Context, user string, l eventtype.Listen) error {
	ttl := s.cfg.NowPlayingTTL
	if l.DurationMS > 0 {
		ttl = min(time.Duration(l.DurationMS)*time.Millisecond, 30*time.Minute)
	}
	b, err := json.Marshal(NowPlaying{ArtistName: l.ArtistName, TrackName: l.TrackName, ReleaseName: l.ReleaseName,
		TrackID: l.TrackID, DurationMS: l.DurationMS, Since: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("encode now playing: %w", err)
	}
	if err := s.Redis.Set(ctx, nowPlayingKey(user), b, ttl).Err(); err != nil {
		return fmt.Errorf("store now playing: %w", err)
	}
	return nil
}

// nowPlaying answers {"playing": {...}} or {"playing": null}.
func (s *Service) nowPlaying(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	b, err := s.Redis.Get(r.Context(), nowPlayingKey(c.Subject)).Bytes()
	if errors.Is(err, redis.Nil) {
		writeJSON(w, http.StatusOK, map[string]any{"playing": nil})
		return nil
	}
	if err != nil {
		return fmt.Errorf("read now playing: %w", err)
	}
	var np NowPlaying
	if err := json.Unmarshal(b, &np); err != nil {
		return fmt.Errorf("decode now playing: %w", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"playing": np})
	return nil
}
