package saga_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/benchmark"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// completions hands a waiting client the moment its saga finished.
type completions struct {
	mu      sync.Mutex
	waiters map[string]chan time.Time
}

func (c *completions) wait(key string) chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters[key] = ch
	c.mu.Unlock()
	return ch
}

func (c *completions) done(key string) {
	c.mu.Lock()
	ch := c.waiters[key]
	delete(c.waiters, key)
	c.mu.Unlock()
	if ch != nil {
		ch <- time.Now()
	}
}

// completedAfter waits up to 60 s for the completion of what on done and
// returns how long after start it came.
func completedAfter(done <-chan time.Time, start time.Time, what string) (time.Duration, error) {
	select {
	case at := <-done:
		return at.Sub(start), nil
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("%s did not complete in 60 s", what)
	}
}

// premiumWatcher stands in for auth-entitlement: a UserUpdated with
// is_premium ends the saga as the listener sees it.
type premiumWatcher struct{ c *completions }

func (w premiumWatcher) Handle(_ context.Context, e event.Event) (*event.Event, error) {
	var d eventtype.UserUpdatedData
	if e.Type() == eventtype.UserUpdated && json.Unmarshal(e.Data(), &d) == nil && d.IsPremium {
		w.c.done(d.UserID)
	}
	return nil, nil
}

type result struct {
	name       string
	hops       int
	n          int
	elapsed    time.Duration
	p50, p99   time.Duration
	throughput float64
}

func summarize(name string, hops int, lat []time.Duration, elapsed time.Duration) result {
	slices.Sort(lat)
	return result{name: name, hops: hops, n: len(lat), elapsed: elapsed,
		p50: benchmark.Percentile(lat, 0.50), p99: benchmark.Percentile(lat, 0.99),
		throughput: float64(len(lat)) / elapsed.Seconds()}
}

// closedLoop runs n operations with conc clients, each waiting for its
// operation to complete before starting the next, and returns each one's
// latency and the time all took.
func closedLoop(n, conc int, op func(i int) (time.Duration, error)) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	start := time.Now()
	err := benchmark.Parallel(n, conc, func(i int) error {
		d, err := op(i)
		if err != nil {
			return err
		}
		lat[i] = d
		return nil
	})
	return lat, time.Since(start), err
}

// TestSagaBenchmark measures completed sagas per second end to end (POST
// /v1/subscriptions → premium granted, announced by UserUpdated) on the
// embedded runtime for each mode, beside the same number of bare broker round
// trips through a chain of no-op triggers as long as the saga's chain. Run by
// hack/bench/saga.sh (SAGA_BENCH=1).
func TestSagaBenchmark(t *testing.T) {
	if os.Getenv("SAGA_BENCH") == "" {
		t.Skip("set SAGA_BENCH=1 (hack/bench/saga.sh)")
	}
	n, conc := envInt("SAGA_BENCH_SAGAS", 2000), envInt("SAGA_BENCH_CONCURRENCY", 64)
	var results []result
	for _, m := range []struct {
		mode string
		hops int
	}{{"choreography", 4}, {"orchestration", 8}} {
		r := benchSagas(t, m.mode, m.hops, n, conc)
		ref := benchChain(t, m.hops, n, conc)
		results = append(results, r, ref)
		t.Logf("%s: %.0f sagas/s p50 %s p99 %s; reference %d-hop chain: %.0f/s p50 %s p99 %s", m.mode, r.throughput, r.p50, r.p99,
			m.hops, ref.throughput, ref.p50, ref.p99)
	}
	if out := os.Getenv("SAGA_BENCH_OUT"); out != "" {
		var b strings.Builder
		fmt.Fprintln(&b, "| run | broker hops | sagas | sagas/s | p50 | p99 | throughput vs reference | p99 vs reference |")
		fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|")
		for i := 0; i < len(results); i += 2 {
			r, ref := results[i], results[i+1]
			fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %s | %s | %.2f× | %.1f× |\n", r.name, r.hops, r.n, r.throughput,
				r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.throughput/ref.throughput, float64(r.p99)/float64(ref.p99))
			fmt.Fprintf(&b, "| reference: %d no-op hops | %d | %d | %.0f | %s | %s | 1 | 1 |\n", ref.hops, ref.hops, ref.n, ref.throughput,
				ref.p50.Round(100*time.Microsecond), ref.p99.Round(100*time.Microsecond))
		}
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func benchSagas(t *testing.T, mode string, hops, n, conc int) result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dbURL := withPoolSize(testenv.Postgres(t), envInt("SAGA_BENCH_POOL", 32))
	auth := tokentest.New(t)
	addr := freeAddr(t)
	hookURL := "http://" + addr + "/v1/payments/webhook"
	if os.Getenv("SAGA_BENCH_NO_WEBHOOKS") != "" {
		hookURL = ""
	}
	sb := sandbox.New(sandbox.Config{WebhookURL: hookURL, WebhookSecret: webhookSecret})
	provider := httptest.NewServer(sb)
	defer func() { provider.Close(); sb.Close() }()
	cfg := map[string]string{"DATABASE_URL": dbURL, "SAGA_MODE": mode, "PAYMENT_PROVIDER_URL": provider.URL + "/v3",
		"PAYMENT_SHOP_ID": "sandbox-shop", "PAYMENT_SECRET_KEY": "sandbox-secret", // the sandbox's own test credentials
		"PAYMENT_WEBHOOK_SECRET": webhookSecret, "AUTH_JWKS_URL": auth.JWKSURL(), "AUTH_ISSUER": tokentest.Issuer}
	comp := &completions{waiters: map[string]chan time.Time{}}
	rt, _, err := startRuntimeWith(ctx, cfg, addr, "@every 1s", newLogger(slog.LevelError), map[string]function.Handler{"auth-entitlement": premiumWatcher{comp}})
	if err != nil {
		t.Fatal(err)
	}
	_ = rt
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = auth.Token(t, fmt.Sprintf("bench-%s-%d", mode, i), tokentest.Options{TTL: time.Hour})
	}
	body, _ := json.Marshal(map[string]string{"plan": "monthly", "payment_method": sandbox.CardSuccess})
	if os.Getenv("SAGA_BENCH_WAITS") != "" {
		stop := sampleWaits(ctx, t, dbURL)
		defer stop()
	}
	lat, elapsed, err := closedLoop(n, conc, func(i int) (time.Duration, error) {
		user := fmt.Sprintf("bench-%s-%d", mode, i)
		done := comp.wait(user)
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/subscriptions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[i])
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("POST: %d", resp.StatusCode)
		}
		return completedAfter(done, start, "saga of "+user)
	})
	if err != nil {
		t.Fatal(err)
	}
	return summarize(mode, hops, lat, elapsed)
}

