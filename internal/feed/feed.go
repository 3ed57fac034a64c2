// Package feed is the service that hands listeners the recommendations the
// recompute made ahead of time (issue 14): GET /v1/me/recommendations is one
// primary-key read of bytes stored by internal/recommend/result, answered
// with the stored ETag (If-None-Match → 304) and cacheable by the client, so
// serving costs the same whatever the models cost. A listener with no stored
// result (new, or not reached by the last recompute) gets the cold-start
// fallback: the week's chart without the tracks they already played —
// never an empty page. Nothing here computes a recommendation; see
// docs/recommendations.md.
//
// GET /v1/me/feed is the home feed (home.go): sections with their reasons,
// made from the stored result, the listener's plays, the catalogue (the
// query service's read model, over HTTP) and the charts, with a cold start
// from what a new listener did do (their account's language, their
// searches, their first plays).
package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/token"
)

// Name is the service's name.
const Name = "feed"

// MaxAge is how long a client may reuse a stored result without asking
// (Cache-Control: private): results change at most every recompute.
const MaxAge = 5 * time.Minute

// FallbackMaxAge is the same for the cold-start fallback, which changes with
// the charts and with the listener's first plays.
const FallbackMaxAge = time.Minute

// Config is what the service reads from the cfg map.
type Config struct {
	DatabaseURL string
	JWKSURL     string
	Issuer      string
	// Stats is the statistics store's settings (stats.Open reads them).
	Stats stats.Config
	// QueryURL is the query service's base URL (QUERY_URL, default
	// PUBLIC_BASE_URL): the home feed's cards, artists' tracks and search
	// log. AuthURL is auth's (AUTH_URL, default PUBLIC_BASE_URL): the
	// account's locale.
	QueryURL string
	AuthURL  string
}

// ReadConfig reads DATABASE_URL, the token settings (AUTH_JWKS_URL,
// AUTH_ISSUER, else PUBLIC_BASE_URL) and the statistics store's
// (STATS_BACKEND and its backend's).
func ReadConfig(cfg map[string]string) (Config, error) {
	var c Config
	r := config.NewReader(cfg)
	c.read(r)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("%s: %w", Name, err)
	}
	return c, nil
}

func (c *Config) read(r *config.Reader) {
	c.DatabaseURL = r.String("DATABASE_URL")
	base := strings.TrimRight(r.StringOr("PUBLIC_BASE_URL", ""), "/")
	jwks := ""
	if base != "" {
		jwks = base + "/.well-known/jwks.json"
	}
	c.JWKSURL = r.StringOr("AUTH_JWKS_URL", jwks)
	c.Issuer = r.StringOr("AUTH_ISSUER", base)
	if c.JWKSURL == "" {
		r.Fail("AUTH_JWKS_URL", "is required (or PUBLIC_BASE_URL) to verify listeners' tokens")
	}
	if c.Issuer == "" {
		r.Fail("AUTH_ISSUER", "is required (or PUBLIC_BASE_URL) to verify listeners' tokens")
	}
	c.Stats.Read(r, false)
	c.QueryURL = r.URLOr("QUERY_URL", base)
	c.AuthURL = r.URLOr("AUTH_URL", base)
	if c.QueryURL == "" {
		r.Fail("QUERY_URL", "is required (or PUBLIC_BASE_URL) for the home feed's cards")
	}
	if c.AuthURL == "" {
		r.Fail("AUTH_URL", "is required (or PUBLIC_BASE_URL) for the home feed's cold start")
	}
}

// Service is the feed HTTP service.
type Service struct {
	lifecycle.Base
	// Pool, Stats, Verifier and Log may be set before Start (tests); Start
	// acquires what is missing through the Base.
	Pool     *pgxpool.Pool
	Stats    stats.Store
	Verifier *token.Verifier

	results result.Store
	// similar reads the recompute's neighbour lists (the cold start's
	// first plays).
	similar *artifact.Store
	up      *upstream
	// memo keeps feeds as answered for HomeMaxAge (home.go).
	memo *ttlCache[memo]
	// now is the clock (nil: time.Now).
	now     func() time.Time
	once    sync.Once
	handler http.Handler
}

// New returns an unstarted service.
func New() *Service { return &Service{} }

// ConfigKeys lists the keys ReadConfig and stats.Open read.
func (s *Service) ConfigKeys() []config.Key {
	keys := config.KeysOf(new(Config).read)
	for _, k := range stats.Keys() {
		if !slices.ContainsFunc(keys, func(h config.Key) bool { return h.Name == k.Name }) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Name implements server.Service.
func (s *Service) Name() string { return Name }

// Routes implements server.Service.
func (s *Service) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/v1/me/recommendations"},
		{Method: http.MethodPost, Path: "/v1/me/recommendations/refresh"},
		{Method: http.MethodGet, Path: "/v1/me/recommendations/jobs/{id}"},
		{Method: http.MethodGet, Path: "/v1/me/feed"},
	}
}

