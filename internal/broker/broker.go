// Package broker is Overture's embedded Knative-style broker: it obeys the
// Broker, Trigger and PingSource YAML that deploys to a Knative cluster with a
// Kafka broker, and stores every acknowledged event in PostgreSQL, so that the
// platform can run on one machine with the same routing, retry, dead-letter,
// reply and ordering semantics — and lose nothing when the process is killed.
//
// At ingress an event is filtered against every trigger of its broker and one
// delivery row per matching trigger is inserted (concurrent publishes share one
// group-committed INSERT); the ingress acknowledges only after commit. Each
// trigger has a dispatcher that invokes its subscriber in process (or over
// HTTP for uri subscribers) and, in one transaction per batch of results,
// deletes the delivered rows, ingests their reply events and reschedules the
// failures. Rows are leased while held, so rows of a crashed process are
// reclaimed once their lease lapses. See docs/broker.md.
//
// Senders are authenticated and authorized as on Knative with
// authentication-oidc enabled and default-authorization-mode deny-all: the
// HTTP ingress wants a bearer token for the broker's audience (401 without
// a valid one) whose subject an EventPolicy allows to send each event (403
// otherwise); in process, [Broker.As] binds a publisher to a workload's
// subject and checks the same policies, and a subscriber's replies are checked
// against the subscriber's identity. See docs/security.md.
package broker

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates the broker's tables (owner "broker"). New calls it.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "broker", migrations)
}

// Config is what the platform gives the broker.
type Config struct {
	Pool       *pgxpool.Pool                              // broker tables live here (own goose migrations, owner "broker")
	Objects    *manifest.Set                              // what manifest.LoadDir returned: brokers, triggers, pingsources, configmaps
	Resolve    func(name string) (function.Handler, bool) // subscriber.ref.name -> in-process function
	Log        *slog.Logger
	Registerer prometheus.Registerer // may be nil

	// Lease is how long a dispatcher holds a row before another process may
	// reclaim it; held rows are renewed every Lease/3. Default 15 s.
	Lease time.Duration
	// Poll is the fallback polling interval for expired leases and rows that
	// did not fit in memory. Default 1 s.
	Poll time.Duration
	// Workers is the number of concurrent subscriber calls per trigger. Default 32.
	Workers int
	// Buffer is how many deliveries a trigger holds in memory. Default 4096.
	Buffer int
	// Committers is the number of concurrent ingest transactions (group
	// committers). Default 2: fewer, larger transactions beat many small ones
	// on a small machine.
	Committers int
	// DefaultTimeout bounds a subscriber call when delivery.timeout is unset.
	// Default 60 s.
	DefaultTimeout time.Duration
	// Verifier authenticates the senders of the HTTP ingress (Knative's
	// authentication-oidc): every request needs a bearer token for the
	// broker's audience. Without a Verifier the ingress refuses every request
	// with 401: the broker fails closed. What an authenticated sender may
	// send is decided by the EventPolicies in Objects (deny-all).
	Verifier TokenVerifier
}

// TokenVerifier verifies a bearer token for an audience (identity.Verifier).
type TokenVerifier interface {
	Verify(ctx context.Context, raw, audience string) (*identity.Claims, error)
}

// ErrStopped is returned by Publish once Run has shut the broker down.
var ErrStopped = errors.New("broker: stopped")

// ErrInvalidEvent wraps CloudEvents validation failures at ingress.
var ErrInvalidEvent = errors.New("broker: invalid CloudEvent")

// ErrForbidden is wrapped by every [DeniedError].
var ErrForbidden = errors.New("broker: forbidden by EventPolicy")

// DeniedError says which sender no EventPolicy allows to send which event:
// the whole publish (or ingress request) was refused and nothing stored.
type DeniedError struct {
	Broker  string // "<namespace>/<name>"
	Subject string
	Type    string
	ID      string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("broker %s: no EventPolicy allows %s to send events of type %s (event %q); nothing was stored", e.Broker, e.Subject, e.Type, e.ID)
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *DeniedError) Unwrap() error { return ErrForbidden }

