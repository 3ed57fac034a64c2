package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var slotSeq atomic.Int64

// recorder is a test function that remembers every event it is given.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
	seen   chan event.Event
}

func newRecorder() *recorder { return &recorder{seen: make(chan event.Event, 1000)} }

func (r *recorder) Handle(_ context.Context, e event.Event) (*event.Event, error) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.seen <- e
	return nil, nil
}

// waitFor returns the first event with id, failing after timeout.
func (r *recorder) waitFor(t *testing.T, id string, timeout time.Duration) event.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-r.seen:
			if e.ID() == id {
				return e
			}
		case <-deadline:
			t.Fatalf("event %s not delivered within %s", id, timeout)
		}
	}
}

func (r *recorder) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.ID() == id {
			return true
		}
	}
	return false
}

// replier answers a ping with a pong, which the platform routes back into the broker.
type replier struct{}

func (replier) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	r := event.New()
	r.SetID("pong-" + e.ID())
	r.SetSource("/overture/replier")
	r.SetType("music.overture.test.pong.v1")
	return &r, nil
}

// echo is a test HTTP service with one public route, dispatched by its own
// mux as real services do.
type echo struct{ started, stopped bool }

func (*echo) Name() string { return "echo" }
func (*echo) Routes() []server.Route {
	return []server.Route{{Method: http.MethodGet, Path: "/v1/echo/{word}"}}
}
func (s *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/echo/{word}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "echo "+r.PathValue("word"))
	})
	mux.ServeHTTP(w, r)
}
func (s *echo) Start(context.Context, map[string]string) error { s.started = true; return nil }
func (s *echo) Stop(context.Context) error                     { s.stopped = true; return nil }

type bundle struct {
	p        *platform.Platform
	rec      *recorder
	echo     *echo
	client   *http.Client
	dbURL    string
	baseline int
}

// externalEnv gives the platform real, test-private dependencies, so it
// starts none itself.
func externalEnv(t *testing.T) map[string]string {
	s3, access, secret := testenv.S3(t)
	smtpURL, apiURL := testenv.SMTP(t)
	// Replication slots are per server, not per database: with the CDC relay
	// every test needs its own.
	slot := fmt.Sprintf("platform_test_%d", slotSeq.Add(1))
	return map[string]string{
		platform.KeyCDCSlot: slot, platform.KeyCDCPublication: slot,
		platform.KeyDatabaseURL: testenv.Postgres(t),
		platform.KeyRedisURL:    testenv.Redis(t),
		platform.KeyS3Endpoint:  s3, platform.KeyS3AccessKey: access, platform.KeyS3SecretKey: secret,
		platform.KeySMTPURL: smtpURL, platform.KeyMailpitURL: apiURL,
	}
}

// start brings up a platform with the test functions and the echo service;
// kv are extra configuration pairs.
func start(t *testing.T, kv ...string) *bundle {
	t.Helper()
	env := externalEnv(t)
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	b := &bundle{rec: newRecorder(), echo: &echo{}, dbURL: env[platform.KeyDatabaseURL]}
	tr := &http.Transport{}
	b.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	b.baseline = runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{
		Env:          env,
		DataDir:      t.TempDir(),
		ManifestDirs: []string{"testdata/brokers", "testdata/triggers"},
		Functions: []functions.Entry{
			{Name: "recorder", New: func() function.Handler { return b.rec }},
			{Name: "replier", New: func() function.Handler { return replier{} }},
		},
		Services: []server.Service{b.echo},
		Log:      telemetry.NewLogger(io.Discard, nil),
	})
	require.NoError(t, err)
	b.p = p
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return b
}

func testEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/overture/platform-test")
	e.SetType(typ)
	_ = e.SetData("application/json", map[string]string{"id": id})
	return e
}

// testProducer is the workload the tests post as (testdata/brokers/eventpolicies.yaml).
const testProducer = "platform-test"

func (b *bundle) postBinary(t *testing.T, id, typ string) *http.Response {
	t.Helper()
	return b.postBinaryAs(t, testProducer, id, typ)
}