// Start opens the database (migrating the results table), the statistics
// store for the fallback's charts (stats.Open on the same database unless
// STATS_BACKEND says otherwise) through the Base (Ready follows both; Stop
// releases them), and the token verifier.
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	s.Begin()
	c, err := ReadConfig(cfg)
	if err != nil {
		return err
	}
	if s.Pool, err = s.UsePool(ctx, s.Pool, c.DatabaseURL, result.Migrate, migrate); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if s.Stats == nil {
		o, err := stats.OpenHeld(ctx, s, cfg, s.Pool)
		if err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		s.Stats = o
	}
	if s.Verifier == nil {
		s.Verifier = &token.Verifier{Keys: &token.RemoteKeys{URL: c.JWKSURL}, Issuer: c.Issuer, Audience: "overture"}
	}
	s.results = result.Store{Pool: s.Pool}
	s.similar = &artifact.Store{Pool: s.Pool}
	s.up = newUpstream(c.QueryURL, c.AuthURL)
	s.memo = newCache[memo](HomeMaxAge, maxMemos)
	if s.now == nil {
		s.now = time.Now
	}
	s.once.Do(func() {
		mux := http.NewServeMux()
		mux.Handle("GET /v1/me/recommendations", s.Verifier.Middleware(s.Log, s.wrap(s.recommendations)))
		s.handleRefresh(mux)
		mux.Handle("GET /v1/me/feed", s.Verifier.Middleware(s.Log, s.wrap(s.home)))
		s.handler = mux
	})
	return nil
}

// ServeHTTP implements server.Service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.handler == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-started", "the feed service is starting"))
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Service) wrap(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return server.Handle(s.Log, "feed", fn)
}

// recommendations is GET /v1/me/recommendations: the stored result, or the
// fallback.
func (s *Service) recommendations(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	res, err := s.results.Get(r.Context(), c.Subject)
	if errors.Is(err, result.ErrNone) {
		if res, err = s.fallback(r.Context(), c.Subject); err != nil {
			return err
		}
		serve(w, r, res, FallbackMaxAge)
		return nil
	}
	if err != nil {
		return err
	}
	serve(w, r, res, MaxAge)
	return nil
}

// serve answers the stored bytes with their validator.
func serve(w http.ResponseWriter, r *http.Request, res result.Result, maxAge time.Duration) {
	h := w.Header()
	h.Set("ETag", res.ETag)
	h.Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(maxAge.Seconds())))
	h.Set("Last-Modified", res.MadeAt.UTC().Format(http.TimeFormat))
	if match(r.Header.Get("If-None-Match"), res.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Body)
}

// match reports whether an If-None-Match header names etag (or is *).
func match(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// FallbackModel names the cold-start fallback in answers.
const FallbackModel = "fallback-charts"

// fallback is the cold-start answer: the newest weekly track chart without
// what the listener already played (their recent plays), with a reason that
// says so. No chart yet (a new platform) still answers a page with the
// section and its reason.
func (s *Service) fallback(ctx context.Context, user string) (result.Result, error) {
	chart, err := s.Stats.Chart(ctx, stats.Weekly, stats.Tracks, time.Time{})
	if err != nil && !errors.Is(err, stats.ErrNoChart) {
		return result.Result{}, err
	}
	recent, err := s.Stats.Recent(ctx, user, 50)
	if err != nil {
		return result.Result{}, err
	}
	played := map[string]bool{}
	for _, l := range recent {
		played[l.TrackID] = true
	}
	tracks := []result.Track{}
	for _, e := range chart.Entries {
		if e.TrackID == "" || played[e.TrackID] {
			continue
		}
		tracks = append(tracks, result.Track{TrackID: e.TrackID, Score: float32(e.Count)})
	}
	reason := "the week's most played tracks: your own recommendations come with your first recompute after you listen"
	if len(recent) > 0 {
		reason = "the week's most played tracks you have not played yet: your own recommendations come with the next recompute"
	}
	version := chart.PeriodStart
	made := chart.ComputedAt
	if made.IsZero() {
		made = time.Unix(0, 0)
	}
	b := result.Body{UserID: user, Model: FallbackModel, Version: version, MadeAt: made,
		Sections: []result.Section{{ID: "charts", Model: FallbackModel, Reason: reason, Tracks: tracks}}}
	// The body names the listener and leaves out what they played, so its
	// hash, the ETag, changes with both.
	return result.New(b)
}
