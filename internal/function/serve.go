package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
)

// DefaultListenAddress is where a standalone function listens when
// LISTEN_ADDRESS is unset, as in Knative func.
const DefaultListenAddress = "127.0.0.1:8080"

// Config returns the configuration map Knative func gives Start: the process
// environment (a ./cfg file, if present, is read first and overridden by it).
func Config() map[string]string {
	cfg := map[string]string{}
	if b, err := os.ReadFile("cfg"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
				cfg[k] = v
			}
		}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			cfg[k] = v
		}
	}
	return cfg
}

// Serve runs h as a Knative Service would: CloudEvents over HTTP (binary and
// structured mode) on LISTEN_ADDRESS, health endpoints, /metrics, publishing
// through K_SINK with the workload identity token read from the file
// OVERTURE_IDENTITY_TOKEN_FILE names (a projected ServiceAccount token on
// Knative; read on every publish), and a graceful stop when ctx ends
// (SIGTERM in main). A reply
// event is written back in the HTTP response, where the broker picks it up.
// ready, when non-nil, receives the bound address once the server accepts.
func Serve(ctx context.Context, name string, h Handler, cfg map[string]string, log *slog.Logger, ready chan<- string) error {
	if cfg == nil {
		cfg = Config()
	}
	hc, err := config.Parse[HostConfig](cfg)
	if err != nil {
		return fmt.Errorf("function %s: %w", name, err)
	}
	var pub Publisher
	if hc.Sink != "" {
		if hc.TokenFile == "" {
			log.Warn("K_SINK is set but "+identity.TokenFileKey+" is not: the broker refuses events without a sender identity", "function", name)
		}
		pub = hc.Publisher()
		ctx = WithPublisher(ctx, pub)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pools := &postgres.Pools{}
	defer pools.Close()
	env := lifecycle.Env{Name: name, Log: log.With("function", name), Metrics: reg, Pools: pools, Publisher: pub}
	if err := Start(ctx, h, env, maps.Clone(cfg)); err != nil {
		return fmt.Errorf("start function %s: %w", name, err)
	}

	m := newHandlerMetrics(reg, name)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {
		healthAnswer(w, r, h, Ready)
	})
	mux.HandleFunc("GET /health/liveness", func(w http.ResponseWriter, r *http.Request) {
		healthAnswer(w, r, h, Alive)
	})
	server.Metrics(mux, reg, hc.MetricsToken.Reveal())
	mux.Handle("/", &ceHandler{h: h, log: log, metrics: m, base: ctx})

	stop := func() error {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := Stop(stopCtx, h); err != nil {
			return fmt.Errorf("stop function %s: %w", name, err)
		}
		return nil
	}
	srv := server.NewHTTPServer(mux, hc.Guard)
	ln, err := net.Listen("tcp", hc.ListenAddress)
	if err != nil {
		return errors.Join(fmt.Errorf("listen on %s: %w", hc.ListenAddress, err), stop())
	}
	log.Info("function listening", "function", name, "address", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	if err := server.Serve(ctx, srv, ln, log.With("function", name)); err != nil {
		return errors.Join(fmt.Errorf("function %s: %w", name, err), stop())
	}
	return stop()
}

func healthAnswer(w http.ResponseWriter, r *http.Request, h Handler, check func(context.Context, Handler) (bool, error)) {
	ok, err := check(r.Context(), h)
	if !ok || err != nil {
		http.Error(w, "not ok", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

type handlerMetrics struct {
	handled  *prometheus.CounterVec
	duration prometheus.Histogram
}

func newHandlerMetrics(reg prometheus.Registerer, name string) *handlerMetrics {
	m := &handlerMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_function_events_total", Help: "Events handled by the function, by outcome.",
			ConstLabels: prometheus.Labels{"function": name},
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "overture_function_handle_seconds", Help: "Time spent in Handle.",
			ConstLabels: prometheus.Labels{"function": name}, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	reg.MustRegister(m.handled, m.duration)
	return m
}

// ceHandler is the CloudEvents HTTP receiver of a standalone function.
type ceHandler struct {
	h       Handler
	log     *slog.Logger
	metrics *handlerMetrics
	base    context.Context
}

func (c *ceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "method-not-allowed", "CloudEvents are delivered with POST"))
		return
	}
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		problem.Write(w, r, problem.BadRequest("malformed CloudEvent: "+err.Error()))
		return
	}
	if err := e.Validate(); err != nil {
		problem.Write(w, r, problem.BadRequest("invalid CloudEvent: "+err.Error()))
		return
	}
	ctx := telemetry.FromEvent(r.Context(), *e)
	if p := PublisherFrom(c.base); p != nil {
		ctx = WithPublisher(ctx, p)
	}
	start := time.Now()
	reply, err := c.h.Handle(ctx, *e)
	c.metrics.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.handled.WithLabelValues("error").Inc()
		c.log.ErrorContext(ctx, "handle failed", "type", e.Type(), "id", e.ID(), "error", err)
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "handler-failed", err.Error()))
		return
	}
	c.metrics.handled.WithLabelValues("ok").Inc()
	if reply == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	telemetry.Propagate(ctx, reply)
	if err := reply.Validate(); err != nil {
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "bad-reply", "function returned an invalid event: "+err.Error()))
		return
	}
	if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), http.StatusOK, w); err != nil {
		c.log.ErrorContext(ctx, "write reply", "error", err)
	}
}

