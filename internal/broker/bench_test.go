package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/overture-music/overture/functions/noop"
	"github.com/overture-music/overture/internal/benchmark"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/identity/identitytest"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// The broker benchmark: events/s delivered durably to a no-op function, in
// process and over HTTP, beside a plain PostgreSQL INSERT+DELETE queue on the
// same server; then ingress-to-handler latency at half the in-process rate.
// hack/bench/broker.sh runs TestBrokerBenchReport against a PostgreSQL with
// fsync and synchronous_commit on; the Benchmark* functions run the same
// loops under `go test -bench` on the (fsync-off) test server.

const benchPublishers = 128

var benchCommitters = 0 // the default

var benchYAML = brokertest.NoopYAML("music.overture.bench.") + brokertest.AllowYAML("bench", identity.Subject("bench"), "music.overture.bench.")

type benchBroker struct {
	*Broker
	stop func()
	auth *identitytest.Authority
}

func startBench(tb testing.TB, pool *pgxpool.Pool, h function.Handler) *benchBroker {
	tb.Helper()
	set := &manifest.Set{}
	if err := set.Add("bench.yaml", []byte(benchYAML)); err != nil {
		tb.Fatal(err)
	}
	auth := identitytest.New(tb)
	b, err := New(context.Background(), Config{
		Pool: pool, Objects: set, Log: telemetry.NewLogger(io.Discard, slog.LevelError), Verifier: auth.Verifier,
		Resolve:    func(string) (function.Handler, bool) { return h, true },
		Committers: benchCommitters,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	return &benchBroker{b, func() { cancel(); <-done }, auth}
}

func benchEvent(i int) event.Event {
	e := event.New()
	e.SetID(fmt.Sprintf("bench-%d", i))
	e.SetType("music.overture.bench.tick.v1")
	e.SetSource("/overture/bench")
	e.SetTime(time.Now())
	_ = e.SetData("application/json", map[string]int{"i": i})
	return e
}

func (b *benchBroker) delivered() float64 {
	return testutil.ToFloat64(b.m.delivered.WithLabelValues("overture/noop"))
}

// parallel runs fn(i) for i in [0,n) on benchPublishers goroutines.
func parallel(n int, fn func(i int) error) error {
	return benchmark.Parallel(n, benchPublishers, fn)
}

// runInProcess publishes n events with Publish and returns the time until the
// last one was delivered.
func runInProcess(tb testing.TB, pool *pgxpool.Pool, n int) time.Duration {
	b := startBench(tb, pool, noop.New())
	defer b.stop()
	base := b.delivered()
	start := time.Now()
	if err := parallel(n, func(i int) error { return b.Publish(context.Background(), benchEvent(i)) }); err != nil {
		tb.Fatal(err)
	}
	waitDelivered(tb, b, base+float64(n))
	return time.Since(start)
}

// runHTTP posts n binary-mode events to the ingress over loopback TCP.
func runHTTP(tb testing.TB, pool *pgxpool.Pool, n int) time.Duration {
	return postToIngress(tb, pool, n, n, func(url string, i int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(fmt.Sprintf(`{"i":%d}`, i))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", fmt.Sprintf("bench-%d", i))
		req.Header.Set("Ce-Type", "music.overture.bench.tick.v1")
		req.Header.Set("Ce-Source", "/overture/bench")
		return req
	})
}

// runHTTPBatch posts n events to the ingress in batch mode, per events per
// request (what function.HTTPPublisher sends for several events).
func runHTTPBatch(tb testing.TB, pool *pgxpool.Pool, n, per int) time.Duration {
	return postToIngress(tb, pool, n/per, n/per*per, func(url string, i int) *http.Request {
		var body bytes.Buffer
		body.WriteByte('[')
		for j := range per {
			if j > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"specversion":"1.0","id":"bench-%d-%d","type":"music.overture.bench.tick.v1","source":"/overture/bench","data":{"i":%d}}`, i, j, j)
		}
		body.WriteByte(']')
		req, _ := http.NewRequest(http.MethodPost, url, &body)
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		return req
	})
}

// postToIngress sends the requests request(url, i), i in [0,requests), to the
// ingress of a fresh broker over loopback TCP from benchPublishers clients,
// each expecting 202, and returns the time until all the events they carry
// (events in all) were delivered.
func postToIngress(tb testing.TB, pool *pgxpool.Pool, requests, events int, request func(url string, i int) *http.Request) time.Duration {
	b := startBench(tb, pool, noop.New())
	defer b.stop()
	srv := httptest.NewServer(b)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchPublishers}}
	url := srv.URL + "/overture/default"
	// One token for the run, as a producer reuses its projected token.
	bearer := "Bearer " + b.auth.Token(tb, "bench")
	base := b.delivered()
	start := time.Now()
	err := parallel(requests, func(i int) error {
		req := request(url, i)
		req.Header.Set("Authorization", bearer)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	waitDelivered(tb, b, base+float64(events))
	return time.Since(start)
}

// runQueue is the reference: the same number of events through the simplest
// durable PostgreSQL queue — each event INSERTed (committed) and then DELETEd
// by id (committed), with the same concurrency.
func runQueue(tb testing.TB, pool *pgxpool.Pool, n int) time.Duration {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_queue (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event bytea NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	payload, _ := benchEvent(0).MarshalJSON()
	start := time.Now()
	err := parallel(n, func(int) error {
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO bench_queue (event) VALUES ($1) RETURNING id`, payload).Scan(&id); err != nil {
			return err
		}
		_, err := pool.Exec(ctx, `DELETE FROM bench_queue WHERE id = $1`, id)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

func waitDelivered(tb testing.TB, b *benchBroker, want float64) {
	deadline := time.Now().Add(5 * time.Minute)
	for b.delivered() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("delivered %v of %v", b.delivered(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// runLatency publishes at rate events/s for d and returns the sorted
// ingress-to-handler latencies.
func runLatency(tb testing.TB, pool *pgxpool.Pool, rate float64, d time.Duration) []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	h := handlerFunc(func(_ context.Context, e event.Event) (*event.Event, error) {
		l := time.Since(e.Time())
		mu.Lock()
		lat = append(lat, l)
		mu.Unlock()
		return nil, nil
	})
	b := startBench(tb, pool, h)
	defer b.stop()
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	sem := make(chan struct{}, benchPublishers*4)
	var wg sync.WaitGroup
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := b.Publish(context.Background(), benchEvent(i)); err != nil {
				tb.Error(err)
			}
		}()
	}
	wg.Wait()
	waitDelivered(tb, b, float64(n))
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	return lat
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func benchPool(tb testing.TB, url string) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = 40
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func BenchmarkDeliverInProcess(b *testing.B) {
	d := runInProcess(b, benchPool(b, testenv.Postgres(b)), b.N)
	b.ReportMetric(float64(b.N)/d.Seconds(), "events/s")
}

func BenchmarkDeliverHTTP(b *testing.B) {
	d := runHTTP(b, benchPool(b, testenv.Postgres(b)), b.N)
	b.ReportMetric(float64(b.N)/d.Seconds(), "events/s")
}

func BenchmarkReferenceQueue(b *testing.B) {
	d := runQueue(b, benchPool(b, testenv.Postgres(b)), b.N)
	b.ReportMetric(float64(b.N)/d.Seconds(), "events/s")
}

// TestBrokerBenchReport is the driver hack/bench/broker.sh runs; it writes the
// markdown section to $OVERTURE_BENCH_BROKER_OUT.
func TestBrokerBenchReport(t *testing.T) {
	out := benchmark.Output(t, "OVERTURE_BENCH_BROKER_OUT", "hack/bench/broker.sh")
	n := benchmark.Size("OVERTURE_BENCH_BROKER_EVENTS", 30000)
	pg := benchmark.Postgres(t) // durable: fsync and synchronous_commit on
	db := func(name string) *pgxpool.Pool { return benchPool(t, pg.Database(t, name)) }
	loadBefore := loadavg()
	// Warm up (connections, code paths), then measure each on a fresh database.
	runInProcess(t, db("warm"), 2000)
	queue := runQueue(t, db("queue"), n)
	inproc := runInProcess(t, db("inproc"), n)
	overHTTP := runHTTP(t, db("http"), n)
	overBatch := runHTTPBatch(t, db("batch"), n, 10)
	qRate := float64(n) / queue.Seconds()
	inRate := float64(n) / inproc.Seconds()
	httpRate := float64(n) / overHTTP.Seconds()
	batchRate := float64(n/10*10) / overBatch.Seconds()
	half := inRate / 2
	lat := runLatency(t, db("latency"), half, 10*time.Second)
	p50, p99, pmax := benchmark.Percentile(lat, 0.50), benchmark.Percentile(lat, 0.99), lat[len(lat)-1]
	t.Logf("queue %.0f/s, in-process %.0f/s, HTTP %.0f/s, HTTP batch %.0f/s, latency at %.0f/s: p50 %v p99 %v", qRate, inRate, httpRate, batchRate, half, p50, p99)

	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	var md strings.Builder
	fmt.Fprintf(&md, "## Embedded broker\n\n")
	fmt.Fprintf(&md, "Command: `hack/bench/broker.sh` (runs `go test ./internal/broker -run TestBrokerBenchReport`), %s UTC.\n", time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&md, "Machine: %s; PostgreSQL started for the run with fsync and synchronous_commit **on**, on the same machine.\n\n", benchmark.Machine())
	fmt.Fprintf(&md, "Load average (1/5/15 min) before: %s, after: %s — other work on the machine inflates latency.\n\n", loadBefore, loadavg())
	fmt.Fprintf(&md, "%d events per run, %d concurrent publishers, one Trigger to a no-op function. An event counts when the\n", n, benchPublishers)
	fmt.Fprintf(&md, "ingress acknowledged it (committed) **and** the function returned and the delivery row was deleted.\n")
	fmt.Fprintf(&md, "The HTTP runs include the HTTP client, on the same two cores. Go benchmarks of the same loops:\n")
	fmt.Fprintf(&md, "`go test ./internal/broker -run XXX -bench .` (on the fsync-off test server).\n\n")
	fmt.Fprintf(&md, "| Run | Events/s | Ratio to reference |\n|---|---:|---:|\n")
	fmt.Fprintf(&md, "| Reference: plain PostgreSQL queue, INSERT then DELETE per event (2 commits) | %.0f | 1.00 |\n", qRate)
	fmt.Fprintf(&md, "| Broker, in-process ingress (`Publish`) | %.0f | %.2f |\n", inRate, inRate/qRate)
	fmt.Fprintf(&md, "| Broker, HTTP ingress (binary mode, one event per request, loopback TCP) | %.0f | %.2f |\n", httpRate, httpRate/qRate)
	fmt.Fprintf(&md, "| Broker, HTTP ingress (batch mode, 10 events per request) | %.0f | %.2f |\n\n", batchRate, batchRate/qRate)
	fmt.Fprintf(&md, "Ingress-to-handler latency at half the in-process rate (%.0f events/s paced for 10 s, %d events):\n", half, len(lat))
	fmt.Fprintf(&md, "p50 %s, p99 %s, max %s.\n\n", ms(p50), ms(p99), ms(pmax))
	goal := benchmark.Goal
	fmt.Fprintf(&md, "Goals (2 cores): >= 5,000 events/s — in-process %s, HTTP one event per request %s, HTTP batch %s; p99 < 50 ms at half rate — %s.\n",
		goal(inRate >= 5000), goal(httpRate >= 5000), goal(batchRate >= 5000), goal(p99 < 50*time.Millisecond))
	if err := os.WriteFile(out, []byte(md.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
