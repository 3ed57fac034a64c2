package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/cdc/cdctest"
	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/catalog/catalogtest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/identity/identitytest"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/writemodel"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// indexerEnv makes the test binary run the search indexer instead of the
// tests, so the test can SIGKILL it (CDC children come from cdctest).
const indexerEnv = "OVERTURE_CHAOS_INDEXER"

func TestMain(m *testing.M) {
	cdctest.RunIfChild()
	if os.Getenv(indexerEnv) != "" {
		runIndexer()
		os.Exit(0)
	}
	testenv.Main(m)
}

// runIndexer serves the search indexer on a port of the kernel's choosing
// and writes the address it bound, one line, to file descriptor 3 (see
// endpoint).
func runIndexer() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv())
	// CHAOS_CPUPROFILE=<dir>: each indexer process profiles itself into
	// <dir>/indexer-<pid>.pprof (and each CDC process into cdc-<pid>.pprof,
	// see cdctest.Child); only one that is stopped (not killed) writes a
	// complete file — the last one, which did the catch-up.
	if d := os.Getenv("CHAOS_CPUPROFILE"); d != "" {
		if f, err := os.Create(filepath.Join(d, fmt.Sprintf("indexer-%d.pprof", os.Getpid()))); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	cfg := map[string]string{
		"DATABASE_URL":   os.Getenv("CHAOS_DATABASE_URL"),
		"SEARCH_BACKEND": "bleve",
		"SEARCH_DIR":     os.Getenv("CHAOS_SEARCH_DIR"),
		"LISTEN_ADDRESS": "127.0.0.1:0",
	}
	ready := make(chan string, 1)
	go func() {
		report := os.NewFile(3, "address report")
		fmt.Fprintln(report, <-ready)
		report.Close()
	}()
	// Serve stops the function (its Stop) when ctx ends.
	if err := function.Serve(ctx, searchindexer.Name, searchindexer.New(), cfg, log, ready); err != nil {
		fmt.Fprintln(os.Stderr, "indexer child:", err)
		os.Exit(1)
	}
}

// endpoint is where the indexer listens now. No port is picked for it in
// advance (a port picked, released and bound later by the child can be taken
// by another process in between): each indexer process binds port 0 and
// reports the address it got. The broker connects only through dial, which
// holds the read lock while it connects, and forget takes the write lock
// before the indexer is signalled; so a connection is never made to a port
// that a dead indexer released and some other process may have bound since.
type endpoint struct {
	mu   sync.RWMutex
	addr string // "" while no live indexer has reported
	gen  int    // incremented by forget; a report of an older process is dropped
}

// generation is the number a process started now reports under.
func (e *endpoint) generation() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.gen
}

// set records the address the process of generation gen reported.
func (e *endpoint) set(gen int, addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen == e.gen {
		e.addr = addr
	}
}

// forget drops the address: its process is about to be signalled, or has exited.
func (e *endpoint) forget() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addr = ""
	e.gen++
}

// address is where the live indexer listens ("" while none has reported).
func (e *endpoint) address() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.addr
}

// dial connects to the indexer, whatever address the request named.
func (e *endpoint) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.addr == "" {
		return nil, errors.New("the indexer is not listening")
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	return d.DialContext(ctx, network, e.addr)
}

// child is a restartable service process.
type child struct {
	t    *testing.T
	name string
	env  []string
	log  string
	// listen, for a child that serves HTTP, receives the address each of its
	// processes reports on file descriptor 3.
	listen *endpoint
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	// kills counts SIGKILLs.
	kills int
	// signalled is set before the test signals the process; an exit without
	// it is recorded in unexpected.
	signalled  atomic.Bool
	mu         sync.Mutex
	unexpected []string
}

