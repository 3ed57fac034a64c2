package statswriter_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/telemetry"
)

// killChildEnv makes the test binary a stats-writer runtime for
// TestSIGKILLMidBatchCountsExactlyOnce instead of running tests; its value
// is the child's configuration as JSON.
const killChildEnv = "OVERTURE_STATS_WRITER_KILL_CHILD"

// childConfig is what the parent hands a child runtime.
type childConfig struct {
	DatabaseURL string `json:"database_url"`
	// HoldMidBatch makes the child stop in the middle of its first batch
	// of more than 500 listens: after the first INSERT of 500 rows, inside
	// the batch's open transaction, it prints "MID <user>" and waits there
	// for its SIGKILL.
	HoldMidBatch bool `json:"hold_mid_batch"`
}

// brokerObjects are the broker, the writer's own Triggers and the
// repository's EventPolicies (the listens service may publish the batches).
func brokerObjects() (*manifest.Set, error) {
	var parts []string
	for _, f := range []string{"../../triggers/stats-writer.yaml", "../../brokers/eventpolicies.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		parts = append(parts, string(b))
	}
	set := &manifest.Set{}
	err := set.Add("stats.yaml", []byte(brokertest.BrokerYAML+"---\n"+strings.Join(parts, "\n---\n")))
	return set, err
}

type userKey struct{}

type handlerFunc func(ctx context.Context, e event.Event) (*event.Event, error)

func (f handlerFunc) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	return f(ctx, e)
}

// killChild hosts the stats-writer behind an embedded broker running
// triggers/stats-writer.yaml on the test's database, prints READY and runs
// until it is killed. It is the writer as it runs anywhere: its Handle, the
// PostgreSQL store, the broker's leases and retries.
func killChild() int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(killChildEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	log := telemetry.NewLogger(os.Stderr, slog.LevelWarn)
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := stats.Migrate(ctx, pool); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	store := stats.NewPG(pool)
	if cfg.HoldMidBatch {
		held := make(chan struct{}, 1)
		held <- struct{}{}
		store.AfterChunk = func(ctx context.Context, n int) error {
			user, _ := ctx.Value(userKey{}).(string)
			select {
			case <-held:
				fmt.Printf("MID %s %d\n", user, n)
				select {} // the transaction stays open until the SIGKILL
			default:
				return nil
			}
		}
	}
	w := statswriter.New()
	w.Store, w.Log = store, log
	if err := w.Start(ctx, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The batch's user rides in the context so the hold can name it.
	writer := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		return w.Handle(context.WithValue(ctx, userKey{}, e.Subject()), e)
	})
	objects, err := brokerObjects()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	handlers := map[string]function.Handler{statswriter.Name: writer, "dead-letter": &functiontest.Recorder{}}
	b, err := broker.New(ctx, broker.Config{Pool: pool, Objects: objects, Log: log,
		Resolve: func(name string) (function.Handler, bool) { h, ok := handlers[name]; return h, ok },
		Lease:   time.Second, Poll: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("READY")
	_ = b.Run(ctx) // until SIGKILL
	return 0
}

// child is a running writer process and the lines it prints after READY.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

// startChild starts a writer runtime in its own process group.
func startChild(t *testing.T, cfg childConfig) *child {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		rd := bufio.NewReader(out)
		for {
			line, err := rd.ReadString('\n')
			if line != "" {
				c.lines <- strings.TrimSpace(line)
			}
			if err != nil {
				return
			}
		}
	}()
	// A child that cannot start (its database, its broker) must not hang
	// the test: it gets as long as a loaded CI machine needs, then dies.
	select {
	case line, ok := <-c.lines:
		if !ok || line != "READY" {
			_ = c.kill()
			t.Fatalf("stats-writer child did not start: %q", line)
		}
	case <-time.After(3 * time.Minute):
		_ = c.kill()
		t.Fatal("stats-writer child not ready after 3 minutes")
	}
	return c
}

// kill SIGKILLs the child's process group and reaps it; the error says
// whether it died by the signal.
func (c *child) kill() error {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return fmt.Errorf("the child did not die by SIGKILL: %w", err)
	}
	return nil
}

// scrobblerBatch is user's import of n listens as a ListenBrainz client
// sends it, parsed by the listens service's own rules: the rows the store
// must end up with are exactly the listen ids of these submissions.
func scrobblerBatch(t *testing.T, user string, n int) (*listens.Submission, event.Event) {
	t.Helper()
	end := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"listened_at":%d,"track_metadata":{"artist_name":"Artist %d","track_name":"Track %d","release_name":"Album %d","additional_info":{"duration_ms":200000,"submission_client":"Pano Scrobbler"}}}`,
			end.Add(-time.Duration(i)*3*time.Minute).Unix(), i%13, i%37, i%5)
	}
	sub, err := listens.Parse([]byte(`{"listen_type":"import","payload":[`+strings.Join(parts, ",")+`]}`), user, end, time.Minute)
	require.NoError(t, err)
	e, err := listens.BatchEvent(user, sub)
	require.NoError(t, err)
	return sub, e
}

// storedIDs is every listen id in the store, sorted, with its user.
func storedIDs(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT user_id || '/' || listen_id FROM stats_listen ORDER BY 1`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