// postBinaryAs posts as the workload name ("" for anonymously).
func (b *bundle) postBinaryAs(t *testing.T, name, id, typ string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.p.IngressURL(), strings.NewReader(`{"hello":"world"}`))
	require.NoError(t, err)
	if name != "" {
		tok, err := b.p.Token(name)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", "/overture/platform-test")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestPlatformRoutesEventsAndRequests(t *testing.T) {
	t.Parallel()
	b := start(t)

	t.Run("IngressDeliversToSubscriber", func(t *testing.T) {
		resp := b.postBinary(t, "ev-1", "music.overture.test.hello.v1")
		require.Equal(t, 2, resp.StatusCode/100, "ingress acknowledges with 2xx, got %d", resp.StatusCode)
		e := b.rec.waitFor(t, "ev-1", 30*time.Second)
		require.Equal(t, "music.overture.test.hello.v1", e.Type())
		require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", e.Extensions()["traceparent"])
	})

	t.Run("ReplyGoesBackIntoBroker", func(t *testing.T) {
		b.postBinary(t, "ping-1", "music.overture.test.ping.v1")
		pong := b.rec.waitFor(t, "pong-ping-1", 30*time.Second)
		require.Equal(t, "music.overture.test.pong.v1", pong.Type())
	})

	t.Run("InProcessPublish", func(t *testing.T) {
		require.NoError(t, b.p.PublisherAs(testProducer).Publish(context.Background(), testEvent("inproc-1", "music.overture.test.hello.v1")))
		b.rec.waitFor(t, "inproc-1", 30*time.Second)
		// A workload no policy names may not publish in process either.
		err := b.p.PublisherAs("recorder").Publish(context.Background(), testEvent("inproc-2", "music.overture.test.hello.v1"))
		require.ErrorContains(t, err, "no EventPolicy allows system:serviceaccount:overture:recorder")
	})

	t.Run("AnonymousEventIs401Problem", func(t *testing.T) {
		resp := b.postBinaryAs(t, "", "anon-1", "music.overture.test.hello.v1")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		resp = b.postBinaryAs(t, "recorder", "other-1", "music.overture.test.hello.v1")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})

	t.Run("MalformedEventIs400Problem", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, b.p.IngressURL(), strings.NewReader(`{"specversion":"1.0","id":"","type":42}`))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		tok, err := b.p.Token(testProducer)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := b.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	})

	t.Run("GatewayRoutesToService", func(t *testing.T) {
		body, status := get(t, b.client, b.p.GatewayURL()+"/v1/echo/hi")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "echo hi", body)
		// The service also answers on its own address, with its own health.
		body, status = get(t, b.client, b.p.ServiceURL("echo")+"/v1/echo/there")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "echo there", body)
		_, status = get(t, b.client, b.p.ServiceURL("echo")+"/health/readiness")
		require.Equal(t, http.StatusOK, status)
		require.True(t, b.echo.started, "service Start was not called")
	})

	t.Run("GatewayUnknownRouteIs404Problem", func(t *testing.T) {
		resp, err := b.client.Get(b.p.GatewayURL() + "/v1/nothing-here")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		var prob struct{ Detail string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&prob))
		require.Contains(t, prob.Detail, "GET /v1/nothing-here")
	})

	t.Run("GatewayOwnEndpoints", func(t *testing.T) {
		body, status := get(t, b.client, b.p.GatewayURL()+"/openapi.json")
		require.Equal(t, http.StatusOK, status)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &doc))
		require.Equal(t, "3.1.0", doc["openapi"])
		_, status = get(t, b.client, b.p.GatewayURL()+"/health/readiness")
		require.Equal(t, http.StatusOK, status)
		_, status = get(t, b.client, b.p.GatewayURL()+"/health/liveness")
		require.Equal(t, http.StatusOK, status)
		_, status = get(t, b.client, b.p.GatewayURL()+"/metrics")
		require.Equal(t, http.StatusUnauthorized, status, "/metrics is the operator's, not the public's")
		req, err := http.NewRequest(http.MethodGet, b.p.GatewayURL()+"/metrics", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+b.p.Config()["METRICS_TOKEN"])
		resp, err := b.client.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(raw), `overture_gateway_requests_total{code="200",service="echo"}`)
	})

	t.Run("ConfigCarriesEveryURL", func(t *testing.T) {
		cfg := b.p.Config()
		for _, k := range []string{platform.KeyDatabaseURL, platform.KeyRedisURL, platform.KeyS3Endpoint, platform.KeyS3Region,
			platform.KeySMTPURL, platform.KeyMailpitURL, platform.KeyPublicBaseURL, platform.KeyBrokerURL} {
			require.NotEmpty(t, cfg[k], k)
		}
		require.Equal(t, b.p.GatewayURL(), cfg[platform.KeyPublicBaseURL])
		require.Equal(t, b.p.IngressURL(), cfg[platform.KeyBrokerURL])
	})

	t.Run("URLTableListsEverything", func(t *testing.T) {
		var buf bytes.Buffer
		b.p.PrintURLs(&buf)
		out := buf.String()
		for _, want := range []string{b.p.GatewayURL(), b.p.IngressURL(), b.p.ServiceURL("echo"), "PostgreSQL", "Redis", "S3", "SMTP", "Mail UI", "recorder, replier"} {
			require.Contains(t, out, want)
		}
		require.NotContains(t, out, b.p.Config()[platform.KeyS3SecretKey], "the S3 secret must not be printed")
	})
}

