package cdc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/cdc/cdctest"
	"github.com/overture-music/overture/internal/catalog/catalogtest"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/testenv"
)

// sink is the broker stand-in of the crash test: it acknowledges an event only
// after recording it in PostgreSQL, so what it acknowledged survives anything.
func sink(t *testing.T, pool *pgxpool.Pool) *httptest.Server {
	t.Helper()
	_, err := pool.Exec(context.Background(), `CREATE TABLE delivered (id text PRIMARY KEY, type text NOT NULL, n int NOT NULL DEFAULT 1)`)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var events []event.Event
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents-batch+json") {
			if err := json.NewDecoder(r.Body).Decode(&events); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		} else {
			e, err := cehttp.NewEventFromHTTPRequest(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			events = append(events, *e)
		}
		err := postgres.InTx(r.Context(), pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for _, e := range events {
				b.Queue(`INSERT INTO delivered (id, type) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = delivered.n + 1`, e.ID(), e.Type())
			}
			return tx.SendBatch(r.Context(), b).Close()
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCrashLosesNothing runs CDC in a child process, SIGKILLs it at random
// moments while a workload writes (catalog rows directly in SQL, plus outbox
// events), restarts it, and checks that every committed change and every
// outbox event reached the sink at least once. The ground truth of "every
// committed change" is an independent test_decoding slot created before the
// workload.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash test")
	}
	b := setup(t)
	ctx := context.Background()
	srv := sink(t, b.pool)
	truth := b.slot + "_truth"
	_, err := b.pool.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, truth)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = b.pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, truth) })

	var (
		mu    sync.Mutex
		child *exec.Cmd
	)
	start := func() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		relay := cdctest.Child{DatabaseURL: b.url, Slot: b.slot, Sink: srv.URL, BatchSize: 200}
		cmd.Env = append(append(os.Environ(), relay.Env()...), "LOG_LEVEL=warn")
		cmd.Stderr = testWriter{t}
		require.NoError(t, cmd.Start())
		mu.Lock()
		child = cmd
		mu.Unlock()
	}
	start()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()
	})
	testenv.WaitFor(t, 2*time.Minute, "the child CDC to start (its slot recorded)", func() bool {
		var n int
		err := b.pool.QueryRow(ctx, `SELECT count(*) FROM cdc_slot WHERE slot = $1`, b.slot).Scan(&n)
		return err == nil && n == 1
	})

	// The workload: catalog writes in SQL and, in between, outbox events.
	done := make(chan error, 1)
	var outboxIDs []string
	go func() {
		_, err := catalogtest.Workload(ctx, b.pool, 2500, 7)
		if err == nil {
			for i := range 200 {
				id := fmt.Sprintf("outbox-%d", i)
				e := event.New()
				e.SetID(id)
				e.SetType(eventtype.TrackPublished)
				e.SetSource("/overture/catalog-admin")
				_ = e.SetData(event.ApplicationJSON, eventtype.TrackData{TrackID: id})
				if err = postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, e) }); err != nil {
					break
				}
				outboxIDs = append(outboxIDs, id)
			}
		}
		done <- err
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	restart := func() { // SIGKILL the child and start another
		mu.Lock()
		require.NoError(t, child.Process.Signal(syscall.SIGKILL))
		_ = child.Wait()
		mu.Unlock()
		kills++
		start()
	}
	for finished := false; !finished; {
		select {
		case err := <-done:
			require.NoError(t, err)
			finished = true
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
			restart()
		}
	}
	// And once more after the workload, before draining.
	restart()
	t.Logf("SIGKILLed CDC %d times", kills)
	require.GreaterOrEqual(t, kills, 3)

	// Ground truth: every catalog row change committed, by change LSN.
	want := map[string]int{}
	rows, err := b.pool.Query(ctx, `SELECT (lsn - '0/0')::numeric::text, data FROM pg_logical_slot_get_changes($1, NULL, NULL)`, truth)
	require.NoError(t, err)
	total := 0
	for rows.Next() {
		var pos, data string
		require.NoError(t, rows.Scan(&pos, &data))
		for _, table := range []string{"genre", "artist", "album", "track", "track_artist", "track_rendition"} {
			if strings.HasPrefix(data, "table public."+table+": ") {
				want[pos]++
				total++
			}
		}
	}
	require.NoError(t, rows.Err())
	require.Greater(t, total, 1500)

	missing := func() (int, []string) {
		got := map[string]int{}
		have := map[string]bool{}
		rows, err := b.pool.Query(ctx, `SELECT id FROM delivered`)
		require.NoError(t, err)
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			have[id] = true
			if pos, _, ok := strings.Cut(id, "/"); ok && !strings.HasPrefix(id, "snapshot/") {
				got[pos]++
			}
		}
		require.NoError(t, rows.Err())
		n := 0
		var sample []string
		for pos, c := range want {
			if got[pos] < c {
				n += c - got[pos]
				if len(sample) < 5 {
					sample = append(sample, pos)
				}
			}
		}
		for _, id := range outboxIDs {
			if !have[id] {
				n++
				if len(sample) < 5 {
					sample = append(sample, id)
				}
			}
		}
		return n, sample
	}
	// Judged by progress: the missing changes must keep arriving; it fails
	// only when none has arrived for five minutes.
	testenv.WaitProgress(t, 5*time.Minute, "every committed change to reach the sink", func() (bool, string) {
		n, sample := missing()
		return n == 0, fmt.Sprintf("%d of %d committed changes missing, e.g. %v", n, total+len(outboxIDs), sample)
	})
	var dups int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT coalesce(sum(n - 1), 0) FROM delivered`).Scan(&dups))
	t.Logf("%d changes and %d outbox events delivered; %d redeliveries after the kills", total, len(outboxIDs), dups)
}
