package broker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity/identitytest"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) {
	var child crashConfig
	if ok, err := testenv.ChildConfig(crashChildEnv, &child); ok {
		if err == nil {
			err = crashChild(child)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testenv.Main(m)
}

// handlerFunc adapts a function to function.Handler.
type handlerFunc func(ctx context.Context, e event.Event) (*event.Event, error)

func (f handlerFunc) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	return f(ctx, e)
}

// recorder is a subscriber that records what it receives and when.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
	times  []time.Time
	fn     func(n int, e event.Event) (*event.Event, error) // n: calls so far, 0-based
}

func (r *recorder) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r.mu.Lock()
	n := len(r.events)
	r.events = append(r.events, e)
	r.times = append(r.times, time.Now())
	fn := r.fn
	r.mu.Unlock()
	if fn != nil {
		return fn(n, e)
	}
	return nil, nil
}

func (r *recorder) got() ([]event.Event, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...), append([]time.Time(nil), r.times...)
}

func (r *recorder) ids() []string {
	evs, _ := r.got()
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID()
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// brokerYAML is the Broker the tests' Triggers attach to.
const brokerYAML = brokertest.BrokerYAML

// trigger returns the YAML of a Trigger to function fn with the given spec
// lines (indented by two spaces under spec).
func trigger(name, fn, spec string, annotations ...string) string {
	ann := ""
	if len(annotations) > 0 {
		ann = "  annotations: {" + strings.Join(annotations, ", ") + "}\n"
	}
	return fmt.Sprintf(`
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: %s
  namespace: overture
%sspec:
  broker: default
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: %s}}
%s`, name, ann, fn, spec)
}

type testBroker struct {
	*Broker
	pool *pgxpool.Pool
	reg  *prometheus.Registry
	stop func()
	auth *identitytest.Authority // the issuer the broker's Verifier trusts
}

// testProducer is the workload the tests' HTTP posts authenticate as.
const testProducer = "producer"

// start builds a broker over a fresh database from YAML and functions and runs
// it until the test ends.
func start(t *testing.T, yaml string, fns map[string]function.Handler, tweak ...func(*Config)) *testBroker {
	t.Helper()
	return startOn(t, newPool(t), yaml, fns, tweak...)
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func mustSet(t *testing.T, yaml string) *manifest.Set {
	t.Helper()
	set := &manifest.Set{}
	if err := set.Add(t.Name()+".yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	return set
}

// startOn builds and runs a broker. Its Verifier trusts a fresh test
// authority; unless yaml has EventPolicies of its own, every workload of
// namespace overture may send everything (tests about authorization bring
// their own policies).
func startOn(t *testing.T, pool *pgxpool.Pool, yaml string, fns map[string]function.Handler, tweak ...func(*Config)) *testBroker {
	t.Helper()
	if !strings.Contains(yaml, "kind: EventPolicy") {
		yaml += brokertest.AllowYAML("tests-allow-all", "system:serviceaccount:overture:*", "")
	}
	set := mustSet(t, yaml)
	reg := prometheus.NewRegistry()
	auth := identitytest.New(t)
	cfg := Config{
		Pool: pool, Objects: set, Registerer: reg, Verifier: auth.Verifier,
		Log:     telemetry.NewLogger(testWriter{t}, slog.LevelWarn),
		Resolve: func(name string) (function.Handler, bool) { h, ok := fns[name]; return h, ok },
		Lease:   2 * time.Second, Poll: 100 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return within 30 s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &testBroker{Broker: b, pool: pool, reg: reg, stop: stop, auth: auth}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/overture/test")
	_ = e.SetData("application/json", map[string]string{"id": id})
	return e
}

// eventually waits until cond holds (testenv.WaitFor), for at least two
// minutes whatever timeout says: the tests run with -race beside others.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, max(timeout, 2*time.Minute), what, cond)
}

func (tb *testBroker) pending(t *testing.T) int {
	t.Helper()
	var n int
	if err := tb.pool.QueryRow(context.Background(), `SELECT count(*) FROM broker_delivery`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func counter(c *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}