// Broker is the embedded broker. It implements function.Publisher and
// http.Handler (the ingress).
type Broker struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	cfg     Config
	m       *metrics
	brokers map[string]*brokerState // "<ns>/<name>"
	def     *brokerState
	disps   []*dispatcher
	pings   []*pinger
	held    heldSet

	ingest     chan *ingestReq
	stopIngest chan struct{}
	stopped    atomic.Bool
	stopMu     sync.RWMutex // Publish holds it shared while enqueueing
	committers sync.WaitGroup
	running    atomic.Bool
}

type brokerState struct {
	key      string
	obj      *manifest.Broker
	triggers []*dispatcher
	audience string                  // identity.BrokerAudience
	policies []*manifest.EventPolicy // those that apply to it (deny-all: none, nobody)
}

// New migrates the broker's tables, checks the objects (every subscriber and
// dead-letter sink must resolve) and starts the ingress; Run starts delivery.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Pool == nil || cfg.Objects == nil {
		return nil, errors.New("broker: Config.Pool and Config.Objects are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 4096
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 60 * time.Second
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(string) (function.Handler, bool) { return nil, false }
	}
	if err := cfg.Objects.Validate(); err != nil {
		return nil, fmt.Errorf("broker: objects: %w", err)
	}
	if err := Migrate(ctx, cfg.Pool); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b := &Broker{
		pool: cfg.Pool, log: cfg.Log, cfg: cfg, m: newMetrics(cfg.Registerer),
		brokers:    map[string]*brokerState{},
		ingest:     make(chan *ingestReq, 1024),
		stopIngest: make(chan struct{}),
	}
	b.held.ids = map[int64]struct{}{}
	for _, o := range cfg.Objects.Brokers {
		st := &brokerState{
			key: o.Metadata.Namespace + "/" + o.Metadata.Name, obj: o,
			audience: identity.BrokerAudience(o.Metadata.Namespace, o.Metadata.Name),
			policies: cfg.Objects.PoliciesFor(o),
		}
		b.brokers[st.key] = st
	}
	if st, ok := b.brokers[manifest.DefaultNamespace+"/default"]; ok {
		b.def = st
	} else if len(b.brokers) == 1 {
		for _, st := range b.brokers {
			b.def = st
		}
	}
	var errs []error
	triggers := append([]*manifest.Trigger(nil), cfg.Objects.Triggers...)
	sort.Slice(triggers, func(i, j int) bool { return triggers[i].Key() < triggers[j].Key() })
	for _, t := range triggers {
		st := b.brokers[t.Metadata.Namespace+"/"+t.Spec.Broker]
		d, err := b.newDispatcher(st, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("trigger %s: %w", t.Key(), err))
			continue
		}
		st.triggers = append(st.triggers, d)
		b.disps = append(b.disps, d)
	}
	for _, p := range cfg.Objects.PingSources {
		pg, err := b.newPinger(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("pingsource %s/%s: %w", p.Metadata.Namespace, p.Metadata.Name, err))
			continue
		}
		b.pings = append(b.pings, pg)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("broker: %w", errors.Join(errs...))
	}
	b.warnOrphans(ctx)
	if cfg.Committers <= 0 {
		cfg.Committers = 2
	}
	for range cfg.Committers {
		b.committers.Add(1)
		go b.commitLoop()
	}
	return b, nil
}