func (c *child) start() {
	c.t.Helper()
	lf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var report *os.File
	gen := 0
	if c.listen != nil {
		var w *os.File
		if report, w, err = os.Pipe(); err != nil {
			c.t.Fatal(err)
		}
		defer w.Close() // the child has its own copy
		cmd.ExtraFiles = []*os.File{w}
		gen = c.listen.generation()
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	if report != nil {
		go func() {
			defer report.Close()
			if s := bufio.NewScanner(report); s.Scan() {
				c.listen.set(gen, s.Text())
			}
		}()
	}
	done := make(chan struct{})
	c.signalled.Store(false)
	go func() {
		_ = cmd.Wait()
		if c.listen != nil {
			c.listen.forget()
		}
		if !c.signalled.Load() {
			c.mu.Lock()
			c.unexpected = append(c.unexpected, cmd.ProcessState.String())
			c.mu.Unlock()
		}
		lf.Close()
		close(done)
	}()
	c.cmd, c.done = cmd, done
}

// quit makes a live process print its goroutines and exit (SIGQUIT), and
// returns them, condensed to Overture's code.
func (c *child) quit() string {
	if c.exited() {
		return "(not running)\n"
	}
	c.end(syscall.SIGQUIT, 10*time.Second)
	b, err := os.ReadFile(c.log)
	if err != nil {
		return err.Error() + "\n"
	}
	i := bytes.LastIndex(b, []byte("SIGQUIT: quit"))
	if i < 0 {
		return "(no goroutine dump)\n"
	}
	return ours(b[i:])
}

// restart starts the child again if its process has exited (as a
// supervisor restarts a crashed container) and reports whether it did.
func (c *child) restart() bool {
	if !c.exited() {
		return false
	}
	c.start()
	return true
}

// exits lists the exits the test did not cause (exit status or signal).
func (c *child) exits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.unexpected)
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// end signals the process (nothing connects to it from then on, and its
// exit is not counted as unexpected) and waits until it has exited, killing
// it when it is still running after grace.
func (c *child) end(sig syscall.Signal, grace time.Duration) {
	if c.listen != nil {
		c.listen.forget()
	}
	c.signalled.Store(true)
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) kill() {
	c.end(syscall.SIGKILL, time.Minute)
	c.kills++
}

func (c *child) stop() { c.end(syscall.SIGTERM, 20*time.Second) }

// brokerStats is what the broker stand-in did, printed when the test fails.
type brokerStats struct {
	publishes, answered atomic.Int64 // CDC's requests received / answered
	inFlight, delivered atomic.Int64 // deliveries to the indexer
	lastOK              atomic.Int64 // unix nanoseconds of the last delivery the indexer accepted
	lastErr             atomic.Value // string: the last failed attempt
}

func (b *brokerStats) String() string {
	last := "never"
	if ns := b.lastOK.Load(); ns > 0 {
		last = time.Since(time.Unix(0, ns)).Round(time.Millisecond).String() + " ago"
	}
	return fmt.Sprintf("publishes %d received, %d answered; deliveries %d done, %d in flight, last accepted %s, last failed attempt: %v",
		b.publishes.Load(), b.answered.Load(), b.delivered.Load(), b.inFlight.Load(), last, b.lastErr.Load())
}

