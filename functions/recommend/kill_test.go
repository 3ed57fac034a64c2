package recommendfn_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	recommendfn "github.com/overture-music/overture/functions/recommend"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/recommend/job"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
)

// killChildEnv makes the test binary (TestMain) a recommend function on
// DATABASE_URL that handles one event, the variable's value as JSON, and,
// once it has begun the job, prints BEGUN and waits for its SIGKILL.
const killChildEnv = "OVERTURE_RECOMMEND_KILL_CHILD"

func killChild() int {
	ctx := context.Background()
	var e event.Event
	if err := json.Unmarshal([]byte(os.Getenv(killChildEnv)), &e); err != nil {
		fmt.Println("bad event:", err)
		return 2
	}
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Println(err)
		return 2
	}
	f := recommendfn.New()
	f.Pool, f.Log = pool, slog.New(slog.DiscardHandler)
	if err := f.Start(ctx, map[string]string{"DATABASE_URL": "unused"}); err != nil {
		fmt.Println(err)
		return 2
	}
	recommendfn.SetAfterBegin(f, func() {
		fmt.Println("BEGUN")
		select {} // the SIGKILL ends it here
	})
	_, err = f.Handle(ctx, e)
	fmt.Println("handled:", err)
	return 1
}

// TestKilledRefreshIsRunAgain: a worker process that began a refresh job
// is killed with SIGKILL; the row is left running and nothing was stored.
// The broker's redelivery of the event to another worker runs the job to
// done (second attempt), storing the listener's result.
func TestKilledRefreshIsRunAgain(t *testing.T) {
	ctx := context.Background()
	pool := postgrestest.Pool(t)
	at := time.Date(2026, 12, 7, 0, 17, 0, 0, time.UTC)
	f, clock := start(t, pool, at.Add(time.Hour), nil)
	// Three listeners of two tastes, enough for a recompute to store models.
	var rows []stats.Row
	for u, tracks := range map[string][]int{"ana": {1, 2, 3}, "bob": {1, 2, 4}, "cy": {5, 6, 7}} {
		for k, tr := range tracks {
			rows = append(rows, stats.Row{UserID: u, Listen: eventtype.Listen{ID: fmt.Sprintf("%s-%d", u, k), ListenedAt: at.Add(-time.Duration(k+1) * time.Hour).Unix(),
				ArtistName: "a", TrackName: "t", TrackID: fmt.Sprintf("00000000-0000-0000-0000-%012d", tr), Stream: true, Scrobble: true}})
		}
	}
	_, err := f.Stats.Write(ctx, rows)
	require.NoError(t, err)
	_, err = f.Recompute(ctx, at)
	require.NoError(t, err)
	before, err := result.Store{Pool: pool}.Get(ctx, "ana")
	require.NoError(t, err)

	j := enqueue(t, pool, "ana", clock.Now())
	raw, err := json.Marshal(job.Event(j))
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+string(raw), "DATABASE_URL="+pool.Config().ConnString())
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "BEGUN", strings.TrimSpace(line))
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	left := getJob(t, pool, j)
	require.Equal(t, job.Running, left.State, "the killed worker left it running")
	require.Equal(t, 1, left.Attempts)
	after, err := result.Store{Pool: pool}.Get(ctx, "ana")
	require.NoError(t, err)
	require.Equal(t, before.ETag, after.ETag, "nothing stored yet")

	_, err = f.Handle(ctx, job.Event(j)) // the redelivery
	require.NoError(t, err)
	done := getJob(t, pool, j)
	require.Equal(t, job.Done, done.State, done.Error)
	require.Equal(t, 2, done.Attempts)
	stored, err := result.Store{Pool: pool}.Get(ctx, "ana")
	require.NoError(t, err)
	require.Equal(t, stored.ETag, done.ResultETag)
	require.NotEqual(t, before.ETag, stored.ETag, "the refresh's result replaced the recompute's")
}