// warnOrphans logs pending rows of triggers that no longer exist: they will
// not be delivered until a trigger of that name is deployed again.
func (b *Broker) warnOrphans(ctx context.Context) {
	known := make([]string, 0, len(b.disps))
	for _, d := range b.disps {
		known = append(known, d.key)
	}
	rows, err := b.pool.Query(ctx, `SELECT trigger, count(*) FROM broker_delivery WHERE NOT (trigger = ANY($1)) GROUP BY trigger`, known)
	if err != nil {
		b.log.WarnContext(ctx, "broker: count orphaned deliveries", "error", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var n int64
		if rows.Scan(&t, &n) == nil {
			b.log.WarnContext(ctx, "broker: pending deliveries for a trigger that is not deployed", "trigger", t, "rows", n)
		}
	}
}

// Run delivers events and fires PingSource schedules until ctx ends, then
// lets in-flight subscriber calls finish, records their outcome, releases the
// rows it held but had not started, stops the ingress and returns.
func (b *Broker) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("broker: Run called twice")
	}
	var wg sync.WaitGroup
	for _, d := range b.disps {
		d.start(ctx, &wg)
	}
	keeperCtx, stopKeeper := context.WithCancel(context.WithoutCancel(ctx))
	keeperDone := make(chan struct{})
	go func() { defer close(keeperDone); b.keepLeases(keeperCtx) }()
	for _, p := range b.pings {
		p.start(ctx)
	}
	b.log.InfoContext(ctx, "broker running", "brokers", len(b.brokers), "triggers", len(b.disps), "pingsources", len(b.pings))
	<-ctx.Done()
	for _, p := range b.pings {
		p.stop()
	}
	// Workers finish their current call; their handlers may still publish.
	wg.Wait()
	for _, d := range b.disps {
		d.stopFinisher()
	}
	// Close the ingress, wait for queued commits.
	b.stopMu.Lock()
	b.stopped.Store(true)
	close(b.stopIngest)
	b.stopMu.Unlock()
	b.committers.Wait()
	// Give back what was buffered but never started, so a successor picks it
	// up at once instead of after the lease.
	var unstarted []int64
	for _, d := range b.disps {
		unstarted = append(unstarted, d.drainQueue()...)
	}
	stopKeeper()
	<-keeperDone
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if len(unstarted) > 0 {
		if _, err := b.pool.Exec(rctx, `UPDATE broker_delivery SET lease_until = NULL WHERE id = ANY($1)`, unstarted); err != nil {
			b.log.WarnContext(rctx, "broker: release unstarted deliveries (they come back after their lease)", "rows", len(unstarted), "error", err)
		}
	}
	b.log.InfoContext(rctx, "broker stopped", "released", len(unstarted))
	return nil
}

// Publish ingests events into the default broker (overture/default, or the
// only one) and returns once they are durably stored. It implements
// function.Publisher.
//
// Publish is the broker's own, trusted path: no EventPolicy is consulted. It
// is what the broker uses for its PingSource ticks and what an in-process
// re-drive of already accepted dead letters uses; the platform never hands it
// to a function or relay, which publish through [Broker.As] instead.
func (b *Broker) Publish(ctx context.Context, events ...event.Event) error {
	if b.def == nil {
		return errors.New("broker: Publish: no default broker (define overture/default or exactly one Broker)")
	}
	return b.ingestTo(ctx, b.def, events)
}

// PublishTo ingests events into the named broker.
func (b *Broker) PublishTo(ctx context.Context, namespace, name string, events ...event.Event) error {
	st, ok := b.brokers[namespace+"/"+name]
	if !ok {
		return fmt.Errorf("broker: no Broker %s/%s", namespace, name)
	}
	return b.ingestTo(ctx, st, events)
}

// As returns a publisher into the default broker bound to subject (a
// workload's ServiceAccount, identity.Subject): every event it publishes must
// be allowed for subject by an EventPolicy, exactly as the HTTP ingress
// checks a token's subject; otherwise Publish returns a *DeniedError and
// stores nothing of the call.
func (b *Broker) As(subject string) function.Publisher {
	return function.PublisherFunc(func(ctx context.Context, events ...event.Event) error {
		if b.def == nil {
			return errors.New("broker: Publish: no default broker (define overture/default or exactly one Broker)")
		}
		return b.publishAs(ctx, b.def, subject, events)
	})
}

func (b *Broker) publishAs(ctx context.Context, st *brokerState, subject string, events []event.Event) error {
	if err := b.authorize(ctx, st, subject, events); err != nil {
		return err
	}
	return b.ingestTo(ctx, st, events)
}

