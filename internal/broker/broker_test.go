package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/telemetry"
)

func TestFiltersRouteEachEventToTheTriggersThatWantIt(t *testing.T) {
	t.Parallel()
	fns := map[string]*recorder{}
	handlers := map[string]function.Handler{}
	for _, n := range []string{"legacy", "exact", "prefix", "suffix", "all", "any", "not", "override", "everything"} {
		fns[n] = &recorder{}
		handlers[n] = fns[n]
	}
	yaml := brokerYAML +
		trigger("legacy", "legacy", "  filter: {attributes: {type: music.overture.a.created.v1, source: /overture/test}}") +
		trigger("exact", "exact", "  filters: [{exact: {type: music.overture.a.created.v1}}]") +
		trigger("prefix", "prefix", "  filters: [{prefix: {type: music.overture.b.}}]") +
		trigger("suffix", "suffix", "  filters: [{suffix: {type: .deleted.v1}}]") +
		trigger("all", "all", "  filters: [{all: [{prefix: {type: music.overture.}}, {exact: {subject: vip}}]}]") +
		trigger("any", "any", "  filters: [{any: [{exact: {type: music.overture.a.created.v1}}, {exact: {region: eu}}]}]") +
		trigger("not", "not", "  filters: [{not: {prefix: {type: music.overture.a.}}}]") +
		trigger("override", "override", "  filter: {attributes: {type: music.overture.a.created.v1}}\n  filters: [{exact: {type: music.overture.b.deleted.v1}}]") +
		trigger("everything", "everything", "")
	tb := start(t, yaml, handlers)

	a := newEvent("a", "music.overture.a.created.v1")
	b := newEvent("b", "music.overture.b.deleted.v1")
	vip := newEvent("vip", "music.overture.c.updated.v1")
	vip.SetSubject("vip")
	eu := newEvent("eu", "other.thing.v1")
	eu.SetExtension("region", "eu")
	if err := tb.Publish(context.Background(), a, b, vip, eu); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"legacy":     {"a"},
		"exact":      {"a"},
		"prefix":     {"b"},
		"suffix":     {"b"},
		"all":        {"vip"},
		"any":        {"a", "eu"},
		"not":        {"b", "eu", "vip"},
		"override":   {"b"},
		"everything": {"a", "b", "eu", "vip"},
	}
	eventually(t, 10*time.Second, "every trigger to receive its events", func() bool {
		for n, ids := range want {
			if fns[n].count() < len(ids) {
				return false
			}
		}
		return tb.pending(t) == 0
	})
	// Nothing more may arrive: every delivery row is written when the event
	// is published and deleted once acknowledged, so none is left to run.
	for n, ids := range want {
		got := fns[n].ids()
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Errorf("trigger %s got %v, want %v", n, got, ids)
		}
	}
	if got := counter(tb.m.ingested, "overture/default", "overture/everything"); got != 4 {
		t.Errorf("ingested{everything} = %v, want 4", got)
	}
}

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		policy string
		gaps   []time.Duration // before retry 1, 2, 3
	}{
		{"linear", []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 600 * time.Millisecond}},
		{"exponential", []time.Duration{400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}},
	} {
		t.Run(c.policy, func(t *testing.T) {
			t.Parallel()
			flaky := &recorder{fn: func(n int, e event.Event) (*event.Event, error) {
				if n < 3 {
					return nil, fmt.Errorf("attempt %d fails", n+1)
				}
				return nil, nil
			}}
			yaml := brokerYAML + trigger("flaky", "flaky", fmt.Sprintf("  delivery: {retry: 3, backoffPolicy: %s, backoffDelay: PT0.2S}", c.policy))
			tb := start(t, yaml, map[string]function.Handler{"flaky": flaky})
			if err := tb.Publish(context.Background(), newEvent("r1", "music.overture.x.y.v1")); err != nil {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "the fourth attempt to succeed", func() bool { return flaky.count() == 4 && tb.pending(t) == 0 })
			_, times := flaky.got()
			for i, want := range c.gaps {
				gap := times[i+1].Sub(times[i])
				// Never early; late by at most the poll interval plus scheduling slack.
				if gap < want-10*time.Millisecond || gap > want+800*time.Millisecond {
					t.Errorf("%s: gap before retry %d = %v, want about %v", c.policy, i+1, gap, want)
				}
			}
			if got := counter(tb.m.failed, "overture/flaky"); got != 3 {
				t.Errorf("failures = %v, want 3", got)
			}
			if got := counter(tb.m.delivered, "overture/flaky"); got != 1 {
				t.Errorf("delivered = %v, want 1", got)
			}
		})
	}
}

