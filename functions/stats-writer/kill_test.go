package statswriter_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
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
	"github.com/overture-music/overture/internal/testenv"
)

// killChildEnv makes the test binary a stats-writer runtime for the SIGKILL
// tests instead of running tests (TestMain); its value is the child's
// configuration as JSON.
const killChildEnv = "OVERTURE_STATS_WRITER_KILL_CHILD"

// childConfig is what the parent hands a child runtime.
type childConfig struct {
	DatabaseURL string `json:"database_url"` // the broker's, and the PostgreSQL store's
	// Stats, when set, are stats.Open's settings (the ClickHouse backend:
	// the embedded chDB on a directory) and the writer starts from them;
	// else it writes to the PostgreSQL store on DatabaseURL.
	Stats map[string]string `json:"stats,omitempty"`
	// HoldMidBatch (PostgreSQL store) makes the child stop in the middle of
	// its first batch of more than 500 listens: after the first INSERT of
	// 500 rows, inside the batch's open transaction, it prints
	// "MID <user> <rows>" and waits there for its SIGKILL.
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
// triggers/stats-writer.yaml on the test's database, prints READY, answers
// each "IDS" line on stdin with what the store holds ("IDS <n> <digest>")
// and runs until it is killed. It is the writer as it runs anywhere: its
// Handle, its store, the broker's leases and retries.
func killChild(cfg childConfig) error {
	ctx := context.Background()
	log := telemetry.NewLogger(os.Stderr, slog.LevelWarn)
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	w := statswriter.New()
	w.Log = log
	var ids func() ([]string, error)
	if cfg.Stats != nil {
		if err := w.Start(ctx, cfg.Stats); err != nil {
			return err
		}
		store, ok := w.Store.(*stats.Opened).Store.(*stats.CH)
		if !ok {
			return fmt.Errorf("not the ClickHouse store: %T", w.Store)
		}
		ids = func() ([]string, error) { return chIDs(ctx, store) }
	} else {
		if err := stats.Migrate(ctx, pool); err != nil {
			return err
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
		w.Store = store
		if err := w.Start(ctx, nil); err != nil {
			return err
		}
		ids = func() ([]string, error) { return pgIDs(ctx, pool) }
	}
	// The batch's user rides in the context so the hold can name it.
	writer := handlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
		return w.Handle(context.WithValue(ctx, userKey{}, e.Subject()), e)
	})
	objects, err := brokerObjects()
	if err != nil {
		return err
	}
	handlers := map[string]function.Handler{statswriter.Name: writer, "dead-letter": &functiontest.Recorder{}}
	b, err := broker.New(ctx, broker.Config{Pool: pool, Objects: objects, Log: log,
		Resolve: func(name string) (function.Handler, bool) { h, ok := handlers[name]; return h, ok },
		Lease:   time.Second, Poll: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			got, err := ids()
			if err != nil {
				fmt.Println("ERR", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			fmt.Println("IDS", len(got), digest(got))
		}
	}()
	fmt.Println(testenv.Ready)
	return b.Run(ctx) // until SIGKILL
}

// pgIDs is every "user/listen" id in the PostgreSQL store.
func pgIDs(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT user_id || '/' || listen_id FROM stats_listen ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// chIDs is the same in the ClickHouse store, deduplicated as reads see it.
func chIDs(ctx context.Context, store *stats.CH) ([]string, error) {
	out, err := store.Exec(ctx, "SELECT user_id, listen_id FROM "+store.Database()+".stats_listen FINAL ORDER BY user_id, listen_id")
	if err != nil {
		return nil, err
	}
	var ids []string
	for line := range strings.Lines(string(out)) {
		var r map[string]string
		if json.Unmarshal([]byte(line), &r) == nil {
			ids = append(ids, r["user_id"]+"/"+r["listen_id"])
		}
	}
	return ids, nil
}

// digest is a hash of sorted ids.
func digest(ids []string) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(h[:8])
}

// stored asks a child what the store holds: how many listens, and the
// digest of their ids.
func stored(t *testing.T, c *testenv.Child) (int, string) {
	t.Helper()
	line := c.Ask(t, "IDS")
	var n int
	var d string
	_, err := fmt.Sscanf(line, "IDS %d %s", &n, &d)
	require.NoError(t, err, "%q", line)
	return n, d
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
	ids, err := pgIDs(context.Background(), pool)
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
	first := testenv.StartChild(t, killChildEnv, childConfig{DatabaseURL: url, HoldMidBatch: true})
	var held string
	var n int
	line := first.Next(t, 3*time.Minute, "hold in the middle of a batch")
	_, err = fmt.Sscanf(line, "MID %s %d", &held, &n)
	require.NoError(t, err, "%q", line)
	require.Equal(t, 500, n, "held after the first INSERT of 500 rows")
	var open int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`).Scan(&open))
	require.Positive(t, open, "the batch's transaction is open when the process dies")
	require.NoError(t, first.Kill())
	require.Zero(t, countOf(held), "nothing of %s's batch, killed mid-insert, stays", held)
	require.Less(t, len(storedIDs(t, pool)), len(want), "the kill left work to redeliver")
	t.Logf("first child killed holding %s's batch mid-insert; %d of %d listens stored", held, len(storedIDs(t, pool)), len(want))

	// 2. Killed at an arbitrary moment while more batches stream in.
	publish("u5", "u6", "u7", "u8", "u9", "u10")
	before := len(storedIDs(t, pool))
	second := testenv.StartChild(t, killChildEnv, childConfig{DatabaseURL: url})
	testenv.WaitFor(t, 5*time.Minute, "the restarted writer to store the redelivered batches",
		func() bool { return len(storedIDs(t, pool)) > before })
	require.NoError(t, second.Kill())
	require.Zero(t, len(storedIDs(t, pool))%listens.MaxListens, "batches are stored whole or not at all")
	t.Logf("second child killed mid-stream; %d of %d listens stored", len(storedIDs(t, pool)), len(want))

	// 3. A fresh process finishes; every delivery is settled.
	testenv.StartChild(t, killChildEnv, childConfig{DatabaseURL: url})
	testenv.WaitFor(t, 5*time.Minute, fmt.Sprintf("all %d listens to be stored after the restarts", len(want)),
		func() bool { return len(storedIDs(t, pool)) >= len(want) })
	testenv.WaitFor(t, 5*time.Minute, "every delivery, redeliveries included, to be acknowledged", func() bool {
		var pending int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery`).Scan(&pending))
		return pending == 0
	})
	got := storedIDs(t, pool)
	slices.Sort(want)
	require.Equal(t, want, got, "the store holds exactly the submitted listens")
	for i := 1; i <= 10; i++ {
		require.Equal(t, listens.MaxListens, countOf(fmt.Sprintf("u%d", i)))
	}
}