func get(t *testing.T, c *http.Client, url string) (string, int) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b), resp.StatusCode
}

// An outbox row reaches the subscriber only if its transaction commits, with
// either relay.
func TestOutboxRelayPublishesOnlyCommittedRows(t *testing.T) {
	t.Parallel()
	for _, relay := range []string{"poll", "cdc"} {
		t.Run(relay, func(t *testing.T) {
			t.Parallel()
			testOutboxRelay(t, relay)
		})
	}
}

func testOutboxRelay(t *testing.T, relay string) {
	b := start(t, platform.KeyOutboxRelay, relay)
	ctx := context.Background()
	pool, err := postgres.Open(ctx, b.dbURL)
	require.NoError(t, err)
	defer pool.Close()

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outbox.Write(ctx, tx, testEvent("rolled-back", "music.overture.test.hello.v1")))
	require.NoError(t, tx.Rollback(ctx))

	require.NoError(t, postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS note (id text PRIMARY KEY)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO note VALUES ('committed')`); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, testEvent("committed", "music.overture.test.hello.v1"))
	}))
	b.rec.waitFor(t, "committed", 30*time.Second)
	require.False(t, b.rec.has("rolled-back"), "an event whose transaction rolled back was published")
	// Relayed rows leave the outbox (the relay deletes after the broker's
	// acknowledgement, CDC prunes confirmed rows on its own schedule).
	testenv.WaitFor(t, 2*time.Minute, "relayed rows to leave the outbox", func() bool {
		var left int
		return pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left) == nil && left == 0
	})
}

func TestUnknownRelayIsRefused(t *testing.T) {
	t.Parallel()
	env := externalEnv(t)
	env[platform.KeyOutboxRelay] = "carrier-pigeon"
	_, err := platform.Start(context.Background(), platform.Options{Env: env, DataDir: t.TempDir(),
		ManifestDirs: []string{"testdata/brokers"}, Functions: []functions.Entry{}, Services: []server.Service{}})
	require.ErrorContains(t, err, `OUTBOX_RELAY="carrier-pigeon": want one of cdc, poll`)
}

// Stop leaves no goroutine of the platform behind and frees its ports.
func TestStopLeavesNothingRunning(t *testing.T) {
	b := start(t)
	b.postBinary(t, "before-stop", "music.overture.test.hello.v1")
	b.rec.waitFor(t, "before-stop", 30*time.Second)
	b.client.Transport.(*http.Transport).CloseIdleConnections()
	require.NoError(t, b.p.Stop(context.Background()))
	require.True(t, b.echo.stopped, "service Stop was not called")

	_, err := http.Get(b.p.GatewayURL() + "/health/liveness")
	require.Error(t, err, "gateway still answers after Stop")
	_, err = http.Post(b.p.IngressURL(), "application/json", nil)
	require.Error(t, err, "ingress still answers after Stop")

	testenv.Poll(2*time.Minute, func() bool { return runtime.NumGoroutine() <= b.baseline })
	if n := runtime.NumGoroutine(); n > b.baseline {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after Stop, %d before Start:\n%s", n, b.baseline, buf)
	}
}

// With no external dependency configured, the platform starts PostgreSQL,
// Redis, S3 and mailpit itself; Stop ends those processes, and a second start
// on the same data directory finds the first one's data.
func TestEmbeddedDependenciesStopAndKeepData(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp(testenv.Dir(), "dev-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	ctx := context.Background()
	opts := platform.Options{
		DataDir:      dir,
		ManifestDirs: []string{"testdata/brokers"},
		Functions:    []functions.Entry{},
		Services:     []server.Service{},
		Log:          telemetry.NewLogger(io.Discard, nil),
	}
	p, err := platform.Start(ctx, opts)
	require.NoError(t, err)
	procs := p.Processes()
	require.Len(t, procs, 4, "PostgreSQL, Redis, S3 and mailpit")
	dbURL := p.Config()[platform.KeyDatabaseURL]
	require.Contains(t, dbURL, "/"+platform.Database)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	var level string
	require.NoError(t, conn.QueryRow(ctx, "SHOW wal_level").Scan(&level))
	require.Equal(t, "logical", level)
	_, err = conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from the first run')`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, p.Stop(ctx))
	for _, pr := range procs {
		select {
		case <-pr.Done():
		default:
			t.Fatalf("%s (pid %d) still running after Stop", pr.Name, pr.Pid())
		}
		require.ErrorIs(t, syscall.Kill(pr.Pid(), 0), syscall.ESRCH, "%s process still exists", pr.Name)
	}

	p2, err := platform.Start(ctx, opts)
	require.NoError(t, err, "second start on the same data")
	defer p2.Stop(ctx)
	conn, err = pgx.Connect(ctx, p2.Config()[platform.KeyDatabaseURL])
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v string
	require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v))
	require.Equal(t, "from the first run", v)
}

