// Package lifecycle is the one way every Overture function and HTTP service
// starts, reports its health and stops, whichever host runs it: the embedded
// platform (`make run`), a standalone function (`overture func NAME`, a
// Knative Service) or a standalone service (`overture serve NAME`).
//
// The host builds an [Env] — the component's logger named after it, a metrics
// registry, the host's database pools and the publisher bound to the
// component's identity — and starts the component with [Start]. A component
// embeds [Base], which receives the Env, and acquires every dependency
// through it: [Base.OpenPool] for PostgreSQL (with the owner's migrations),
// [Base.Hold] for anything else (a Redis client, a store, a background loop).
// What the Base holds is what the component is made of, so:
//
//   - [Base.Ready] asks every held dependency (a database-backed component is
//     not ready while its database does not answer);
//   - a Start that fails releases everything acquired so far (the host calls
//     [Stop], which is safe on a component that never started);
//   - Stop releases in reverse order of acquisition, once.
//
// No component picks its own logger, registry or pool: without a host (a
// test calling Start directly) the Base uses a discarding logger, a private
// registry and pools of its own, closed at Stop.
//
// The idea is River's startstop/baseservice (a base embedded by every
// service, the logger handed in, Stop safe without Start), kept to what
// Overture's components need.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/postgres"
)

// Publisher sends events into the broker: over HTTP to K_SINK when
// standalone, in process when embedded. Publish returns only after the broker
// has durably accepted every event.
type Publisher interface {
	Publish(ctx context.Context, events ...event.Event) error
}

// Starter, Stopper, Readier and Aliver are the optional lifecycle methods
// Knative func recognises; [Base] gives a component Stop and Ready.
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
	Aliver interface {
		Alive(ctx context.Context) (bool, error)
	}
)

// Env is what a host hands every component it starts.
type Env struct {
	// Name is the component's name (its Knative Service name).
	Name string
	// Log is the component's logger, already carrying its name.
	Log *slog.Logger
	// Metrics registers the component's collectors; the host serves them.
	Metrics prometheus.Registerer
	// Pools are the host's database pools, shared by its components.
	Pools *postgres.Pools
	// Publisher is bound to the component's identity; nil when the host has
	// no broker to publish to.
	Publisher Publisher
}

// Base is embedded by a component. Its exported fields are set by the host
// at Start unless the component (or its test) set them first.
type Base struct {
	// Log is the component's logger.
	Log *slog.Logger
	// Metrics is where the component registers its collectors.
	Metrics prometheus.Registerer

	mu       sync.Mutex
	name     string
	pools    *postgres.Pools
	ownPools bool
	held     []dep
}

// dep is one acquired dependency.
type dep struct {
	name  string
	close func() error
	ready func(context.Context) error
}

func (b *Base) base() *Base { return b }

// based is implemented by every type embedding Base.
type based interface{ base() *Base }

// bind takes in env, keeping what the component set itself.
func (b *Base) bind(env Env) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.name == "" {
		b.name = env.Name
	}
	if b.Log == nil {
		b.Log = env.Log
	}
	if b.Metrics == nil {
		b.Metrics = env.Metrics
	}
	if b.pools == nil && env.Pools != nil {
		b.pools = env.Pools
	}
	b.defaults()
}

// defaults fills what no host handed in (a test starting the component
// directly). Called with b.mu held.
func (b *Base) defaults() {
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	if b.Metrics == nil {
		b.Metrics = prometheus.NewRegistry()
	}
	if b.pools == nil {
		b.pools, b.ownPools = &postgres.Pools{}, true
	}
}

// Begin fills what no host handed in (a test calling Start directly): a
// discarding logger, a private registry, pools of the base's own. A host's
// Start has done it already; a component whose Start may log before it
// acquires anything calls it first.
func (b *Base) Begin() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.defaults()
}

