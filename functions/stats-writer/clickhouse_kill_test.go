package statswriter_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
	"github.com/overture-music/overture/internal/telemetry"
)

// chKillChildEnv makes the test binary a stats-writer runtime on the
// ClickHouse backend (for TestSIGKILLCountsExactlyOnceOnClickHouse); its
// value is the child's configuration as JSON. It is caught in init, before
// TestMain: the child runs no tests.
const chKillChildEnv = "OVERTURE_STATS_WRITER_CH_KILL_CHILD"

type chChildConfig struct {
	DatabaseURL string            `json:"database_url"` // the broker's
	Stats       map[string]string `json:"stats"`        // stats.Open's settings: the embedded chDB on a directory
}

func init() {
	if os.Getenv(chKillChildEnv) != "" {
		os.Exit(chKillChild())
	}
}

// chKillChild hosts the stats-writer, started from its settings
// (STATS_BACKEND=clickhouse: its own chDB session on the test's data
// directory), behind an embedded broker on the test's PostgreSQL. It prints
// READY, then answers each "IDS" line on stdin with what the store holds
// (FINAL), until it is killed.
func chKillChild() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	var cfg chChildConfig
	if err := json.Unmarshal([]byte(os.Getenv(chKillChildEnv)), &cfg); err != nil {
		return fail(err)
	}
	ctx := context.Background()
	log := telemetry.NewLogger(os.Stderr, slog.LevelWarn)
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fail(err)
	}
	w := statswriter.New()
	w.Log = log
	if err := w.Start(ctx, cfg.Stats); err != nil {
		return fail(err)
	}
	store, ok := w.Store.(*stats.Opened).Store.(*stats.CH)
	if !ok {
		return fail(fmt.Errorf("not the ClickHouse store: %T", w.Store))
	}
	objects, err := brokerObjects()
	if err != nil {
		return fail(err)
	}
	handlers := map[string]function.Handler{statswriter.Name: w, "dead-letter": &functiontest.Recorder{}}
	b, err := broker.New(ctx, broker.Config{Pool: pool, Objects: objects, Log: log,
		Resolve: func(name string) (function.Handler, bool) { h, ok := handlers[name]; return h, ok },
		Lease:   time.Second, Poll: 100 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			out, err := store.Exec(ctx, "SELECT user_id, listen_id FROM "+store.Database()+".stats_listen FINAL ORDER BY user_id, listen_id")
			if err != nil {
				fmt.Println("ERR", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			var ids []string
			for line := range strings.Lines(string(out)) {
				var r map[string]string
				if json.Unmarshal([]byte(line), &r) == nil {
					ids = append(ids, r["user_id"]+"/"+r["listen_id"])
				}
			}
			fmt.Println("IDS", len(ids), digest(ids))
		}
	}()
	fmt.Println("READY")
	_ = b.Run(ctx) // until SIGKILL
	return 0
}

// digest is a hash of sorted ids.
func digest(ids []string) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(h[:8])
}

type chChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startCHChild(t *testing.T, cfg chChildConfig) *chChild {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), chKillChildEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &chChild{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	select {
	case line := <-c.lines:
		if line != "READY" {
			c.kill(t)
			t.Fatalf("stats-writer child did not start: %q", line)
		}
	case <-time.After(3 * time.Minute):
		c.kill(t)
		t.Fatal("stats-writer child did not start in 3 minutes")
	}
	return c
}

// stored asks the child what the store holds: how many listens, and the
// digest of their ids.
func (c *chChild) stored(t *testing.T) (int, string) {
	t.Helper()
	_, err := io.WriteString(c.in, "IDS\n")
	require.NoError(t, err)
	line, ok := <-c.lines
	require.True(t, ok, "the child ended")
	var n int
	var d string
	_, err = fmt.Sscanf(line, "IDS %d %s", &n, &d)
	require.NoError(t, err, "%q", line)
	return n, d
}

func (c *chChild) kill(t *testing.T) {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	err := c.cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "the child died by SIGKILL")
}

// TestSIGKILLCountsExactlyOnceOnClickHouse: the stats-writer on the
// ClickHouse backend (the embedded chDB in its own process, as the platform
// runs it) is SIGKILLed twice while batches — each published twice, each
// spanning November and December, so two parts — stream in; fresh
// processes take the redeliveries over. The store must end holding exactly
// the submitted listens: none lost, none twice.
func TestSIGKILLCountsExactlyOnceOnClickHouse(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Pool(t)
	objects, err := brokerObjects()
	require.NoError(t, err)
	br, err := broker.New(ctx, broker.Config{Pool: pool, Objects: objects, Log: slog.New(slog.DiscardHandler), Lease: time.Second,
		Resolve: func(string) (function.Handler, bool) { return &functiontest.Recorder{}, true }})
	require.NoError(t, err)
	pub := br.As(identity.Subject(listens.Name))
	cfg := chChildConfig{DatabaseURL: pool.Config().ConnString(), Stats: map[string]string{
		stats.KeyBackend: stats.ClickHouse, stats.KeyCHDBLibPath: statstest.Lib(),
		stats.KeyCHDBDataDir: t.TempDir(), stats.KeyClickHouseDatabase: "stats"}}
	if _, err := os.Stat(statstest.Lib()); err != nil {
		t.Fatalf("%v — this test needs chDB (CI runs make deps first)", err)
	}

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

	publish("u1", "u2", "u3", "u4")
	first := startCHChild(t, cfg)
	require.Eventually(t, func() bool { n, _ := first.stored(t); return n > 0 }, 5*time.Minute, 10*time.Millisecond)
	first.kill(t)
	t.Logf("first child killed with listens stored, of %d submitted", len(want))

	publish("u5", "u6", "u7", "u8", "u9", "u10")
	second := startCHChild(t, cfg)
	before, _ := second.stored(t)
	require.Less(t, before, len(want), "the kills left work to redeliver")
	require.Eventually(t, func() bool { n, _ := second.stored(t); return n > before }, 5*time.Minute, 10*time.Millisecond)
	second.kill(t)
	t.Logf("second child started with %d of %d listens stored, killed mid-stream", before, len(want))

	third := startCHChild(t, cfg)
	t.Cleanup(func() { third.kill(t) })
	require.Eventually(t, func() bool { n, _ := third.stored(t); return n >= len(want) }, 5*time.Minute, 50*time.Millisecond,
		"all %d listens stored after the restarts", len(want))
	require.Eventually(t, func() bool {
		var pending int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery`).Scan(&pending))
		return pending == 0
	}, 5*time.Minute, 50*time.Millisecond, "every delivery, redeliveries included, acknowledged")
	n, d := third.stored(t)
	require.Equal(t, len(want), n, "none lost, none twice")
	require.Equal(t, digest(want), d, "the store holds exactly the submitted listens")
}