// A port already taken fails the start with a message naming it, and leaves
// nothing running.
func TestBusyPortFailsStart(t *testing.T) {
	t.Parallel()
	env := map[string]string{platform.KeyDatabaseURL: "postgres://unused", platform.KeyRedisURL: "redis://unused",
		platform.KeyS3Endpoint: "http://unused", platform.KeySMTPURL: "smtp://unused"}
	first, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer first.Close()
	port := first.Addr().(*net.TCPAddr).Port
	_, err = platform.Start(context.Background(), platform.Options{Env: env, DataDir: t.TempDir(), Ports: platform.Ports{Gateway: port},
		Functions: []functions.Entry{}, Services: []server.Service{}})
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf("127.0.0.1:%d", port))
}

// unready is a service that never becomes ready (a CDN POP down, say).
type unready struct{ echo }

func (*unready) Name() string                        { return "unready" }
func (*unready) Routes() []server.Route              { return nil }
func (*unready) Ready(context.Context) (bool, error) { return false, nil }

// A part that stays unready does not take the platform down: Start returns
// after ReadyTimeout, readiness names the part, and the rest keeps serving.
func TestUnreadyPartIsReportedNotFatal(t *testing.T) {
	t.Parallel()
	env := externalEnv(t)
	p, err := platform.Start(context.Background(), platform.Options{Env: env, DataDir: t.TempDir(),
		ManifestDirs: []string{"testdata/brokers"}, Functions: []functions.Entry{},
		Services: []server.Service{&echo{}, &unready{}}, ReadyTimeout: 300 * time.Millisecond,
		Log: telemetry.NewLogger(io.Discard, nil)})
	require.NoError(t, err)
	defer p.Stop(context.Background())
	c := &http.Client{Timeout: 5 * time.Second}
	body, status := get(t, c, p.GatewayURL()+"/health/readiness")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, body, "service unready not ready")
	body, status = get(t, c, p.GatewayURL()+"/v1/echo/still-works")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "echo still-works", body)
	var buf bytes.Buffer
	p.PrintURLs(&buf)
	require.Contains(t, buf.String(), "NOT READY")
}