// OpenPool acquires the host's pool for url and runs migrate on it in order
// (an owner's Migrate, then shared schemas such as outbox.Migrate). The pool
// is held: Ready pings it, Stop releases it. When a migration fails the pool
// is released before OpenPool returns.
func (b *Base) OpenPool(ctx context.Context, url string, migrate ...postgres.Migrator) (*postgres.Pool, error) {
	b.mu.Lock()
	b.defaults()
	pools := b.pools
	b.mu.Unlock()
	pool, err := pools.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	for _, m := range migrate {
		if err := m(ctx, pool.Pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	b.Hold("database", func() error { pool.Close(); return nil }, func(ctx context.Context) error { return pool.Ping(ctx) })
	return pool, nil
}

// UsePool is OpenPool for components whose tests may hand in a pool:
// given (not nil) is migrated and used as is, not held (its owner closes
// it); otherwise the host's pool for url is opened, migrated and held.
func (b *Base) UsePool(ctx context.Context, given *pgxpool.Pool, url string, migrate ...postgres.Migrator) (*pgxpool.Pool, error) {
	if given == nil {
		p, err := b.OpenPool(ctx, url, migrate...)
		if err != nil {
			return nil, err
		}
		return p.Pool, nil
	}
	for _, m := range migrate {
		if err := m(ctx, given); err != nil {
			return nil, err
		}
	}
	return given, nil
}

// Hold makes b responsible for a dependency the component acquired: close
// (may be nil) runs at Stop, after everything acquired later; ready (may be
// nil) is part of Ready. name appears in readiness and stop errors.
func (b *Base) Hold(name string, close func() error, ready func(context.Context) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.defaults()
	b.held = append(b.held, dep{name: name, close: close, ready: ready})
}

// Ready reports whether every held dependency answers; the error names the
// first that does not.
func (b *Base) Ready(ctx context.Context) (bool, error) {
	b.mu.Lock()
	held := slices.Clone(b.held)
	b.mu.Unlock()
	for _, d := range held {
		if d.ready == nil {
			continue
		}
		if err := d.ready(ctx); err != nil {
			return false, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return true, nil
}

// Stop releases every held dependency in reverse order of acquisition. It
// is safe before Start, after a failed Start and more than once.
func (b *Base) Stop(context.Context) error {
	b.mu.Lock()
	held := b.held
	b.held = nil
	own := b.ownPools
	pools := b.pools
	if own {
		b.pools, b.ownPools = nil, false
	}
	b.mu.Unlock()
	var errs []error
	for _, d := range slices.Backward(held) {
		if d.close == nil {
			continue
		}
		if err := d.close(); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", d.name, err))
		}
	}
	if own && pools != nil {
		pools.Close()
	}
	return errors.Join(errs...)
}

// Start hands env to c (when it embeds Base) and calls c.Start with
// env.Publisher in the context. When Start fails, everything c acquired is
// released before Start returns, so a host may give up on c at once.
func Start(ctx context.Context, c any, env Env, cfg map[string]string) error {
	if b, ok := c.(based); ok {
		b.base().bind(env)
	}
	if env.Publisher != nil {
		ctx = WithPublisher(ctx, env.Publisher)
	}
	s, ok := c.(Starter)
	if !ok {
		return nil
	}
	if err := s.Start(ctx, cfg); err != nil {
		if serr := Stop(context.WithoutCancel(ctx), c); serr != nil {
			err = errors.Join(err, fmt.Errorf("release after the failed start: %w", serr))
		}
		return err
	}
	return nil
}

// Stop calls c.Stop and then releases whatever c's Base still holds (a
// component whose own Stop does not end with Base.Stop loses nothing).
func Stop(ctx context.Context, c any) error {
	var errs []error
	if s, ok := c.(Stopper); ok {
		errs = append(errs, s.Stop(ctx))
	}
	if b, ok := c.(based); ok {
		errs = append(errs, b.base().Stop(ctx))
	}
	return errors.Join(errs...)
}

// Ready reports c's readiness: every dependency its Base holds answers, and
// its own Ready (when it has one) agrees. A component with neither is ready.
func Ready(ctx context.Context, c any) (bool, error) {
	if b, ok := c.(based); ok {
		if ok, err := b.base().Ready(ctx); !ok || err != nil {
			return false, err
		}
	}
	if r, ok := c.(Readier); ok {
		return r.Ready(ctx)
	}
	return true, nil
}

// Alive reports c's liveness; a component without Alive is alive.
func Alive(ctx context.Context, c any) (bool, error) {
	if a, ok := c.(Aliver); ok {
		return a.Alive(ctx)
	}
	return true, nil
}

type publisherKey struct{}

// WithPublisher returns a context carrying p; hosts call it for the contexts
// they pass to Start and Handle.
func WithPublisher(ctx context.Context, p Publisher) context.Context {
	return context.WithValue(ctx, publisherKey{}, p)
}

// PublisherFrom returns the publisher the host put into ctx, or nil.
func PublisherFrom(ctx context.Context) Publisher {
	p, _ := ctx.Value(publisherKey{}).(Publisher)
	return p
}