// authorize checks every event against the policies of st: all or nothing.
// A refusal is counted and logged with the subject and type.
func (b *Broker) authorize(ctx context.Context, st *brokerState, subject string, events []event.Event) error {
	for i := range events {
		if manifest.Authorize(st.policies, subject, events[i]) {
			continue
		}
		b.m.denied.WithLabelValues(st.key, "forbidden").Inc()
		b.log.WarnContext(ctx, "broker: sender not allowed by any EventPolicy; refused", "broker", st.key, "subject", subject,
			"type", events[i].Type(), "id", events[i].ID(), "events", len(events))
		return &DeniedError{Broker: st.key, Subject: subject, Type: events[i].Type(), ID: events[i].ID()}
	}
	return nil
}

// pendingRow is one delivery row about to be inserted.
type pendingRow struct {
	d   *dispatcher
	ev  event.Event
	raw []byte
	key *string
	at  time.Time
	hot bool // reserved a buffer slot: inserted leased and handed over in memory
}

type ingestReq struct {
	rows []pendingRow
	done chan error
}

// route validates, encodes and filters events into rows for st's triggers.
func (b *Broker) route(ctx context.Context, st *brokerState, events []event.Event) ([]pendingRow, error) {
	var rows []pendingRow
	now := time.Now()
	for i := range events {
		e := events[i]
		telemetry.Propagate(ctx, &e)
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w: event %d (id %q): %v", ErrInvalidEvent, i, e.ID(), err)
		}
		var raw []byte
		matched := false
		for _, d := range st.triggers {
			if !d.t.Match(e) {
				continue
			}
			if raw == nil {
				var err error
				if raw, err = json.Marshal(e); err != nil {
					return nil, fmt.Errorf("%w: event %q: encode: %v", ErrInvalidEvent, e.ID(), err)
				}
			}
			matched = true
			var key *string
			if d.ordered {
				if k, ok := manifest.Attribute(e, "partitionkey"); ok && k != "" {
					key = &k
				}
			}
			rows = append(rows, pendingRow{d: d, ev: e, raw: raw, key: key, at: now})
		}
		if !matched {
			b.m.unmatched.WithLabelValues(st.key).Inc()
			b.log.DebugContext(ctx, "broker: no trigger wants event", "broker", st.key, "type", e.Type(), "id", e.ID())
		}
	}
	return rows, nil
}

func (b *Broker) ingestTo(ctx context.Context, st *brokerState, events []event.Event) error {
	rows, err := b.route(ctx, st, events)
	if err != nil || len(rows) == 0 {
		return err
	}
	req := &ingestReq{rows: rows, done: make(chan error, 1)}
	b.stopMu.RLock()
	if b.stopped.Load() {
		b.stopMu.RUnlock()
		return ErrStopped
	}
	select {
	case b.ingest <- req:
	case <-ctx.Done():
		b.stopMu.RUnlock()
		return ctx.Err()
	}
	b.stopMu.RUnlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The commit may still happen: the caller sees an error and may
		// retry, which at-least-once delivery tolerates.
		return ctx.Err()
	}
}

const maxBatchRows = 2000

// commitLoop is one group committer: it takes every request waiting and
// stores them in one transaction.
func (b *Broker) commitLoop() {
	defer b.committers.Done()
	for {
		var first *ingestReq
		select {
		case first = <-b.ingest:
		case <-b.stopIngest:
			// Drain what was enqueued before the stop.
			for {
				select {
				case r := <-b.ingest:
					b.commit([]*ingestReq{r})
				default:
					return
				}
			}
		}
		batch := []*ingestReq{first}
		n := len(first.rows)
	collect:
		for n < maxBatchRows {
			select {
			case r := <-b.ingest:
				batch = append(batch, r)
				n += len(r.rows)
			default:
				break collect
			}
		}
		b.commit(batch)
	}
}

