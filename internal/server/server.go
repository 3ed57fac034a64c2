// Package server is the contract and the runner of Overture's long-lived HTTP
// services (auth API, query API, subscription API, CDN steering …).
//
// A service declares its public routes; the embedded platform mounts them all
// on one local base URL under /v1/... as an ingress would, and the OpenAPI
// document is checked against them. Standalone (a Knative Service), Run serves
// one service with health endpoints, /metrics and a graceful stop.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
)

// Route is one public endpoint, in http.ServeMux pattern syntax.
type Route struct {
	Method string // GET, POST, …
	Path   string // e.g. /v1/tracks/{id}
}

// Pattern returns the ServeMux pattern "METHOD /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Handle turns a handler that returns its failure into an http.Handler: a
// *problem.Problem is answered as it is (the client's mistake, not logged);
// any other error is logged with what failed and answered 500 without its
// text. It is the one way a service answers a handler's error.
func Handle(log *slog.Logger, what string, fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			var p *problem.Problem
			if !errors.As(err, &p) {
				log.ErrorContext(r.Context(), what+" request failed", "method", r.Method, "path", r.URL.Path, "error", err)
			}
			problem.Error(w, r, err)
		}
	})
}

// Service is a long-lived HTTP service.
type Service interface {
	http.Handler
	// Name is the service's name (its Knative Service name).
	Name() string
	// Routes lists the public routes the gateway mounts and OpenAPI documents.
	Routes() []Route
}

// Starter, Stopper and Readier are the optional lifecycle of a service, the
// same as a function's (internal/lifecycle): a service that embeds
// lifecycle.Base gets Stop and Ready from it.
type (
	Starter = lifecycle.Starter
	Stopper = lifecycle.Stopper
	Readier = lifecycle.Readier
)

// Health adds /health/readiness and /health/liveness to mux.
func Health(mux *http.ServeMux, ready func(context.Context) (bool, error)) {
	mux.HandleFunc("GET /health/liveness", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			if ok, err := ready(r.Context()); !ok || err != nil {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok"))
	})
}

// KeyMetricsToken is the cfg key of the bearer token that /metrics (and a
// POP's /stats) require.
const KeyMetricsToken = "METRICS_TOKEN"

// Metrics adds /metrics for reg (the default registry when nil), served only
// to callers presenting token (see Protected).
func Metrics(mux *http.ServeMux, reg prometheus.Gatherer, token string) {
	if reg == nil {
		reg = prometheus.DefaultGatherer
	}
	mux.Handle("GET /metrics", Protected(token, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
}

// Protected serves h only to requests with "Authorization: Bearer <token>";
// anyone else gets a 401 problem. An empty token refuses everyone: operational
// data is closed unless a token was configured.
func Protected(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			detail := "this endpoint needs the operator's bearer token (" + KeyMetricsToken + ")"
			if token == "" {
				detail = "this endpoint is closed: no " + KeyMetricsToken + " is configured"
			}
			problem.Write(w, r, problem.New(http.StatusUnauthorized, "token-required", detail))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Listen serves h on addr until ctx ends, then shuts down gracefully. ready,
// when non-nil, receives the bound address.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready chan<- string) error {
	return ListenGuarded(ctx, addr, h, Guard{}, log, ready)
}

// ListenGuarded is Listen with g in front of h.
func ListenGuarded(ctx context.Context, addr string, h http.Handler, g Guard, log *slog.Logger, ready chan<- string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := NewHTTPServer(h, g)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return Serve(ctx, srv, ln, log)
}

// Serve runs srv on ln until ctx ends, then shuts it down gracefully, giving
// requests in flight 30 s. It is the end of every standalone HTTP server:
// Listen's and a standalone function's (internal/function). ln is wrapped by
// Listener, so a server from NewHTTPServer refuses ambiguous framing.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	addr := ln.Addr().String()
	ln = Listener(ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "address", addr, "error", err)
	}
	return nil
}

// Run serves s standalone (`overture serve NAME`, a Knative Service): it is
// RunEnv with an environment of the service's own — log named after the
// service, a registry of its own (served with the default one, which holds
// the Go and process collectors), its own database pools and the publisher
// found in ctx.
func Run(ctx context.Context, s Service, addr string, cfg map[string]string, log *slog.Logger, ready chan<- string) error {
	reg := prometheus.NewRegistry()
	pools := &postgres.Pools{}
	defer pools.Close()
	env := lifecycle.Env{Name: s.Name(), Log: log.With("service", s.Name()), Metrics: reg, Pools: pools,
		Publisher: lifecycle.PublisherFrom(ctx)}
	return RunEnv(ctx, s, addr, cfg, env, prometheus.Gatherers{reg, prometheus.DefaultGatherer}, ready)
}

// HostConfig is what a standalone host reads for itself from the cfg map:
// METRICS_TOKEN (the bearer token of /metrics; unset, /metrics is closed)
// and TRUSTED_PROXIES (the Guard's proxies).
type HostConfig struct {
	MetricsToken config.Secret
	Guard        Guard
}

// Read fills c from r; every problem is recorded on r.
func (c *HostConfig) Read(r *config.Reader) {
	c.MetricsToken = r.SecretOptional(KeyMetricsToken)
	c.Guard = ReadGuard(r)
}

// RunEnv starts s with env (lifecycle.Start: a failed start has released
// what s acquired), serves it on addr with health and the metrics of gather
// (METRICS_TOKEN) behind a Guard (TRUSTED_PROXIES), and stops it when ctx
// ends. The host owns env's pools and registry.
func RunEnv(ctx context.Context, s Service, addr string, cfg map[string]string, env lifecycle.Env, gather prometheus.Gatherer, ready chan<- string) error {
	hc, err := config.Parse[HostConfig](cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name(), err)
	}
	if err := lifecycle.Start(ctx, s, env, cfg); err != nil {
		return fmt.Errorf("start %s: %w", s.Name(), err)
	}
	mux := http.NewServeMux()
	Health(mux, func(ctx context.Context) (bool, error) { return lifecycle.Ready(ctx, s) })
	Metrics(mux, gather, hc.MetricsToken.Reveal())
	mux.Handle("/", s)
	env.Log.Info("service listening", "service", s.Name(), "address", addr)
	err = ListenGuarded(ctx, addr, mux, hc.Guard, env.Log, ready)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := lifecycle.Stop(sctx, s); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop %s: %w", s.Name(), serr))
	}
	return err
}