// broker stands in for the Knative broker between CDC and the indexer: it
// accepts only CDC's identity (a valid token of auth's issuer for subject
// cdc, as the broker's EventPolicy does), acknowledges a CDC batch only after
// the indexer acknowledged every event of it, retrying while the indexer is
// down, and delivers the events of a batch concurrently (so not in order: the
// indexer must not care).
func broker(t *testing.T, auth *identitytest.Authority, indexer *endpoint, stopping *atomic.Bool, stats *brokerStats) *httptest.Server {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // the placeholder host below must not go to an HTTP_PROXY
	transport.DialContext = indexer.dial
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	deliver := func(ctx context.Context, e event.Event) error {
		stats.inFlight.Add(1)
		defer stats.inFlight.Add(-1)
		for attempt := 0; ; attempt++ {
			// The host is a placeholder: indexer.dial connects.
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://indexer.invalid/", nil)
			if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					stats.delivered.Add(1)
					stats.lastOK.Store(time.Now().UnixNano())
					return nil
				}
				err = fmt.Errorf("indexer answered %s", resp.Status)
			}
			stats.lastErr.Store(fmt.Sprintf("%s: %v", e.ID(), err))
			if ctx.Err() != nil || stopping.Load() {
				return fmt.Errorf("delivery of %s abandoned", e.ID())
			}
			// The broker's retry backoff (pacing, not waiting for anything).
			select {
			case <-time.After(time.Duration(min(20*(attempt+1), 200)) * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stats.publishes.Add(1)
		defer stats.answered.Add(1)
		c, err := auth.Verifier.Verify(r.Context(), identity.BearerToken(r), identitytest.Audience)
		if err != nil {
			stats.lastErr.Store("refused a publish: " + err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if c.Subject != identity.Subject("cdc") {
			http.Error(w, c.Subject+" may not publish here", http.StatusForbidden)
			return
		}
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

// waitDelivered waits until the broker stand-in has delivered n more events
// to the indexer, or until stop holds. Nothing delivered for ten minutes
// fails the test.
func waitDelivered(t *testing.T, stats *brokerStats, n int64, stop func() bool) {
	t.Helper()
	target := stats.delivered.Load() + n
	testenv.WaitProgress(t, 10*time.Minute, fmt.Sprintf("%d more deliveries", n), func() (bool, int64) {
		d := stats.delivered.Load()
		return d >= target || stop(), d
	})
}

// slotActive reports whether a walsender streams from the replication slot.
func slotActive(ctx context.Context, pool *pgxpool.Pool, slot string) bool {
	var active bool
	err := pool.QueryRow(ctx, `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active)
	return err == nil && active
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
	var stopping atomic.Bool
	indexer := &endpoint{}
	var stats brokerStats
	auth := identitytest.New(t)
	b := broker(t, auth, indexer, &stopping, &stats)
	defer b.Close()
	logs := filepath.Join(dir, "..") // CHAOS_LOG_DIR keeps the children's logs after the test
	if d := os.Getenv("CHAOS_LOG_DIR"); d != "" {
		logs = d
	}
	idx := &child{t: t, name: "indexer", listen: indexer, log: filepath.Join(logs, "indexer.log"),
		env: []string{indexerEnv + "=1", "CHAOS_DATABASE_URL=" + url, "CHAOS_SEARCH_DIR=" + dir, "LOG_LEVEL=warn"}}
	relay := &child{t: t, name: "cdc", log: filepath.Join(logs, "cdc.log"),
		env: append(cdctest.Child{DatabaseURL: url, Slot: "chaos", Sink: b.URL, TokenFile: auth.TokenFile(t, "cdc"), BatchSize: 500,
			CPUProfileDir: os.Getenv("CHAOS_CPUPROFILE")}.Env(), "LOG_LEVEL=warn")}
	idx.start()
	relay.start()
	defer func() {
		stopping.Store(true)
		relay.stop()
		idx.stop()
		if t.Failed() {
			for _, c := range []*child{idx, relay} {
				if b, err := os.ReadFile(c.log); err == nil {
					logs, _, _ := bytes.Cut(b, []byte("SIGQUIT: quit")) // the dumps are printed by diagnose
					t.Logf("%s log (tail):\n%s", c.name, tail(logs, 3000))
				}
			}
		}
	}()

	total := writesWanted()
	const workers = 4
	var done atomic.Int32
	errs := make(chan error, workers)
	started := time.Now()
	var txs, rows atomic.Int64
	for w := range workers {
		go func() {
			st, err := catalogtest.Workload(ctx, pool, total/workers, uint64(1000+w))
			txs.Add(int64(st.Transactions))
			for _, n := range st.Rows {
				rows.Add(int64(n)) // each row change is one change event
			}
			done.Add(1)
			errs <- err
		}()
	}
	// Chaos: while the workload runs, kill CDC, the indexer or both, each
	// time after the pipeline has moved a random number of events on (a
	// pace that follows the machine's speed, where a fixed sleep would kill
	// a slow machine's processes before they did anything), and restart
	// them at once, as a supervisor does.
	r := rand.New(rand.NewPCG(42, uint64(time.Now().UnixNano())))
	for done.Load() < workers {
		waitDelivered(t, &stats, int64(50+r.IntN(1000)), func() bool { return done.Load() == workers })
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
		relay.restart()
		idx.restart()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	// Make sure each process died at least twice even on a fast machine;
	// each time after its successor is up (the indexer listening, CDC
	// streaming from its slot).
	for _, c := range []*child{relay, idx} {
		for c.kills < 2 {
			c.kill()
			c.start()
			if c == idx {
				testenv.WaitFor(t, 5*time.Minute, "the restarted indexer to listen", func() bool { return indexer.address() != "" })
			} else {
				testenv.WaitFor(t, 5*time.Minute, "the restarted CDC to stream from its slot", func() bool { return slotActive(ctx, pool, "chaos") })
			}
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
	// Catching up is judged by progress, not by a deadline: on a 2-core
	// machine running other test packages beside this one (with -race) it
	// has taken minutes. Nothing moving at all — no delivery, no watermark
	// step — for stallAfter means a process is hung: its goroutines go to
	// the output (a hang is a bug to chase even when the test passes), and
	// it is killed and restarted like any other chaos victim. A second
	// stall in a row fails the test.
	// A child that exits on its own meanwhile is restarted, as its
	// supervisor (Kubernetes) would; why it exited is checked below.
	waitStart := time.Now()
	nextReport := waitStart.Add(30 * time.Second)
	stallAfter := 4 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("CHAOS_STALL_AFTER")); err == nil {
		stallAfter = d
	}
	var (
		lastW         uint64
		lastDelivered int64
		lastMove      = time.Now()
		stalls        int
	)
	for {
		if time.Now().After(nextReport) {
			nextReport = nextReport.Add(30 * time.Second)
			w, _ := applied.Load(ctx, pool)
			t.Logf("still catching up after %s: watermark %d of %d; broker: %v", time.Since(waitStart).Round(time.Second), w, before+1, &stats)
		}
		for _, c := range []*child{relay, idx} {
			if c.restart() {
				t.Logf("%s had exited on its own: restarted", c.name)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		w, err := applied.Wait(wctx, pool, before+1, 100*time.Millisecond)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, applied.ErrTimeout) {
			t.Fatalf("watermark: %v", err)
		}
		if d := stats.delivered.Load(); w != lastW || d != lastDelivered {
			lastW, lastDelivered, lastMove, stalls = w, d, time.Now(), 0
			continue
		}
		if time.Since(lastMove) <= stallAfter {
			continue
		}
		stalls++
		if stalls == 2 {
			why, _ := applied.Explain(context.Background(), pool)
			t.Errorf("the indexer did not catch up: nothing moved for %s, twice (the watermark at %d of %d)\n%s", stallAfter, w, before+1, why)
			diagnose(t, pool, indexer, &stats, relay, idx)
			t.FailNow()
		}
		fmt.Printf("chaos: STALL: nothing delivered and the watermark at %d for %s; broker: %v\n", w, stallAfter, &stats)
		for _, c := range []*child{relay, idx} {
			fmt.Printf("chaos: STALL: %s goroutines:\n%s", c.name, c.quit())
			c.start()
		}
		lastMove = time.Now()
	}
	t.Logf("caught up in %s (the marker was written then; %s after the workload started); %d row changes, broker: %v",
		time.Since(waitStart).Round(time.Millisecond), time.Since(started).Round(time.Millisecond), rows.Load(), &stats)
	// A rebuild after a CDC re-snapshot may still be running: let it swap.
	testenv.WaitFor(t, 10*time.Minute, "the rebuild after a CDC re-snapshot to finish", func() bool {
		var needed bool
		if err := pool.QueryRow(ctx, `SELECT rebuild_needed FROM search_applied`).Scan(&needed); err != nil {
			t.Fatal(err)
		}
		return !needed
	})
	stopping.Store(true)
	relay.stop()
	idx.stop()
	// A process that ended by itself (an error or a panic: an exit status)
	// is a bug; one killed by a signal the test did not send (the kernel's
	// OOM killer, say) is the machine's doing, and only reported.
	for _, c := range []*child{relay, idx} {
		for _, e := range c.exits() {
			if strings.HasPrefix(e, "exit status") {
				t.Errorf("%s ended by itself: %s (its log is printed below)", c.name, e)
			} else {
				t.Logf("%s was ended by something other than the test: %s", c.name, e)
			}
		}
	}

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

// diagnose prints what a stuck pipeline is doing: the children, the broker
// stand-in, the replication slot; and it makes every live child print its
// goroutines (SIGQUIT) into its log, which the deferred clean-up prints.
func diagnose(t *testing.T, pool *pgxpool.Pool, indexer *endpoint, stats *brokerStats, children ...*child) {
	indexer.mu.RLock()
	t.Logf("indexer address %q (generation %d); broker: %v", indexer.addr, indexer.gen, stats)
	indexer.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var slot string
	err := pool.QueryRow(ctx, `SELECT coalesce(json_agg(s)::text, 'none') FROM (
	  SELECT slot_name, active, active_pid, restart_lsn::text, confirmed_flush_lsn::text, pg_current_wal_lsn()::text AS current,
	         (SELECT state FROM pg_stat_replication r WHERE r.pid = active_pid) AS walsender
	    FROM pg_replication_slots) s`).Scan(&slot)
	t.Logf("replication slots: %s %v", slot, err)
	for _, c := range children {
		t.Logf("%s: %d SIGKILLs, exits the test did not cause: %v", c.name, c.kills, c.exits())
		if c.exited() {
			t.Logf("%s: exited (%v)", c.name, c.cmd.ProcessState)
			continue
		}
		t.Logf("%s: running as pid %d; its goroutines (those in Overture's code):\n%s", c.name, c.cmd.Process.Pid, c.quit())
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

// ours condenses a SIGQUIT dump to the goroutines that run Overture's code:
// one line each, its state and its Overture frames, innermost first.
func ours(dump []byte) string {
	var out strings.Builder
	for _, g := range strings.Split(string(dump), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "goroutine ") {
			continue
		}
		var frames []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "github.com/overture-music/overture/") {
				f := strings.TrimPrefix(l, "github.com/overture-music/overture/")
				if i := strings.LastIndex(f, "("); i > 0 {
					f = f[:i] // the arguments
				}
				frames = append(frames, f)
			}
		}
		if len(frames) == 0 {
			continue
		}
		state := lines[0]
		if i := strings.Index(state, "["); i >= 0 {
			state = state[i:]
		}
		fmt.Fprintf(&out, "%s %s\n", state, strings.Join(frames, " < "))
	}
	return out.String()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
