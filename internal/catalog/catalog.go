// Package catalog is the write side of Overture's catalog (artists, albums,
// tracks, genres): the PostgreSQL schema every catalog read model is rebuilt
// from, and the admin HTTP API ("catalog-admin") that changes it and reads
// it back, drafts included (the public read APIs show published tracks only).
//
// The write model is the truth. Each admin write validates its input, changes
// rows and writes its domain event into the outbox in one transaction, so that
// the event exists if and only if the change does; CDC (cdc/) then carries
// both the event and the row changes into the broker, where the search indexer
// and the CDN functions pick them up. Admins editing rows directly in SQL are
// covered too: CDC sees those row changes in the WAL, although no domain event
// is written for them.
//
// Every write answers X-Consistency-Token: the WAL position after its commit
// (internal/lsn), which a reader passes as ?after= to wait for the read model
// to catch up. docs/catalog.md describes the model and the API.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// Name is the service name.
const Name = "catalog-admin"

// Source is the CloudEvents source of the domain events this service writes.
const Source = "/overture/" + Name

// HeaderConsistencyToken carries the WAL position after a write's commit.
const HeaderConsistencyToken = "X-Consistency-Token"

// Service is the admin API: the writes, and the reads the admin console
// edits from. Create it with New and Start it.
type Service struct {
	lifecycle.Base
	// Pool and Verifier may be set before Start (tests); Start fills in
	// what is missing from its configuration.
	Pool     *pgxpool.Pool
	Verifier *token.Verifier

	once    sync.Once
	handler http.Handler
}

// New returns an unstarted service.
func New() *Service { return &Service{} }

// Name implements server.Service.
func (s *Service) Name() string { return Name }

var routes = []server.Route{
	{Method: http.MethodGet, Path: "/v1/admin/tracks"},
	{Method: http.MethodGet, Path: "/v1/admin/tracks/{id}"},
	{Method: http.MethodGet, Path: "/v1/admin/albums/{id}"},
	{Method: http.MethodGet, Path: "/v1/admin/artists/{id}"},
	{Method: http.MethodPost, Path: "/v1/admin/artists"},
	{Method: http.MethodPatch, Path: "/v1/admin/artists/{id}"},
	{Method: http.MethodDelete, Path: "/v1/admin/artists/{id}"},
	{Method: http.MethodPost, Path: "/v1/admin/albums"},
	{Method: http.MethodPatch, Path: "/v1/admin/albums/{id}"},
	{Method: http.MethodDelete, Path: "/v1/admin/albums/{id}"},
	{Method: http.MethodPost, Path: "/v1/admin/tracks"},
	{Method: http.MethodPatch, Path: "/v1/admin/tracks/{id}"},
	{Method: http.MethodDelete, Path: "/v1/admin/tracks/{id}"},
	{Method: http.MethodPost, Path: "/v1/admin/tracks/{id}/publish"},
	{Method: http.MethodPost, Path: "/v1/admin/tracks/{id}/unpublish"},
	{Method: http.MethodPut, Path: "/v1/admin/tracks/{id}/renditions"},
	{Method: http.MethodPut, Path: "/v1/admin/genres/{id}"},
}

// Routes implements server.Service.
func (s *Service) Routes() []server.Route { return append([]server.Route(nil), routes...) }

// Config is the service's settings: DATABASE_URL and the token settings
// (AUTH_JWKS_URL, default PUBLIC_BASE_URL/.well-known/jwks.json;
// AUTH_ISSUER, default PUBLIC_BASE_URL).
type Config struct {
	DatabaseURL string
	Token       token.VerifierConfig
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(postgres.KeyDatabaseURL)
	c.Token = token.ReadVerifierConfig(r)
}

// ConfigKeys lists the settings the service reads.
func (s *Service) ConfigKeys() []config.Key { return config.KeysFor[Config]() }

// Start reads Config, migrates the catalog and outbox tables and sets up
// token verification (audience "overture"; the admin role is required).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if s.Pool, err = s.UsePool(ctx, s.Pool, c.DatabaseURL, outbox.Migrate, Migrate); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if s.Verifier == nil {
		s.Verifier = c.Token.Verifier()
	}
	s.build()
	return nil
}

// Ready reports whether the database answers.
func (s *Service) Ready(ctx context.Context) (bool, error) {
	if s.Pool == nil {
		return false, errors.New("catalog: not started")
	}
	if err := s.Pool.Ping(ctx); err != nil {
		return false, fmt.Errorf("catalog: database: %w", err)
	}
	return true, nil
}

// ServeHTTP implements server.Service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.handler == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-started", "the catalog admin API is starting"))
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Service) build() {
	s.once.Do(func() {
		mux := http.NewServeMux()
		h := map[string]func(http.ResponseWriter, *http.Request) error{
			"GET /v1/admin/tracks":                 s.listTracks,
			"GET /v1/admin/tracks/{id}":            s.getTrack,
			"GET /v1/admin/albums/{id}":            getRow(albumEntity, s),
			"GET /v1/admin/artists/{id}":           getRow(artistEntity, s),
			"POST /v1/admin/artists":               artistEntity.create(s),
			"PATCH /v1/admin/artists/{id}":         artistEntity.update(s),
			"DELETE /v1/admin/artists/{id}":        artistEntity.remove(s),
			"POST /v1/admin/albums":                albumEntity.create(s),
			"PATCH /v1/admin/albums/{id}":          albumEntity.update(s),
			"DELETE /v1/admin/albums/{id}":         albumEntity.remove(s),
			"POST /v1/admin/tracks":                s.createTrack,
			"PATCH /v1/admin/tracks/{id}":          s.updateTrack,
			"DELETE /v1/admin/tracks/{id}":         s.deleteTrack,
			"POST /v1/admin/tracks/{id}/publish":   s.publishTrack,
			"POST /v1/admin/tracks/{id}/unpublish": s.unpublishTrack,
			"PUT /v1/admin/tracks/{id}/renditions": s.replaceRenditions,
			"PUT /v1/admin/genres/{id}":            s.putGenre,
		}
		for _, rt := range routes {
			mux.Handle(rt.Pattern(), server.Handle(s.Log, "catalog", h[rt.Pattern()]))
		}
		mux.HandleFunc("/v1/admin/", func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no admin catalog endpoint "+r.Method+" "+r.URL.Path))
		})
		s.handler = s.Verifier.Middleware(s.Log, token.RequireRole(token.RoleAdmin, mux))
	})
}
