package saga_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/notification"
	paymentfn "github.com/overture-music/overture/functions/payment"
	renewalfn "github.com/overture-music/overture/functions/renewal"
	sagamanager "github.com/overture-music/overture/functions/saga-manager"
	subscriptionfn "github.com/overture-music/overture/functions/subscription"
	userfn "github.com/overture-music/overture/functions/user"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/subscription"
	"github.com/overture-music/overture/internal/telemetry"
)

// runtime is the embedded platform slice the saga needs: the broker obeying
// brokers/ and triggers/, the outbox relay, the five saga functions and the
// subscription API. Deliveries to functions outside the saga are recorded
// (notification, dead-letter) or acknowledged.
type runtime struct {
	pool   *postgres.Pool
	broker *broker.Broker
	api    *subscription.Service
	fns    map[string]function.Handler
}

// faults injected around every in-process delivery.
type faults struct {
	dupRate   float64 // deliver the event a second time after a success
	crashRate float64 // SIGKILL ourselves right after a handler committed, before the broker acks
	mu        sync.Mutex
	rng       *rand.Rand
	dups      int
}

func (f *faults) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < p
}

type faulty struct {
	h function.Handler
	f *faults
}

func (w faulty) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r, err := w.h.Handle(ctx, e)
	if err != nil {
		return r, err
	}
	if w.f.roll(w.f.crashRate) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL) // committed, not yet acknowledged
		select {}
	}
	if w.f.roll(w.f.dupRate) {
		w.f.mu.Lock()
		w.f.dups++
		w.f.mu.Unlock()
		if _, err := w.h.Handle(ctx, e); err != nil {
			return nil, fmt.Errorf("duplicate delivery: %w", err)
		}
	}
	return r, nil
}

// recorder notes every delivery it gets in e2e_delivery (kind, type, id)
// and passes it on to next, if any.
type recorder struct {
	kind string
	pool *pgxpool.Pool
	next function.Handler
}

func (r recorder) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	_, err := r.pool.Exec(ctx, `INSERT INTO e2e_delivery (kind, event_type, event_source, event_id, subject) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (kind, event_type, event_id) DO UPDATE SET n = e2e_delivery.n + 1`, r.kind, e.Type(), e.Source(), e.ID(), e.Subject())
	if err != nil || r.next == nil {
		return nil, err
	}
	return r.next.Handle(ctx, e)
}

type noop struct{}

func (noop) Handle(context.Context, event.Event) (*event.Event, error) { return nil, nil }

func ensureRecordTable(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS e2e_delivery (kind text, event_type text, event_source text, event_id text, subject text,
		n int NOT NULL DEFAULT 1, PRIMARY KEY (kind, event_type, event_id))`)
	return err
}

// startRuntime starts everything and returns once the API listens on addr.
// It stops when ctx ends.
func startRuntime(ctx context.Context, cfg map[string]string, addr string, fl *faults, pingEvery string, log *slog.Logger) (*runtime, <-chan error, error) {
	return startRuntimeFaulty(ctx, cfg, addr, fl, pingEvery, log, nil)
}

// startRuntimeWith is startRuntime without faults, with extra subscribers.
func startRuntimeWith(ctx context.Context, cfg map[string]string, addr, pingEvery string, log *slog.Logger, extra map[string]function.Handler) (*runtime, <-chan error, error) {
	return startRuntimeFaulty(ctx, cfg, addr, nil, pingEvery, log, extra)
}

func startRuntimeFaulty(ctx context.Context, cfg map[string]string, addr string, fl *faults, pingEvery string, log *slog.Logger, extra map[string]function.Handler) (*runtime, <-chan error, error) {
	pool, err := postgres.Open(ctx, cfg["DATABASE_URL"])
	if err != nil {
		return nil, nil, err
	}
	if err := ensureRecordTable(ctx, pool.Pool); err != nil {
		return nil, nil, fmt.Errorf("record table: %w", err)
	}
	objects, err := manifest.LoadDir("../../brokers", "../../triggers")
	if err != nil {
		return nil, nil, fmt.Errorf("manifests: %w", err)
	}
	for _, p := range objects.PingSources {
		p.Spec.Schedule = pingEvery
	}
	rt := &runtime{pool: pool, fns: map[string]function.Handler{
		"payment": paymentfn.New(), "subscription": subscriptionfn.New(), "user": userfn.New(),
		"renewal": renewalfn.New(), "saga-manager": sagamanager.New(),
	}}
	if cfg["SMTP_URL"] != "" { // the real notification function, sending to mailpit
		rt.fns["notification"] = notification.New()
	}
	for name, h := range rt.fns {
		if err := function.Start(ctx, h, lifecycle.Env{Name: name, Log: log.With("function", name)}, cfg); err != nil {
			return nil, nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	resolve := func(name string) (function.Handler, bool) {
		if h, ok := rt.fns[name]; ok {
			if fl != nil {
				h = faulty{h: h, f: fl}
			}
			if name == "notification" {
				h = recorder{kind: name, pool: pool.Pool, next: h}
			}
			return h, true
		}
		if h, ok := extra[name]; ok {
			return h, true
		}
		switch name {
		case "notification", "dead-letter":
			return recorder{kind: name, pool: pool.Pool}, true
		}
		return noop{}, true
	}
	b, err := broker.New(ctx, broker.Config{Pool: pool.Pool, Objects: objects, Resolve: resolve, Log: log,
		Lease: 2 * time.Second, Poll: 200 * time.Millisecond})
	if err != nil {
		return nil, nil, fmt.Errorf("broker: %w", err)
	}
	rt.broker = b
	errc := make(chan error, 3)
	go func() { errc <- b.Run(ctx) }()
	relay := &outbox.Relay{Pool: pool.Pool, Publisher: b, Log: log, Poll: 100 * time.Millisecond}
	go func() { errc <- relay.Run(ctx) }()
	rt.api = subscription.New()
	rt.api.Log = log
	ready := make(chan string, 1)
	go func() { errc <- server.Run(ctx, rt.api, addr, cfg, log, ready) }()
	select {
	case <-ready:
	case err := <-errc:
		return nil, nil, fmt.Errorf("runtime stopped while starting: %w", err)
	case <-time.After(30 * time.Second):
		return nil, nil, fmt.Errorf("API did not listen on %s", addr)
	}
	return rt, errc, nil
}

func newLogger(level slog.Level) *slog.Logger { return telemetry.NewLogger(os.Stderr, level) }

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func envFloat(k string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil {
		return v
	}
	return def
}

var _ http.Handler = (*subscription.Service)(nil)