// gate is a service that publishes an event while it starts and is not
// ready until the test opens it. It runs as the test producer, whom the
// test EventPolicies let publish test events.
type gate struct {
	echo
	open   chan struct{}
	checks atomic.Int64 // readiness checks so far
}

func (*gate) Name() string           { return testProducer }
func (*gate) Routes() []server.Route { return nil }
func (g *gate) Start(ctx context.Context, _ map[string]string) error {
	return function.PublisherFrom(ctx).Publish(ctx, testEvent("queued-before-ready", "music.overture.test.hello.v1"))
}
func (g *gate) Ready(context.Context) (bool, error) {
	g.checks.Add(1)
	select {
	case <-g.open:
		return true, nil
	default:
		return false, nil
	}
}

// TestDispatchWaitsUntilReady (issue 16): after a restart, deliveries
// queued in the broker wait until the platform is ready — what their
// subscribers call (POPs, the payment sandbox) answers — instead of burning
// their retries on refused connections; publishing works meanwhile.
func TestDispatchWaitsUntilReady(t *testing.T) {
	t.Parallel()
	env := externalEnv(t)
	rec := newRecorder()
	g := &gate{open: make(chan struct{})}
	type started struct {
		p   *platform.Platform
		err error
	}
	res := make(chan started, 1)
	go func() {
		p, err := platform.Start(context.Background(), platform.Options{Env: env, DataDir: t.TempDir(),
			ManifestDirs: []string{"testdata/brokers", "testdata/triggers"},
			Functions: []functions.Entry{
				{Name: "recorder", New: func() function.Handler { return rec }},
				{Name: "replier", New: func() function.Handler { return replier{} }},
			},
			Services: []server.Service{g}, ReadyTimeout: 10 * time.Minute,
			Log: telemetry.NewLogger(io.Discard, nil)})
		res <- started{p, err}
	}()
	var opened sync.Once
	openGate := func() { opened.Do(func() { close(g.open) }) }
	var r started
	var got sync.Once
	result := func() started { got.Do(func() { r = <-res }); return r }
	t.Cleanup(func() {
		openGate()
		if p := result().p; p != nil {
			_ = p.Stop(context.Background())
		}
	})
	pool := postgrestest.Open(t, env[platform.KeyDatabaseURL])
	queued := func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM broker_delivery WHERE convert_from(event, 'UTF8')::jsonb->>'id' = 'queued-before-ready'`).Scan(&n)
		return err == nil && n > 0
	}
	testenv.WaitFor(t, 5*time.Minute, "the event published during start-up to be queued", func() bool {
		select {
		case r := <-res:
			got.Do(func() {})
			t.Fatalf("Start returned before the gate opened: %v", r.err)
		default:
		}
		return queued() || rec.has("queued-before-ready") // delivered already: failed below
	})
	// The platform checks readiness again and again meanwhile; through ten
	// of its checks the event stays queued and undelivered.
	seen := g.checks.Load()
	testenv.WaitFor(t, 5*time.Minute, "ten readiness checks", func() bool { return g.checks.Load() >= seen+10 })
	require.False(t, rec.has("queued-before-ready"), "delivered before the platform was ready")
	require.True(t, queued(), "the queued delivery is gone before the platform was ready")
	openGate()
	require.NoError(t, result().err)
	rec.waitFor(t, "queued-before-ready", 5*time.Minute)
}