func (b *Broker) commit(batch []*ingestReq) {
	var rows []pendingRow
	for _, r := range batch {
		rows = append(rows, r.rows...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One statement is one transaction: a single round trip, committed (and
	// flushed to the WAL) before anyone is told the events are stored.
	var ids []int64
	q, err := b.pool.Query(ctx, insertSQL, b.insertArgs(rows)...)
	if err == nil {
		ids, err = collectIDs(q, len(rows))
	}
	if err == nil {
		b.afterInsert(rows, ids)
	} else {
		b.releaseReservations(rows)
		err = fmt.Errorf("broker: store %d deliveries: %w", len(rows), err)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// insertSQL stores a batch of delivery rows; hot rows are inserted already
// leased to this process. Ids come back in input order (ORDER BY ordinality;
// identity values are assigned in insertion order).
const insertSQL = `
INSERT INTO broker_delivery (trigger, partition_key, event, lease_until, ingested_at)
SELECT u.t, u.k, u.e, CASE WHEN u.h THEN now() + make_interval(secs => $6) END, u.a
FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bool[], $5::timestamptz[]) WITH ORDINALITY AS u(t, k, e, h, a, ord)
ORDER BY u.ord
RETURNING id`

// insertArgs reserves in-memory buffer slots for the hot path and returns
// the arguments of insertSQL.
func (b *Broker) insertArgs(rows []pendingRow) []any {
	n := len(rows)
	triggers := make([]string, n)
	keys := make([]*string, n)
	events := make([][]byte, n)
	hot := make([]bool, n)
	at := make([]time.Time, n)
	for i := range rows {
		r := &rows[i]
		r.hot = !r.d.ordered && r.d.reserve(1)
		triggers[i], keys[i], events[i], hot[i], at[i] = r.d.key, r.key, r.raw, r.hot, r.at
	}
	return []any{triggers, keys, events, hot, at, b.cfg.Lease.Seconds()}
}

func collectIDs(q pgx.Rows, n int) ([]int64, error) {
	ids, err := pgx.CollectRows(q, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("insert deliveries: %d ids for %d rows", len(ids), n)
	}
	return ids, nil
}

// afterInsert runs after commit: counts, and hands hot rows to their
// dispatchers; cold rows wake the poller.
func (b *Broker) afterInsert(rows []pendingRow, ids []int64) {
	for i := range rows {
		r := &rows[i]
		r.d.mIngested.Inc()
		if r.hot {
			b.held.add(ids[i])
			r.d.queue <- &delivery{id: ids[i], ev: r.ev, ingested: r.at}
		} else {
			r.d.backlog.Store(true)
			r.d.poke()
		}
	}
}

func (b *Broker) releaseReservations(rows []pendingRow) {
	for i := range rows {
		if rows[i].hot {
			rows[i].d.release(1)
			rows[i].hot = false
		}
	}
}

// heldSet is every row this process holds a lease on.
type heldSet struct {
	mu  sync.Mutex
	ids map[int64]struct{}
}

func (h *heldSet) add(ids ...int64) {
	h.mu.Lock()
	for _, id := range ids {
		h.ids[id] = struct{}{}
	}
	h.mu.Unlock()
}

func (h *heldSet) remove(ids ...int64) {
	h.mu.Lock()
	for _, id := range ids {
		delete(h.ids, id)
	}
	h.mu.Unlock()
}

func (h *heldSet) snapshot() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int64, 0, len(h.ids))
	for id := range h.ids {
		out = append(out, id)
	}
	return out
}

// keepLeases renews the leases of held rows every Lease/3, so a long queue or
// a slow subscriber never lets another process steal live work.
func (b *Broker) keepLeases(ctx context.Context) {
	t := time.NewTicker(b.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := b.held.snapshot()
		if len(ids) == 0 {
			continue
		}
		if _, err := b.pool.Exec(ctx, `UPDATE broker_delivery SET lease_until = now() + make_interval(secs => $2) WHERE id = ANY($1) AND lease_until IS NOT NULL`,
			ids, b.cfg.Lease.Seconds()); err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "broker: renew leases", "rows", len(ids), "error", err)
		}
	}
}
