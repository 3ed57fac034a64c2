package platform

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/overture-music/overture/internal/api"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/webapp"
)

// GatewayRoutes are the gateway's own public routes (documented in
// internal/api/openapi/platform.json).
func GatewayRoutes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/openapi.json"},
		{Method: http.MethodGet, Path: "/health/readiness"},
		{Method: http.MethodGet, Path: "/health/liveness"},
		{Method: http.MethodGet, Path: "/metrics"},
	}
}

type gatewayMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newGateway builds the one local base URL: every service's routes mounted on
// one mux (as an ingress routes by path), plus health, metrics (METRICS_TOKEN)
// and the merged OpenAPI document, all behind the server.Guard (security
// headers, body deadline, client address through TRUSTED_PROXIES; the
// services behind it see that address through server.ClientIP). Two services
// claiming the same route is an error naming both.
func newGateway(services []server.Service, ready func(context.Context) error, gather prometheus.Gatherer, reg prometheus.Registerer, cfg map[string]string) (http.Handler, error) {
	guard, err := server.GuardFromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	doc, err := api.Document()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	m := &gatewayMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_gateway_requests_total", Help: "Requests the gateway routed, by service and status code.",
		}, []string{"service", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "overture_gateway_request_seconds", Help: "Time to answer a request through the gateway, by service.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"service"}),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	if err := reg.Register(m.duration); err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	mux := http.NewServeMux()
	owner := map[string]string{}
	for _, s := range services {
		h := m.instrument(s.Name(), s)
		for _, r := range s.Routes() {
			pat := r.Pattern()
			if prev, ok := owner[pat]; ok {
				return nil, fmt.Errorf("gateway: services %s and %s both serve %s", prev, s.Name(), pat)
			}
			if err := register(mux, pat, h); err != nil {
				return nil, fmt.Errorf("gateway: service %s: %w", s.Name(), err)
			}
			owner[pat] = s.Name()
		}
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("GET /health/liveness", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-ready", err.Error()))
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("GET /metrics", server.Protected(cfg[server.KeyMetricsToken], promhttp.HandlerFor(gather, promhttp.HandlerOpts{})))
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.WithLabelValues("", "404").Inc()
		problem.Write(w, r, problem.New(http.StatusNotFound, "no-route", fmt.Sprintf("no service serves %s %s; see /openapi.json", r.Method, r.URL.Path)))
	})
	// The web app (H7, issue 15): its pages and assets, else the 404 above.
	app, err := webapp.New(cfg, notFound)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	mux.Handle("/", app)
	return guard.Wrap(mux), nil
}

// register adds pattern to mux, turning ServeMux's panic on conflicting
// patterns (e.g. two wildcards matching the same paths) into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("route %s: %v", pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines (streaming).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (m *gatewayMetrics) instrument(service string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.requests.WithLabelValues(service, strconv.Itoa(sw.code)).Inc()
		m.duration.WithLabelValues(service).Observe(time.Since(start).Seconds())
	})
}

// Flush passes through to the underlying writer when it can flush.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