// HTTPPublisher posts events in binary mode to a sink URL (K_SINK or a broker
// ingress). Several events are sent as one batch request. With a token source
// (WithToken) every request carries "Authorization: Bearer <token>", the
// sender identity the broker checks against its EventPolicies.
type HTTPPublisher struct {
	url    string
	client *http.Client
	token  identity.TokenSource
}

// NewHTTPPublisher returns a publisher posting to url; client nil means a
// default client with a 30 s timeout.
func NewHTTPPublisher(url string, client *http.Client) *HTTPPublisher {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &HTTPPublisher{url: url, client: client}
}

// HostConfig is what a standalone function's host reads for itself:
// LISTEN_ADDRESS (default DefaultListenAddress), K_SINK (where it
// publishes), OVERTURE_IDENTITY_TOKEN_FILE (the sender identity it
// publishes with) and the HTTP host's METRICS_TOKEN and TRUSTED_PROXIES.
type HostConfig struct {
	server.HostConfig
	ListenAddress string
	Sink          string
	TokenFile     string
}

// Read fills c from r; every problem is recorded on r.
func (c *HostConfig) Read(r *config.Reader) {
	c.HostConfig.Read(r)
	c.ListenAddress = r.StringOr("LISTEN_ADDRESS", DefaultListenAddress)
	c.Sink = r.URLOr("K_SINK", "")
	c.TokenFile = r.StringOr(identity.TokenFileKey, "")
}

// Publisher is the publisher of a standalone workload: it posts to K_SINK
// with the token read (on every publish) from the token file; without that
// file it sends no token, and the broker will refuse it.
func (c HostConfig) Publisher() *HTTPPublisher {
	p := NewHTTPPublisher(c.Sink, nil)
	if c.TokenFile != "" {
		p = p.WithToken(identity.FileToken(c.TokenFile))
	}
	return p
}

// NewSinkPublisher is HostConfig.Publisher for cfg's K_SINK and
// OVERTURE_IDENTITY_TOKEN_FILE.
func NewSinkPublisher(cfg map[string]string) *HTTPPublisher {
	r := config.NewReader(cfg)
	var c HostConfig
	c.Read(r)
	return c.Publisher()
}

// WithToken returns a copy of p that authenticates every request with a token
// from ts (asked anew for each request, so a rotated token file is honoured).
func (p *HTTPPublisher) WithToken(ts identity.TokenSource) *HTTPPublisher {
	c := *p
	c.token = ts
	return &c
}

// Publish implements [Publisher]. A non-2xx answer is an error.
func (p *HTTPPublisher) Publish(ctx context.Context, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	var req *http.Request
	var err error
	if len(events) == 1 {
		e := events[0]
		telemetry.Propagate(ctx, &e)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.url, nil)
		if err != nil {
			return fmt.Errorf("build request to %s: %w", p.url, err)
		}
		if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID(), err)
		}
	} else {
		for i := range events {
			telemetry.Propagate(ctx, &events[i])
		}
		body, err := json.Marshal(events)
		if err != nil {
			return fmt.Errorf("encode batch: %w", err)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("build request to %s: %w", p.url, err)
		}
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	}
	if p.token != nil {
		tok, err := p.token.Token(ctx)
		if err != nil {
			return fmt.Errorf("post to %s: sender identity: %w", p.url, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("post to %s: status %d: %s", p.url, resp.StatusCode, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