func TestDeadLetterCarriesKnativeErrorExtensions(t *testing.T) {
	t.Parallel()
	failing := &recorder{fn: func(int, event.Event) (*event.Event, error) {
		return nil, errors.New("catalog row 7 is locked")
	}}
	dls := &recorder{}
	yaml := brokerYAML + trigger("failing", "failing", `  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.05S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}`) +
		trigger("nodls", "failing", "  filters: [{exact: {type: music.overture.nodls.v1}}]\n  delivery: {retry: 1, backoffDelay: PT0.05S}")
	tb := start(t, yaml, map[string]function.Handler{"failing": failing, "dls": dls})
	orig := newEvent("d1", "music.overture.x.failed.v1")
	if err := tb.Publish(context.Background(), orig); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the dead-letter sink to get the event", func() bool { return dls.count() == 1 })
	evs, _ := dls.got()
	got := evs[0]
	if got.ID() != "d1" || got.Source() != orig.Source() || got.Type() != orig.Type() || string(got.Data()) != string(orig.Data()) {
		t.Errorf("dead letter is not the original event: %v", got)
	}
	ext := got.Extensions()
	if ext[ExtErrorDest] != "http://failing.overture.svc.cluster.local" {
		t.Errorf("%s = %v", ExtErrorDest, ext[ExtErrorDest])
	}
	if ext[ExtErrorCode] != "500" {
		t.Errorf("%s = %v, want 500", ExtErrorCode, ext[ExtErrorCode])
	}
	data, err := base64.StdEncoding.DecodeString(fmt.Sprint(ext[ExtErrorData]))
	if err != nil || !strings.Contains(string(data), "catalog row 7 is locked") {
		t.Errorf("%s = %v (%q, %v), want base64 of the error", ExtErrorData, ext[ExtErrorData], data, err)
	}
	if n := failing.count(); n != 3 {
		t.Errorf("subscriber called %d times, want 3 (1 + 2 retries)", n)
	}
	eventually(t, 5*time.Second, "the row to be deleted", func() bool { return tb.pending(t) == 0 })
	if got := counter(tb.m.deadLettered, "overture/failing"); got != 1 {
		t.Errorf("dead_lettered = %v, want 1", got)
	}

	// Without a dead-letter sink the event is dropped, logged and counted.
	if err := tb.Publish(context.Background(), newEvent("d2", "music.overture.nodls.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the event to be dropped", func() bool {
		return counter(tb.m.dropped, "overture/nodls") == 1 && tb.pending(t) == 0
	})
}

func TestTimeoutFailsTheDelivery(t *testing.T) {
	t.Parallel()
	// The handler ignores its context on purpose: it returns only when the
	// test ends.
	release := make(chan struct{})
	slow := &recorder{fn: func(int, event.Event) (*event.Event, error) {
		<-release
		return nil, nil
	}}
	dls := &recorder{}
	yaml := brokerYAML + trigger("slow", "slow", `  delivery:
    retry: 1
    backoffDelay: PT0.05S
    timeout: PT0.2S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}`)
	tb := start(t, yaml, map[string]function.Handler{"slow": slow, "dls": dls})
	t.Cleanup(func() { close(release) }) // before the broker stops: it waits for its calls
	start := time.Now()
	if err := tb.Publish(context.Background(), newEvent("t1", "music.overture.x.slow.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the timed-out event to be dead-lettered", func() bool { return dls.count() == 1 })
	if took := time.Since(start); took > 1800*time.Millisecond {
		t.Errorf("two 0.2 s timeouts took %v: the broker waited for the handler", took)
	}
	evs, _ := dls.got()
	if code := evs[0].Extensions()[ExtErrorCode]; code != "504" {
		t.Errorf("knativeerrorcode = %v, want 504", code)
	}
	if slow.count() != 2 {
		t.Errorf("subscriber called %d times, want 2", slow.count())
	}
}

func TestReplyReentersTheBroker(t *testing.T) {
	t.Parallel()
	tp := telemetry.NewTraceparent()
	first := &recorder{fn: func(n int, e event.Event) (*event.Event, error) {
		r := newEvent("reply-of-"+e.ID(), "music.overture.step.two.v1")
		return &r, nil
	}}
	second := &recorder{}
	badReply := &recorder{fn: func(int, event.Event) (*event.Event, error) {
		r := event.New() // no id, source or type: invalid
		return &r, nil
	}}
	dls := &recorder{}
	yaml := brokerYAML +
		trigger("first", "first", "  filters: [{exact: {type: music.overture.step.one.v1}}]") +
		trigger("second", "second", "  filters: [{exact: {type: music.overture.step.two.v1}}]") +
		trigger("bad", "bad", "  filters: [{exact: {type: music.overture.bad.v1}}]\n  delivery: {retry: 0, deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}}")
	tb := start(t, yaml, map[string]function.Handler{"first": first, "second": second, "bad": badReply, "dls": dls})
	one := newEvent("s1", "music.overture.step.one.v1")
	one.SetExtension(telemetry.TraceparentExtension, tp)
	if err := tb.Publish(context.Background(), one, newEvent("b1", "music.overture.bad.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reply to reach the second trigger", func() bool { return second.count() == 1 })
	evs, _ := second.got()
	if evs[0].ID() != "reply-of-s1" {
		t.Errorf("second trigger got %s", evs[0].ID())
	}
	if got := evs[0].Extensions()[telemetry.TraceparentExtension]; got != tp {
		t.Errorf("reply traceparent = %v, want the original %s", got, tp)
	}
	eventually(t, 10*time.Second, "the invalid reply to dead-letter its event", func() bool { return dls.count() == 1 })
	dl, _ := dls.got()
	if dl[0].ID() != "b1" || dl[0].Extensions()[ExtErrorCode] != "502" {
		t.Errorf("dead letter for an invalid reply: id %s code %v, want b1 502", dl[0].ID(), dl[0].Extensions()[ExtErrorCode])
	}
}

func TestHandlerPublishesThroughItsContext(t *testing.T) {
	t.Parallel()
	var pubErr error
	sink := &recorder{}
	emitter := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		p := function.PublisherFrom(ctx)
		if p == nil {
			pubErr = errors.New("no publisher in the handler context")
			return nil, pubErr
		}
		return nil, p.Publish(ctx, newEvent("child-1", "music.overture.child.v1"), newEvent("child-2", "music.overture.child.v1"))
	})
	yaml := brokerYAML +
		trigger("emitter", "emitter", "  filters: [{exact: {type: music.overture.parent.v1}}]") +
		trigger("sink", "sink", "  filters: [{exact: {type: music.overture.child.v1}}]")
	tb := start(t, yaml, map[string]function.Handler{"emitter": emitter, "sink": sink})
	if err := tb.Publish(context.Background(), newEvent("p", "music.overture.parent.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both published events to arrive", func() bool { return sink.count() == 2 })
	if pubErr != nil {
		t.Fatal(pubErr)
	}
}

func TestOrderedDeliveryPerPartitionKey(t *testing.T) {
	t.Parallel()
	type rec struct {
		key string
		seq int
		at  time.Time
	}
	var firstBadOK time.Time
	log := make(chan rec, 1000)
	failedOnce := 0
	h := &recorder{}
	h.fn = func(n int, e event.Event) (*event.Event, error) {
		key := e.Extensions()["partitionkey"].(string)
		var seq int
		fmt.Sscan(strings.TrimPrefix(e.ID(), key+"-"), &seq)
		if key == "bad" && seq == 1 && failedOnce < 3 {
			failedOnce++ // only one delivery of a key is in flight, so no race
			return nil, errors.New("bad-1 fails three times")
		}
		if key == "bad" && seq == 1 {
			firstBadOK = time.Now()
		}
		log <- rec{key, seq, time.Now()}
		return nil, nil
	}
	yaml := brokerYAML + trigger("ordered", "ordered", "  delivery: {retry: 5, backoffPolicy: linear, backoffDelay: PT0.2S}",
		"kafka.eventing.knative.dev/delivery.order: ordered")
	tb := start(t, yaml, map[string]function.Handler{"ordered": h})
	const perKey = 15
	var events []event.Event
	for i := 1; i <= perKey; i++ {
		for _, k := range []string{"bad", "a", "c"} {
			e := newEvent(fmt.Sprintf("%s-%d", k, i), "music.overture.ordered.v1")
			e.SetExtension("partitionkey", k)
			events = append(events, e)
		}
	}
	// Publish in several calls, as separate producers would.
	for i := 0; i < len(events); i += 9 {
		if err := tb.Publish(context.Background(), events[i:min(i+9, len(events))]...); err != nil {
			t.Fatal(err)
		}
	}
	var got []rec
	deadline := time.After(30 * time.Second)
	for len(got) < 3*perKey {
		select {
		case r := <-log:
			got = append(got, r)
		case <-deadline:
			t.Fatalf("only %d of %d deliveries", len(got), 3*perKey)
		}
	}
	last := map[string]int{}
	var lastOther time.Time
	for _, r := range got {
		if r.seq != last[r.key]+1 {
			t.Errorf("key %s: delivered %d after %d", r.key, r.seq, last[r.key])
		}
		last[r.key] = r.seq
		if r.key != "bad" && r.at.After(lastOther) {
			lastOther = r.at
		}
	}
	// Keys a and c were not held up by the failing key: they were done
	// before bad-1 finally succeeded (it needed 0.2+0.4+0.6 s of backoff).
	if !lastOther.Before(firstBadOK) {
		t.Errorf("other keys finished at %v, after bad-1 succeeded at %v: a failing key blocked them", lastOther, firstBadOK)
	}
}

func TestPingSourceFires(t *testing.T) {
	t.Parallel()
	viaBroker := &recorder{}
	direct := &recorder{}
	yaml := brokerYAML + trigger("pings", "pings", "  filters: [{exact: {type: dev.knative.sources.ping}}]") + `
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: every-second, namespace: overture}
spec:
  schedule: "@every 1s"
  contentType: application/json
  data: '{"job":"charts"}'
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
  ceOverrides: {extensions: {job: charts}}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: to-service, namespace: overture}
spec:
  schedule: "* * * * * *"
  timezone: Europe/Moscow
  dataBase64: aGVsbG8=
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: direct}}
`
	tb := start(t, yaml, map[string]function.Handler{"pings": viaBroker, "direct": direct})
	eventually(t, 5*time.Second, "two ticks through the broker and two direct", func() bool {
		return viaBroker.count() >= 2 && direct.count() >= 2
	})
	evs, _ := viaBroker.got()
	e := evs[0]
	if e.Type() != "dev.knative.sources.ping" || e.Source() != "/apis/v1/namespaces/overture/pingsources/every-second" {
		t.Errorf("ping event type %q source %q", e.Type(), e.Source())
	}
	if string(e.Data()) != `{"job":"charts"}` || e.DataContentType() != "application/json" || e.Extensions()["job"] != "charts" {
		t.Errorf("ping event data %q content type %q extensions %v", e.Data(), e.DataContentType(), e.Extensions())
	}
	if evs[0].ID() == evs[1].ID() {
		t.Error("two ticks share an id")
	}
	d, _ := direct.got()
	if string(d[0].Data()) != "hello" || d[0].Source() != "/apis/v1/namespaces/overture/pingsources/to-service" {
		t.Errorf("direct ping data %q source %q", d[0].Data(), d[0].Source())
	}
	if counter(tb.m.pings, "overture/every-second") < 2 {
		t.Error("ping ticks not counted")
	}
}

func TestNewRejectsUnresolvableSubscribers(t *testing.T) {
	t.Parallel()
	yaml := brokerYAML + trigger("ghost", "ghost", "")
	set := mustSet(t, yaml)
	_, err := New(context.Background(), Config{Pool: newPool(t), Objects: set})
	if err == nil || !strings.Contains(err.Error(), `Service "ghost" does not resolve`) {
		t.Fatalf("New = %v, want an unresolvable-subscriber error", err)
	}
}

// TestDeadLetterSinkFailureIsRetried: when the sink itself fails, the event
// stays stored and the sink — not the subscriber — is tried again, with the
// same error extensions.
func TestDeadLetterSinkFailureIsRetried(t *testing.T) {
	t.Parallel()
	failing := &recorder{fn: func(int, event.Event) (*event.Event, error) { return nil, errors.New("always fails") }}
	dls := &recorder{fn: func(n int, e event.Event) (*event.Event, error) {
		if n < 2 {
			return nil, errors.New("dead-letter store is down")
		}
		return nil, nil
	}}
	yaml := brokerYAML + trigger("failing", "failing", `  delivery:
    retry: 1
    backoffDelay: PT0.05S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}`)
	tb := start(t, yaml, map[string]function.Handler{"failing": failing, "dls": dls})
	if err := tb.Publish(context.Background(), newEvent("x1", "music.overture.x.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the third sink attempt to succeed", func() bool { return dls.count() == 3 && tb.pending(t) == 0 })
	if n := failing.count(); n != 2 {
		t.Errorf("subscriber called %d times, want 2: a failing sink must not re-run the subscriber", n)
	}
	evs, _ := dls.got()
	for i, e := range evs {
		if e.ID() != "x1" || e.Extensions()[ExtErrorCode] != "500" || e.Extensions()[ExtErrorDest] != "http://failing.overture.svc.cluster.local" {
			t.Errorf("sink attempt %d got %s with extensions %v", i+1, e.ID(), e.Extensions())
		}
	}
	if got := counter(tb.m.deadLettered, "overture/failing"); got != 1 {
		t.Errorf("dead_lettered = %v, want 1", got)
	}
}

// TestTriggerDeliveryReplacesBrokerDelivery: a trigger without delivery uses
// the broker's; one with its own uses only its own (no inherited sink).
func TestTriggerDeliveryReplacesBrokerDelivery(t *testing.T) {
	t.Parallel()
	inherits := &recorder{fn: func(int, event.Event) (*event.Event, error) { return nil, errors.New("no") }}
	overrides := &recorder{fn: func(int, event.Event) (*event.Event, error) { return nil, errors.New("no") }}
	dls := &recorder{}
	yaml := `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: overture}
spec:
  delivery:
    retry: 3
    backoffPolicy: linear
    backoffDelay: PT0.02S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}}
` + trigger("inherits", "inherits", "") + trigger("overrides", "overrides", "  delivery: {retry: 1, backoffDelay: PT0.02S}")
	tb := start(t, yaml, map[string]function.Handler{"inherits": inherits, "overrides": overrides, "dls": dls})
	if err := tb.Publish(context.Background(), newEvent("o1", "music.overture.x.v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both triggers to give up", func() bool {
		return counter(tb.m.deadLettered, "overture/inherits") == 1 && counter(tb.m.dropped, "overture/overrides") == 1
	})
	if inherits.count() != 4 || overrides.count() != 2 {
		t.Errorf("attempts: inherits %d (want 4), overrides %d (want 2)", inherits.count(), overrides.count())
	}
	evs, _ := dls.got()
	if len(evs) != 1 || evs[0].Extensions()[ExtErrorDest] != "http://inherits.overture.svc.cluster.local" {
		t.Errorf("dead letters: %v; want only the inheriting trigger's", evs)
	}
}

// TestShutdownDrainsAndReleases: Run returns only after the in-flight call
// finished and was recorded, and gives back rows it buffered but never
// started, so the next process delivers them at once rather than after the
// lease.
func TestShutdownDrainsAndReleases(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	started := make(chan struct{}, 10)
	slow := &recorder{fn: func(n int, e event.Event) (*event.Event, error) {
		started <- struct{}{}
		if n == 0 {
			time.Sleep(500 * time.Millisecond)
		}
		return nil, nil
	}}
	yaml := brokerYAML + trigger("slow", "slow", "")
	one := func(c *Config) { c.Workers = 1; c.Lease = time.Minute; c.Poll = time.Minute }
	tb := startOn(t, pool, yaml, map[string]function.Handler{"slow": slow}, one)
	var evs []event.Event
	for i := range 5 {
		evs = append(evs, newEvent(fmt.Sprint("s", i), "music.overture.x.v1"))
	}
	if err := tb.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	<-started
	stopAt := time.Now()
	tb.stop()
	if took := time.Since(stopAt); took < 300*time.Millisecond {
		t.Errorf("Run returned after %v, before the in-flight call finished", took)
	}
	if err := tb.Publish(context.Background(), newEvent("late", "music.overture.x.v1")); !errors.Is(err, ErrStopped) {
		t.Errorf("Publish after Run = %v, want ErrStopped", err)
	}
	var pending, leased int
	if err := pool.QueryRow(context.Background(), `SELECT count(*), count(lease_until) FROM broker_delivery`).Scan(&pending, &leased); err != nil {
		t.Fatal(err)
	}
	if pending != 4 || leased != 0 {
		t.Fatalf("after shutdown: %d rows pending (want 4: the in-flight one was recorded), %d still leased (want 0)", pending, leased)
	}
	// A successor with a one-minute lease and poll picks them up immediately.
	next := startOn(t, pool, yaml, map[string]function.Handler{"slow": slow}, one)
	eventually(t, 5*time.Second, "the successor to deliver the released rows", func() bool { return next.pending(t) == 0 })
	if n := slow.count(); n != 5 {
		t.Errorf("%d calls, want 5", n)
	}
}

// TestParallelismAnnotation: a trigger's eventing.overture.music/parallelism
// raises the deliveries in flight above the broker's default (Workers).
func TestParallelismAnnotation(t *testing.T) {
	t.Parallel()
	const want = 100
	var (
		mu       sync.Mutex
		inFlight int
		peak     int
		release  = make(chan struct{})
	)
	h := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		if peak == want {
			close(release)
		}
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil, nil
	})
	yaml := brokerYAML + trigger("wide", "wide", "", `eventing.overture.music/parallelism: "100"`)
	tb := start(t, yaml, map[string]function.Handler{"wide": h}, func(c *Config) { c.Workers = 8 })
	var events []event.Event
	for i := range want {
		events = append(events, newEvent(fmt.Sprintf("w-%d", i), "music.overture.wide.v1"))
	}
	if err := tb.Publish(context.Background(), events...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-release:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("at most %d deliveries in flight, want %d", peak, want)
	}
	eventually(t, 10*time.Second, "all delivered", func() bool { return tb.pending(t) == 0 })
}
