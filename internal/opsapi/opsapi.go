// Package opsapi is the admin HTTP API of the dead-letter queue (service
// "ops"): list the dead letters the `dead-letter` sink stored, show one with
// its data, re-drive one or a selection, and discard one. The admin console's
// page /admin/dead-letters is built on it; `overture events dlq` remains the
// operator's command line.
//
// # Why a service of its own
//
// The dead letters live in the `dead_letter` table of the platform's
// PostgreSQL (functions/deadletter, owner "deadletter"), which the sink
// writes on both hosts: in `overture dev` and on Knative, where the broker is
// Kafka and its dead-letter sink is the same function. So the API needs only
// DATABASE_URL and the token settings every admin API reads — nothing of the
// broker itself. A function cannot serve HTTP routes, the broker is not a
// service on Knative, and none of the existing admin services
// (catalog-admin, ingest-admin) owns events; a small service keeps the
// dead-letter power (re-publishing any stored fact) out of them.
//
// # How a re-drive reaches the broker
//
// A re-drive writes the original event (the knativeerror* extensions
// removed, same id and source) into the transactional outbox in the same
// transaction that marks the dead letter re-driven: it is enqueued exactly
// once (a second re-drive finds it re-driven and says so), and the outbox
// relay (cdc/, or the polling relay) publishes it with its own identity, which
// EventPolicy `cdc` already allows for every outbox type. This service
// therefore needs no EventPolicy of its own and gains no power it did not
// have: write access to the outbox is the power to publish (docs/security.md),
// and the service already shares the producers' database. The event goes
// through the broker again, so every trigger that wants it sees it again;
// consumers are idempotent (internal/inbox).
//
// Types that are not published through the outbox (listens.submitted,
// ingest.object_created, PingSource ticks, types the catalog does not know)
// are refused with 409 not-redrivable: the relay's policy does not allow
// them, and a refused outbox row would stall the relay behind it. Those are
// re-driven with `overture events dlq redrive` and their producer's token.
package opsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// Name is the service name (its Knative Service and ServiceAccount).
const Name = "ops"

// Service is the dead-letter admin API. Create it with New and Start it.
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
	{Method: http.MethodGet, Path: "/v1/admin/dead-letters"},
	{Method: http.MethodPost, Path: "/v1/admin/dead-letters/redrive"},
	{Method: http.MethodGet, Path: "/v1/admin/dead-letters/{id}"},
	{Method: http.MethodDelete, Path: "/v1/admin/dead-letters/{id}"},
	{Method: http.MethodPost, Path: "/v1/admin/dead-letters/{id}/redrive"},
}

// Routes implements server.Service.
func (s *Service) Routes() []server.Route { return append([]server.Route(nil), routes...) }

// Config is the service's settings: DATABASE_URL (the dead_letter and outbox
// tables) and the token settings (AUTH_JWKS_URL, AUTH_ISSUER).
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

// Start reads Config, migrates the dead_letter and outbox tables and sets up
// token verification (the admin role is required on every route).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("ops: %w", err)
	}
	s.Begin()
	if s.Pool, err = s.UsePool(ctx, s.Pool, c.DatabaseURL, outbox.Migrate, deadletter.Migrate); err != nil {
		return fmt.Errorf("ops: %w", err)
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
		return false, errors.New("ops: not started")
	}
	if err := s.Pool.Ping(ctx); err != nil {
		return false, fmt.Errorf("ops: database: %w", err)
	}
	return true, nil
}

// ServeHTTP implements server.Service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.handler == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-started", "the dead-letter admin API is starting"))
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Service) build() {
	s.once.Do(func() {
		mux := http.NewServeMux()
		h := map[string]func(http.ResponseWriter, *http.Request) error{
			"GET /v1/admin/dead-letters":               s.list,
			"POST /v1/admin/dead-letters/redrive":      s.redriveMany,
			"GET /v1/admin/dead-letters/{id}":          s.show,
			"DELETE /v1/admin/dead-letters/{id}":       s.discard,
			"POST /v1/admin/dead-letters/{id}/redrive": s.redriveOne,
		}
		for _, rt := range routes {
			mux.Handle(rt.Pattern(), server.Handle(s.Log, "dead-letter", h[rt.Pattern()]))
		}
		mux.HandleFunc("/v1/admin/dead-letters/", func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no dead-letter endpoint "+r.Method+" "+r.URL.Path))
		})
		s.handler = s.Verifier.Middleware(s.Log, token.RequireRole(token.RoleAdmin, mux))
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
