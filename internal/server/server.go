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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Route is one public endpoint, in http.ServeMux pattern syntax.
type Route struct {
	Method string // GET, POST, …
	Path   string // e.g. /v1/tracks/{id}
}

// Pattern returns the ServeMux pattern "METHOD /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Service is a long-lived HTTP service.
type Service interface {
	http.Handler
	// Name is the service's name (its Knative Service name).
	Name() string
	// Routes lists the public routes the gateway mounts and OpenAPI documents.
	Routes() []Route
}

// Starter, Stopper and Readier are the optional lifecycle of a service, the
// same shape as a function's.
type (
	Starter interface {
		Start(ctx context.Context, cfg map[string]string) error
	}
	Stopper interface {
		Stop(ctx context.Context) error
	}
	Readier interface {
		Ready(ctx context.Context) (bool, error)
	}
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

// Metrics adds /metrics for reg (the default registry when nil).
func Metrics(mux *http.ServeMux, reg prometheus.Gatherer) {
	if reg == nil {
		reg = prometheus.DefaultGatherer
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// Listen serves h on addr until ctx ends, then shuts down gracefully. ready,
// when non-nil, receives the bound address.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready chan<- string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return Serve(ctx, srv, ln, log)
}

// Serve runs srv on ln until ctx ends, then shuts it down gracefully, giving
// requests in flight 30 s. It is the end of every standalone HTTP server:
// Listen's and a standalone function's (internal/function).
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	addr := ln.Addr().String()
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

// Run starts s (if it has Start), serves it standalone on addr with health and
// metrics, and stops it when ctx ends.
func Run(ctx context.Context, s Service, addr string, cfg map[string]string, log *slog.Logger, ready chan<- string) error {
	if st, ok := s.(Starter); ok {
		if err := st.Start(ctx, cfg); err != nil {
			return fmt.Errorf("start %s: %w", s.Name(), err)
		}
	}
	mux := http.NewServeMux()
	var readyFn func(context.Context) (bool, error)
	if r, ok := s.(Readier); ok {
		readyFn = r.Ready
	}
	Health(mux, readyFn)
	Metrics(mux, nil)
	mux.Handle("/", s)
	log.Info("service listening", "service", s.Name(), "address", addr)
	err := Listen(ctx, addr, mux, log, ready)
	if st, ok := s.(Stopper); ok {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := st.Stop(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop %s: %w", s.Name(), serr))
		}
	}
	return err
}
