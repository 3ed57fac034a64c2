package broker

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/telemetry"
)

// Dead-letter extensions, as the Knative Kafka broker sets them.
const (
	ExtErrorDest = "knativeerrordest"
	ExtErrorCode = "knativeerrorcode"
	ExtErrorData = "knativeerrordata"

	// maxErrorData bounds the error text carried in knativeerrordata.
	maxErrorData = 1024
)

// delivery is one row in a dispatcher's hands.
type delivery struct {
	id       int64
	ev       event.Event
	attempt  int
	ingested time.Time
	// then holds, for ordered triggers, the rows of the same partition key
	// claimed behind this one: the worker delivers them in turn, and gives
	// them back unstarted if this one fails.
	then []*delivery
}

type outcome int

const (
	delivered outcome = iota
	retry
	deadLettered
	dropped
	released // not attempted: back to the table, lease cleared
)

type result struct {
	d       *delivery
	outcome outcome
	reply   *event.Event
	attempt int       // for retry: the new attempt count
	next    time.Time // for retry
	err     string
	rewrite []byte // for retry: replaces the stored event (the dead-letter form)
}

// dispatcher delivers one trigger's rows.
type dispatcher struct {
	b        *Broker
	st       *brokerState
	t        *manifest.Trigger
	key      string
	ordered  bool
	sub      *target
	dls      *target
	delivery *manifest.Delivery
	timeout  time.Duration
	// subject is the subscriber's identity: its replies, and what it
	// publishes while handling an event, are checked against it.
	subject string
	pub     function.Publisher

	queue    chan *delivery
	capacity int64
	inHand   atomic.Int64 // reserved buffer slots: queued + in a worker + awaiting flush
	results  chan result
	wake     chan struct{}
	backlog  atomic.Bool // rows were stored without a buffer slot

	mDelivered, mFailed, mDeadLettered, mDropped prometheus.Counter
	mLatency                                     prometheus.Observer
	mIngested                                    prometheus.Counter

	workers      int // concurrent subscriber calls
	stopWorkers  chan struct{}
	finisherDone chan struct{}
	finisherStop chan struct{}

	retryMu sync.Mutex
	retries timeHeap
}

// SubscriberSubject is the identity of a Trigger's subscriber: the
// ServiceAccount named after the Service it refers to, or, for a uri
// subscriber, the OIDC identity Knative gives the Trigger itself.
func SubscriberSubject(t *manifest.Trigger) string {
	if r := t.Spec.Subscriber.Ref; r != nil && r.Kind == "Service" {
		ns := r.Namespace
		if ns == "" {
			ns = t.Metadata.Namespace
		}
		return identity.ServiceAccount(ns, r.Name)
	}
	return manifest.RefSubject(manifest.KReference{APIVersion: manifest.EventingV1, Kind: "Trigger", Name: t.Metadata.Name}, t.Metadata.Namespace)
}

func (b *Broker) newDispatcher(st *brokerState, t *manifest.Trigger) (*dispatcher, error) {
	d := &dispatcher{
		b: b, st: st, t: t, key: t.Key(), ordered: t.Ordered(),
		delivery: t.Spec.Delivery,
		capacity: int64(b.cfg.Buffer),
		queue:    make(chan *delivery, b.cfg.Buffer),
		workers:  b.cfg.Workers,
		wake:     make(chan struct{}, 1),
	}
	if n, _ := t.Parallelism(); n > 0 {
		d.workers = n
	}
	d.results = make(chan result, d.workers*2)
	d.mDelivered = b.m.delivered.WithLabelValues(d.key)
	d.mFailed = b.m.failed.WithLabelValues(d.key)
	d.mDeadLettered = b.m.deadLettered.WithLabelValues(d.key)
	d.mDropped = b.m.dropped.WithLabelValues(d.key)
	d.mLatency = b.m.latency.WithLabelValues(d.key)
	d.mIngested = b.m.ingested.WithLabelValues(st.key, d.key)
	// A Trigger's delivery replaces the Broker's completely.
	if d.delivery == nil {
		d.delivery = st.obj.Spec.Delivery
	}
	d.timeout = d.delivery.TimeoutOr(b.cfg.DefaultTimeout)
	d.subject = SubscriberSubject(t)
	d.pub = function.PublisherFunc(func(ctx context.Context, events ...event.Event) error {
		return b.publishAs(ctx, st, d.subject, events)
	})
	var err error
	if d.sub, err = b.resolve(t.Spec.Subscriber, t.Metadata.Namespace); err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	if d.delivery != nil && d.delivery.DeadLetterSink != nil {
		if d.dls, err = b.resolve(*d.delivery.DeadLetterSink, t.Metadata.Namespace); err != nil {
			return nil, fmt.Errorf("deadLetterSink: %w", err)
		}
	}
	return d, nil
}