// TestSIGKILLMidBatchCountsExactlyOnce runs the stats-writer as a real
// child process (the test binary re-executed, hosting the function behind an
// embedded broker on the test's PostgreSQL, as the platform does) and
// SIGKILLs it twice: first in the middle of a batch of 1,000 listens — 500
// rows inserted, the transaction open — then at an arbitrary moment while
// batches stream in. A fresh process takes the broker's redeliveries over
// once the dead one's leases ran out. Every batch is also published twice
// (a client retrying a batch whose answer it lost). The store must hold
// exactly the submitted listens: none lost, none twice.
func TestSIGKILLMidBatchCountsExactlyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := postgrestest.Pool(t, stats.Migrate)
	url := pool.Config().ConnString()
	objects, err := brokerObjects()
	require.NoError(t, err)
	// The test's broker only stores the published events: it never runs, so
	// every delivery goes to a child.
	br, err := broker.New(ctx, broker.Config{Pool: pool, Objects: objects, Log: slog.New(slog.DiscardHandler), Lease: time.Second,
		Resolve: func(string) (function.Handler, bool) { return &functiontest.Recorder{}, true }})
	require.NoError(t, err)
	pub := br.As(identity.Subject(listens.Name))

	var want []string
	publish := func(users ...string) {
		for _, u := range users {
			sub, e := scrobblerBatch(t, u, listens.MaxListens)
			for _, l := range sub.Listens {
				want = append(want, u+"/"+l.ID)
			}
			require.NoError(t, pub.Publish(ctx, e))
			require.NoError(t, pub.Publish(ctx, e), "the same batch again")
		}
	}
	countOf := func(user string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM stats_listen WHERE user_id = $1`, user).Scan(&n))
		return n
	}

	// 1. Killed in the middle of a batch.
	publish("u1", "u2", "u3", "u4")
	first := startChild(t, childConfig{DatabaseURL: url, HoldMidBatch: true})
	var held string
	select {
	case line, ok := <-first.lines:
		require.True(t, ok, "the child ended before it held a batch")
		var n int
		_, err := fmt.Sscanf(line, "MID %s %d", &held, &n)
		require.NoError(t, err, "%q", line)
		require.Equal(t, 500, n, "held after the first INSERT of 500 rows")
	case <-time.After(3 * time.Minute):
		_ = first.kill()
		t.Fatal("the child never reached the middle of a batch")
	}
	var open int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`).Scan(&open))
	require.Positive(t, open, "the batch's transaction is open when the process dies")
	require.NoError(t, first.kill())
	require.Zero(t, countOf(held), "nothing of %s's batch, killed mid-insert, stays", held)
	require.Less(t, len(storedIDs(t, pool)), len(want), "the kill left work to redeliver")
	t.Logf("first child killed holding %s's batch mid-insert; %d of %d listens stored", held, len(storedIDs(t, pool)), len(want))

	// 2. Killed at an arbitrary moment while more batches stream in.
	publish("u5", "u6", "u7", "u8", "u9", "u10")
	before := len(storedIDs(t, pool))
	second := startChild(t, childConfig{DatabaseURL: url})
	require.Eventually(t, func() bool { return len(storedIDs(t, pool)) > before }, 5*time.Minute, 20*time.Millisecond,
		"the restarted writer stores the redelivered batches")
	require.NoError(t, second.kill())
	require.Zero(t, len(storedIDs(t, pool))%listens.MaxListens, "batches are stored whole or not at all")
	t.Logf("second child killed mid-stream; %d of %d listens stored", len(storedIDs(t, pool)), len(want))

	// 3. A fresh process finishes; every delivery is settled.
	third := startChild(t, childConfig{DatabaseURL: url})
	t.Cleanup(func() { _ = third.kill() })
	require.Eventually(t, func() bool { return len(storedIDs(t, pool)) >= len(want) }, 5*time.Minute, 50*time.Millisecond,
		"all %d listens stored after the restarts", len(want))
	require.Eventually(t, func() bool {
		var pending int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery`).Scan(&pending))
		return pending == 0
	}, 5*time.Minute, 50*time.Millisecond, "every delivery, redeliveries included, acknowledged")
	got := storedIDs(t, pool)
	slices.Sort(want)
	require.Equal(t, want, got, "the store holds exactly the submitted listens")
	for i := 1; i <= 10; i++ {
		require.Equal(t, listens.MaxListens, countOf(fmt.Sprintf("u%d", i)))
	}
}
