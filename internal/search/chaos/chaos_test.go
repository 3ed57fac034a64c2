package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/cdc"
	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/catalog/catalogtest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/writemodel"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// childEnv makes the test binary run one service instead of the tests, so
// the test can SIGKILL it.
const childEnv = "OVERTURE_CHAOS_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "cdc":
		runCDC()
	case "indexer":
		runIndexer()
	default:
		testenv.Main(m)
	}
}

func runCDC() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err := cdc.Run(ctx, cdc.Config{
		DatabaseURL: os.Getenv("CHAOS_DATABASE_URL"),
		Slot:        "chaos", Publication: "chaos",
		Publisher: function.NewHTTPPublisher(os.Getenv("CHAOS_BROKER"), nil),
		Log:       telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()),
		BatchSize: 500,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdc child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runIndexer() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv())
	cfg := map[string]string{
		"DATABASE_URL":   os.Getenv("CHAOS_DATABASE_URL"),
		"SEARCH_BACKEND": "bleve",
		"SEARCH_DIR":     os.Getenv("CHAOS_SEARCH_DIR"),
		"LISTEN_ADDRESS": os.Getenv("CHAOS_INDEXER_ADDR"),
	}
	// Serve stops the function (its Stop) when ctx ends.
	err := function.Serve(ctx, searchindexer.Name, searchindexer.New(), cfg, log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "indexer child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child is a restartable service process.
type child struct {
	t    *testing.T
	name string
	env  []string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	// kills counts SIGKILLs.
	kills int
}

func (c *child) start() {
	c.t.Helper()
	lf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + c.name}, c.env...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(done) }()
	c.cmd, c.done = cmd, done
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.kills++
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// broker stands in for the Knative broker between CDC and the indexer: it
// acknowledges a CDC batch only after the indexer acknowledged every event of
// it, retrying while the indexer is down, and delivers the events of a batch
// concurrently (so not in order: the indexer must not care).
func broker(t *testing.T, indexer string, stopping *atomic.Bool) *httptest.Server {
	client := &http.Client{Timeout: 10 * time.Second}
	deliver := func(ctx context.Context, e event.Event) error {
		for attempt := 0; ; attempt++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, indexer, nil)
			if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					return nil
				}
			}
			if ctx.Err() != nil || stopping.Load() {
				return fmt.Errorf("delivery of %s abandoned", e.ID())
			}
			time.Sleep(time.Duration(min(20*(attempt+1), 200)) * time.Millisecond)
		}
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var events []event.Event
		if r.Header.Get("Content-Type") == "application/cloudevents-batch+json" {
			b, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(b, &events); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
		} else {
			e, err := cehttp.NewEventFromHTTPRequest(r)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			events = []event.Event{*e}
		}
		// The indexer batches concurrent deliveries; 256 in flight make its batches large.
		sem := make(chan struct{}, 256)
		var wg sync.WaitGroup
		var failed atomic.Bool
		for _, e := range events {
			if e.Type() == "" || !bytes.HasPrefix([]byte(e.Type()), []byte("music.overture.cdc.")) {
				continue // outbox events: not the indexer's
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if deliver(r.Context(), e) != nil {
					failed.Store(true)
				}
			}()
		}
		wg.Wait()
		if failed.Load() {
			http.Error(w, "not delivered", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
}

func writesWanted() int {
	if v, err := strconv.Atoi(os.Getenv("CHAOS_WRITES")); err == nil && v > 0 {
		return v
	}
	return 50000
}

// TestChaos: ≥50,000 mixed catalog writes (4 concurrent workloads, straight
// SQL) while CDC and the indexer are SIGKILLed at random; afterwards every
// published track's document equals what the write model says and nothing
// else is searchable.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: minutes of work")
	}
	ctx := t.Context()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := catalog.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port, err := infra.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	indexerAddr := fmt.Sprintf("127.0.0.1:%d", port)
	var stopping atomic.Bool
	b := broker(t, "http://"+indexerAddr, &stopping)
	defer b.Close()
	env := []string{"CHAOS_DATABASE_URL=" + url, "CHAOS_BROKER=" + b.URL, "CHAOS_SEARCH_DIR=" + dir, "CHAOS_INDEXER_ADDR=" + indexerAddr, "LOG_LEVEL=warn"}
	idx := &child{t: t, name: "indexer", env: env, log: filepath.Join(dir, "..", "indexer.log")}
	relay := &child{t: t, name: "cdc", env: env, log: filepath.Join(dir, "..", "cdc.log")}
	idx.start()
	relay.start()
	defer func() {
		stopping.Store(true)
		relay.stop()
		idx.stop()
		if t.Failed() {
			for _, c := range []*child{idx, relay} {
				if b, err := os.ReadFile(c.log); err == nil {
					t.Logf("%s log (tail):\n%s", c.name, tail(b, 3000))
				}
			}
		}
	}()

	total := writesWanted()
	const workers = 4
	var done atomic.Int32
	errs := make(chan error, workers)
	started := time.Now()
	var txs atomic.Int64
	for w := range workers {
		go func() {
			st, err := catalogtest.Workload(ctx, pool, total/workers, uint64(1000+w))
			txs.Add(int64(st.Transactions))
			done.Add(1)
			errs <- err
		}()
	}
	// Chaos: while the workload runs, kill CDC, the indexer or both.
	r := rand.New(rand.NewPCG(42, uint64(time.Now().UnixNano())))
	for done.Load() < workers {
		time.Sleep(time.Duration(500+r.IntN(2500)) * time.Millisecond)
		if done.Load() == workers {
			break
		}
		switch r.IntN(3) {
		case 0:
			relay.kill()
		case 1:
			idx.kill()
		default:
			relay.kill()
			idx.kill()
		}
		time.Sleep(time.Duration(r.IntN(400)) * time.Millisecond)
		if relay.exited() {
			relay.start()
		}
		if idx.exited() {
			idx.start()
		}
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	// Make sure each process died at least twice even on a fast machine.
	for _, c := range []*child{relay, idx} {
		for c.kills < 2 {
			c.kill()
			time.Sleep(100 * time.Millisecond)
			c.start()
			time.Sleep(time.Second)
		}
	}
	t.Logf("workload: %d transactions in %s; SIGKILLs: cdc %d, indexer %d", txs.Load(), time.Since(started).Round(time.Millisecond), relay.kills, idx.kills)

	// A marker write after everything: once the indexer has applied it, it
	// has applied everything before it (CDC delivers in commit order, and
	// the broker acknowledges a batch only when all of it is applied).
	var before uint64
	if err := pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO genre (id, name) VALUES ('chaos-marker', 'Marker')`); err != nil {
		t.Fatal(err)
	}
	// Generous: on a 2-core CI machine running other test packages beside
	// this one (with -race), catching up has taken minutes.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := applied.Wait(wctx, pool, before+1, 100*time.Millisecond); err != nil {
		why, _ := applied.Explain(context.Background(), pool)
		t.Fatalf("the indexer did not catch up: %v\n%s", err, why)
	}
	t.Logf("caught up %s after the workload started", time.Since(started).Round(time.Millisecond))
	// A rebuild after a CDC re-snapshot may still be running: let it swap.
	for deadline := time.Now().Add(3 * time.Minute); ; {
		var needed bool
		if err := pool.QueryRow(ctx, `SELECT rebuild_needed FROM search_applied`).Scan(&needed); err != nil {
			t.Fatal(err)
		}
		if !needed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rebuild after a CDC re-snapshot did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopping.Store(true)
	relay.stop()
	idx.stop()

	st, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	diffs := compare(t, pool, st)
	fmt.Printf("chaos: %d transactions, %d SIGKILLs (cdc %d, indexer %d), read model vs write model: %d differences\n",
		txs.Load(), relay.kills+idx.kills, relay.kills, idx.kills, diffs)
	if diffs != 0 {
		t.Fatalf("%d differences between the read model and the write model", diffs)
	}
}

// compare checks every track of the write model against the read model and
// returns the number of differences.
func compare(t *testing.T, pool *pgxpool.Pool, st search.Store) int {
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT id::text FROM track`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	diffs, published := 0, 0
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		want, err := writemodel.Load(ctx, pool, part)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, part...)
		if err != nil {
			t.Fatal(err)
		}
		published += len(want)
		for _, id := range part {
			w, wok := want[id]
			g, gok := got[id]
			g.Version = 0
			switch {
			case wok != gok:
				diffs++
				if diffs <= 10 {
					t.Errorf("track %s: in read model %v, published %v", id, gok, wok)
				}
			case wok && !reflect.DeepEqual(norm(w), norm(g)):
				diffs++
				if diffs <= 10 {
					t.Errorf("track %s differs:\nwrite model %+v\nread model  %+v", id, norm(w), norm(g))
				}
			}
		}
	}
	n, err := st.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != published {
		diffs += abs(n - published)
		t.Errorf("read model holds %d documents, write model has %d published tracks", n, published)
	}
	t.Logf("compared %d tracks (%d published)", len(ids), published)
	return diffs
}

// norm makes two documents comparable (JSON round trip: times, empty slices).
func norm(d search.Track) string {
	d.Version = 0
	b, _ := json.Marshal(d)
	return string(b)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