func (d *dispatcher) reserve(n int64) bool {
	if d.inHand.Add(n) <= d.capacity {
		return true
	}
	d.inHand.Add(-n)
	return false
}

func (d *dispatcher) release(n int64) { d.inHand.Add(-n) }

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) start(ctx context.Context, wg *sync.WaitGroup) {
	d.stopWorkers = make(chan struct{})
	d.finisherStop = make(chan struct{})
	d.finisherDone = make(chan struct{})
	go func() { <-ctx.Done(); close(d.stopWorkers) }()
	for range d.workers {
		wg.Add(1)
		go func() { defer wg.Done(); d.work(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); d.poll(ctx) }()
	go d.finish()
	d.poke() // pick up what an earlier process left
}

func (d *dispatcher) stopFinisher() {
	close(d.finisherStop)
	<-d.finisherDone
}

// drainQueue empties the buffer after the workers stopped and returns the
// ids it held.
func (d *dispatcher) drainQueue() []int64 {
	var ids []int64
	for {
		select {
		case dl := <-d.queue:
			for _, x := range append([]*delivery{dl}, dl.then...) {
				ids = append(ids, x.id)
				d.b.held.remove(x.id)
			}
		default:
			return ids
		}
	}
}

func (d *dispatcher) work(ctx context.Context) {
	base := context.WithoutCancel(ctx)
	for {
		// Stop takes precedence over a full queue.
		select {
		case <-d.stopWorkers:
			return
		default:
		}
		select {
		case <-d.stopWorkers:
			return
		case dl := <-d.queue:
			r := d.attempt(base, dl)
			d.results <- r
			for i, next := range dl.then {
				if r.outcome == retry {
					// The key is blocked until dl succeeds: give the rest back.
					for _, rest := range dl.then[i:] {
						d.results <- result{d: rest, outcome: released}
					}
					break
				}
				r = d.attempt(base, next)
				d.results <- r
			}
		}
	}
}

// attempt makes one delivery attempt (or, once retries are exhausted, the
// dead-letter delivery) and says what to do with the row.
func (d *dispatcher) attempt(base context.Context, dl *delivery) result {
	b := d.b
	retries := d.delivery.Retries()
	if dl.attempt <= retries {
		if dl.attempt == 0 {
			d.mLatency.Observe(time.Since(dl.ingested).Seconds())
		}
		ctx, cancel := context.WithTimeout(base, d.timeout)
		ctx = telemetry.FromEvent(function.WithPublisher(ctx, d.pub), dl.ev)
		reply, ferr := d.sub.deliver(ctx, dl.ev, d.timeout)
		cancel()
		if ferr == nil && reply != nil {
			telemetry.Propagate(ctx, reply)
			if err := reply.Validate(); err != nil {
				ferr = &failure{code: 502, text: "subscriber replied with an invalid CloudEvent: " + err.Error()}
			} else if err := b.authorize(ctx, d.st, d.subject, []event.Event{*reply}); err != nil {
				// A reply the subscriber may not send is not accepted, so the
				// original is redelivered (and dead-lettered in the end).
				ferr = &failure{code: 403, text: "reply refused: " + err.Error()}
			}
		}
		if ferr == nil {
			return result{d: dl, outcome: delivered, reply: reply}
		}
		d.mFailed.Inc()
		if dl.attempt < retries {
			n := dl.attempt + 1
			b.log.WarnContext(ctx, "broker: delivery failed, will retry", "trigger", d.key, "id", dl.ev.ID(), "type", dl.ev.Type(),
				"attempt", dl.attempt+1, "retry_in", d.delivery.Backoff(n).String(), "code", ferr.code, "error", ferr.text)
			return result{d: dl, outcome: retry, attempt: n, next: time.Now().Add(d.delivery.Backoff(n)), err: ferr.Error()}
		}
		if d.dls == nil {
			b.log.ErrorContext(ctx, "broker: delivery failed after last retry and the trigger has no deadLetterSink: event dropped",
				"trigger", d.key, "id", dl.ev.ID(), "type", dl.ev.Type(), "source", dl.ev.Source(), "code", ferr.code, "error", ferr.text)
			return result{d: dl, outcome: dropped}
		}
		dl.ev = deadLetterEvent(dl.ev, d.sub.dest, ferr)
	}
	// Retries exhausted: to the dead-letter sink. When this is another try of
	// the sink, the stored event is already the dead-letter form.
	ctx, cancel := context.WithTimeout(base, d.timeout)
	defer cancel()
	ctx = telemetry.FromEvent(ctx, dl.ev)
	if _, derr := d.dls.deliver(ctx, dl.ev, d.timeout); derr != nil {
		next := d.delivery.Backoff(retries + 1)
		next = min(max(next, time.Second), time.Minute)
		b.log.ErrorContext(ctx, "broker: dead-letter sink failed; will try it again", "trigger", d.key, "id", dl.ev.ID(), "dls", d.dls.dest, "error", derr.text, "retry_in", next.String())
		// Keep the dead-letter form (with its error extensions) so the next
		// attempt sends the sink the same event.
		raw, err := json.Marshal(dl.ev)
		if err != nil {
			raw = nil
		}
		return result{d: dl, outcome: retry, attempt: retries + 1, next: time.Now().Add(next), err: "dead-letter sink: " + derr.Error(), rewrite: raw}
	}
	b.log.WarnContext(ctx, "broker: event dead-lettered", "trigger", d.key, "id", dl.ev.ID(), "type", dl.ev.Type(), "dls", d.dls.dest)
	return result{d: dl, outcome: deadLettered}
}

// deadLetterEvent is the original event plus the Knative error extensions.
func deadLetterEvent(e event.Event, dest string, f *failure) event.Event {
	out := e.Clone()
	out.SetExtension(ExtErrorDest, dest)
	out.SetExtension(ExtErrorCode, fmt.Sprint(f.code))
	data := f.data
	if data == nil {
		data = []byte(f.text)
	}
	if len(data) > maxErrorData {
		data = data[:maxErrorData]
	}
	out.SetExtension(ExtErrorData, base64.StdEncoding.EncodeToString(data))
	return out
}

// finish records results in one transaction per batch: replies ingested,
// delivered rows deleted, failures rescheduled.
func (d *dispatcher) finish() {
	defer close(d.finisherDone)
	for {
		var first result
		select {
		case first = <-d.results:
		case <-d.finisherStop:
			for {
				select {
				case r := <-d.results:
					d.flush([]result{r})
				default:
					return
				}
			}
		}
		batch := []result{first}
	collect:
		for len(batch) < 1000 {
			select {
			case r := <-d.results:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		d.flush(batch)
	}
}

func (d *dispatcher) flush(batch []result) {
	b := d.b
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var done, failedIDs, attempts, releasedIDs []int64
	var nexts []time.Time
	var errs []string
	var rewrites [][]byte
	var replies []event.Event
	all := make([]int64, 0, len(batch))
	for _, r := range batch {
		all = append(all, r.d.id)
		switch r.outcome {
		case released:
			releasedIDs = append(releasedIDs, r.d.id)
		case retry:
			failedIDs = append(failedIDs, r.d.id)
			attempts = append(attempts, int64(r.attempt))
			nexts = append(nexts, r.next)
			errs = append(errs, r.err)
			rewrites = append(rewrites, r.rewrite)
		default:
			done = append(done, r.d.id)
			if r.reply != nil {
				replies = append(replies, *r.reply)
			}
		}
	}
	// One round trip: the whole transaction goes as one pipelined batch.
	// Recording an outcome need not wait for the WAL flush: if a crash loses
	// this transaction, the rows are still there (leased, and the reply with
	// them) and are delivered again — at least once holds. Only the ingress,
	// which acknowledges to a producer, waits for the flush.
	var rows []pendingRow
	var ids []int64
	var err error
	if len(replies) > 0 {
		if rows, err = b.route(ctx, d.st, replies); err != nil {
			err = fmt.Errorf("route replies: %w", err) // validated already; cannot happen
		}
	}
	if err == nil {
		pb := &pgx.Batch{}
		pb.Queue(`BEGIN`)
		pb.Queue(`SET LOCAL synchronous_commit = off`)
		if len(rows) > 0 {
			pb.Queue(insertSQL, b.insertArgs(rows)...)
		}
		if len(done) > 0 {
			pb.Queue(`DELETE FROM broker_delivery WHERE id = ANY($1)`, done)
		}
		if len(releasedIDs) > 0 {
			pb.Queue(`UPDATE broker_delivery SET lease_until = NULL WHERE id = ANY($1)`, releasedIDs)
		}
		if len(failedIDs) > 0 {
			pb.Queue(`
UPDATE broker_delivery d SET attempt = u.attempt, next_attempt_at = u.next, lease_until = NULL, last_error = u.err,
       event = coalesce(u.event, d.event)
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::bytea[]) AS u(id, attempt, next, err, event)
WHERE d.id = u.id`, failedIDs, attempts, nexts, errs, rewrites)
		}
		pb.Queue(`COMMIT`)
		err = b.sendOutcomes(ctx, pb, len(rows), &ids)
	}
	b.held.remove(all...)
	d.release(int64(len(batch)))
	if err != nil {
		b.releaseReservations(rows)
		b.log.Error("broker: record delivery results failed; the rows will be redelivered after their lease", "trigger", d.key, "rows", len(batch), "error", err)
		d.poke()
		return
	}
	if len(rows) > 0 {
		b.afterInsert(rows, ids)
	}
	for _, r := range batch {
		switch r.outcome {
		case delivered:
			d.mDelivered.Inc()
		case deadLettered:
			d.mDeadLettered.Inc()
		case dropped:
			d.mDropped.Inc()
		case retry:
			d.scheduleWake(r.next)
		}
	}
	if d.ordered || d.backlog.Load() {
		d.poke()
	}
}

// sendOutcomes runs the finisher's batch and reads back the reply ids. A
// failure anywhere aborts the transaction; pgxpool then discards the
// connection (it is not idle), so nothing half-done is committed.
func (b *Broker) sendOutcomes(ctx context.Context, batch *pgx.Batch, replies int, ids *[]int64) error {
	br := b.pool.SendBatch(ctx, batch)
	defer br.Close()
	for i := range batch.Len() {
		if replies > 0 && i == 2 {
			q, err := br.Query()
			if err != nil {
				return fmt.Errorf("ingest replies: %w", err)
			}
			if *ids, err = collectIDs(q, replies); err != nil {
				return fmt.Errorf("ingest replies: %w", err)
			}
			continue
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("record outcomes (statement %d): %w", i+1, err)
		}
	}
	return br.Close()
}

func (d *dispatcher) scheduleWake(t time.Time) {
	d.retryMu.Lock()
	heap.Push(&d.retries, t.Add(5*time.Millisecond)) // a hair after due, so the claim finds it due
	d.retryMu.Unlock()
	d.poke()
}

// nextWake pops due retry times and returns how long until the next one.
func (d *dispatcher) nextWake(max time.Duration) time.Duration {
	d.retryMu.Lock()
	defer d.retryMu.Unlock()
	now := time.Now()
	for len(d.retries) > 0 && !d.retries[0].After(now) {
		heap.Pop(&d.retries)
	}
	if len(d.retries) > 0 {
		if w := d.retries[0].Sub(now); w < max {
			return w
		}
	}
	return max
}

const claimUnordered = `
UPDATE broker_delivery SET lease_until = now() + make_interval(secs => $3)
WHERE id IN (
  SELECT id FROM broker_delivery
  WHERE trigger = $1 AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
  ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, event, attempt, ingested_at`

// claimOrdered claims, per partition key, the oldest pending rows up to the
// first one that is not due or is held (at most $4 per key), so a key's events
// are handed to one worker in order and a failing event blocks only its key.
// Rows without a key are independent. Window functions rule out FOR UPDATE;
// the outer lease condition, re-checked on the locked row, keeps two
// processes from claiming the same row.
const claimOrdered = `
UPDATE broker_delivery SET lease_until = now() + make_interval(secs => $3)
WHERE id IN (SELECT id FROM (
  (SELECT id FROM (
     SELECT id,
            row_number() OVER w AS rn,
            bool_and(next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())) OVER w AS ready
     FROM broker_delivery
     WHERE trigger = $1 AND partition_key IS NOT NULL
     WINDOW w AS (PARTITION BY partition_key ORDER BY id)) c
   WHERE ready AND rn <= $4
   ORDER BY id LIMIT $2)
  UNION ALL
  (SELECT id FROM broker_delivery
   WHERE trigger = $1 AND partition_key IS NULL AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
   ORDER BY id LIMIT $2)) u LIMIT $2)
  AND (lease_until IS NULL OR lease_until < now())
RETURNING id, event, attempt, ingested_at, partition_key`

// poll claims due rows that are not in memory: retries, rows stored while the
// buffer was full, ordered triggers' rows and rows a crashed process left.
func (d *dispatcher) poll(ctx context.Context) {
	b := d.b
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
		for ctx.Err() == nil {
			room := d.capacity - d.inHand.Load()
			if room <= 0 {
				break
			}
			n := min(room, 500)
			if !d.reserve(n) {
				break
			}
			d.backlog.Store(false)
			got, claimed, err := d.claim(ctx, n)
			d.release(n - int64(claimed))
			if err != nil {
				if ctx.Err() == nil {
					b.log.Warn("broker: claim deliveries", "trigger", d.key, "error", err)
				}
				break
			}
			for _, dl := range got {
				d.queue <- dl
			}
			if int64(claimed) < n {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d.nextWake(b.cfg.Poll))
	}
}

func (d *dispatcher) claim(ctx context.Context, n int64) (units []*delivery, claimed int, err error) {
	var rows pgx.Rows
	if d.ordered {
		rows, err = d.b.pool.Query(ctx, claimOrdered, d.key, n, d.b.cfg.Lease.Seconds(), orderedPerKey)
	} else {
		rows, err = d.b.pool.Query(ctx, claimUnordered, d.key, n, d.b.cfg.Lease.Seconds())
	}
	if err != nil {
		return nil, 0, err
	}
	var out []*delivery
	var ids []int64
	keys := map[*delivery]*string{}
	for rows.Next() {
		var dl delivery
		var raw []byte
		var key *string
		dest := []any{&dl.id, &raw, &dl.attempt, &dl.ingested}
		if d.ordered {
			dest = append(dest, &key)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, 0, err
		}
		if err := json.Unmarshal(raw, &dl.ev); err != nil {
			// Cannot happen for rows the ingress wrote; keep the row and say so.
			d.b.log.Error("broker: undecodable stored event; leaving it leased", "trigger", d.key, "row", dl.id, "error", err)
			continue
		}
		out = append(out, &dl)
		ids = append(ids, dl.id)
		keys[&dl] = key
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	d.b.held.add(ids...)
	if !d.ordered {
		return out, len(out), nil
	}
	// RETURNING does not promise order: sort, then chain each key's rows
	// behind its oldest so one worker delivers them in turn.
	slices.SortFunc(out, func(a, b *delivery) int { return cmp.Compare(a.id, b.id) })
	heads := map[string]*delivery{}
	for _, dl := range out {
		k := keys[dl]
		if k == nil {
			units = append(units, dl)
			continue
		}
		if h, ok := heads[*k]; ok {
			h.then = append(h.then, dl)
			continue
		}
		heads[*k] = dl
		units = append(units, dl)
	}
	return units, len(out), nil
}

// orderedPerKey bounds how many rows of one key a claim hands to a worker.
const orderedPerKey = 64

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