// hop replies with the next hop's event, or completes the chain at the end.
type hop struct {
	next string
	c    *completions
}

func (h hop) Handle(_ context.Context, e event.Event) (*event.Event, error) {
	if h.next == "" {
		h.c.done(e.Subject())
		return nil, nil
	}
	r := event.New()
	r.SetID(uuid.NewString())
	r.SetSource("/bench")
	r.SetType(h.next)
	r.SetSubject(e.Subject())
	_ = r.SetData(event.ApplicationJSON, json.RawMessage(e.Data()))
	return &r, nil
}

// benchChain pushes n events through a chain of hops no-op triggers on the
// same broker configuration (PostgreSQL-backed, same Lease/Poll).
func benchChain(t *testing.T, hops, n, conc int) result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, withPoolSize(testenv.Postgres(t), envInt("SAGA_BENCH_POOL", 32)))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var y strings.Builder
	y.WriteString("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default, namespace: overture}\n")
	comp := &completions{waiters: map[string]chan time.Time{}}
	fns := map[string]function.Handler{}
	for i := range hops {
		typ := fmt.Sprintf("bench.hop%d.v1", i)
		next := ""
		if i+1 < hops {
			next = fmt.Sprintf("bench.hop%d.v1", i+1)
		}
		name := fmt.Sprintf("hop-%d", i)
		fns[name] = hop{next: next, c: comp}
		fmt.Fprintf(&y, "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: %s, namespace: overture}\nspec:\n  broker: default\n  filter: {attributes: {type: %s}}\n  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: %s}}\n", name, typ, name)
	}
	set := &manifest.Set{}
	if err := set.Add("chain.yaml", []byte(y.String())); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(ctx, broker.Config{Pool: pool, Objects: set, Log: newLogger(slog.LevelError),
		Resolve: func(name string) (function.Handler, bool) { h, ok := fns[name]; return h, ok },
		Lease:   2 * time.Second, Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Run(ctx) }()
	lat, elapsed, err := closedLoop(n, conc, func(i int) (time.Duration, error) {
		key := fmt.Sprintf("chain-%d", i)
		done := comp.wait(key)
		start := time.Now()
		e := event.New()
		e.SetID(uuid.NewString())
		e.SetSource("/bench")
		e.SetType("bench.hop0.v1")
		e.SetSubject(key)
		_ = e.SetData(event.ApplicationJSON, map[string]string{"user": key})
		if err := b.Publish(ctx, e); err != nil {
			return 0, err
		}
		return completedAfter(done, start, "chain "+key)
	})
	if err != nil {
		t.Fatal(err)
	}
	return summarize(fmt.Sprintf("reference %d hops", hops), hops, lat, elapsed)
}

// withPoolSize sets pgxpool's pool_max_conns (its default is max(4, CPUs),
// which starves the broker, the relay and five functions sharing one pool).
func withPoolSize(url string, n int) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%spool_max_conns=%d", url, sep, n)
}

// sampleWaits samples what PostgreSQL backends wait on while the benchmark
// runs (SAGA_BENCH_WAITS=1), to find where a saga spends its time.
func sampleWaits(parent context.Context, t *testing.T, url string) func() {
	ctx, cancel := context.WithCancel(parent)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rows, err := pool.Query(ctx, `SELECT coalesce(wait_event_type,'CPU')||':'||coalesce(wait_event,'')||' '||left(regexp_replace(query,'\s+',' ','g'),70)
				FROM pg_stat_activity WHERE state='active' AND pid<>pg_backend_pid() AND backend_type='client backend'`)
			if err == nil {
				ws, _ := pgx.CollectRows(rows, pgx.RowTo[string])
				for _, w := range ws {
					counts[w]++
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() {
		cancel()
		<-done
		type kv struct {
			k string
			v int
		}
		var all []kv
		for k, v := range counts {
			all = append(all, kv{k, v})
		}
		slices.SortFunc(all, func(a, b kv) int { return b.v - a.v })
		for i, x := range all {
			if i == 25 {
				break
			}
			t.Logf("%6d %s", x.v, x.k)
		}
		pool.Close()
	}
}
