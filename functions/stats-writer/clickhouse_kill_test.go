package statswriter_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
	"github.com/overture-music/overture/internal/testenv"
)

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
	cfg := childConfig{DatabaseURL: pool.Config().ConnString(), Stats: map[string]string{
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
	first := testenv.StartChild(t, killChildEnv, cfg)
	testenv.WaitFor(t, 5*time.Minute, "the first child to store listens", func() bool { n, _ := stored(t, first); return n > 0 })
	require.NoError(t, first.Kill())
	t.Logf("first child killed with listens stored, of %d submitted", len(want))

	publish("u5", "u6", "u7", "u8", "u9", "u10")
	second := testenv.StartChild(t, killChildEnv, cfg)
	before, _ := stored(t, second)
	require.Less(t, before, len(want), "the kills left work to redeliver")
	testenv.WaitFor(t, 5*time.Minute, "the second child to store more listens", func() bool { n, _ := stored(t, second); return n > before })
	require.NoError(t, second.Kill())
	t.Logf("second child started with %d of %d listens stored, killed mid-stream", before, len(want))

	third := testenv.StartChild(t, killChildEnv, cfg)
	testenv.WaitFor(t, 5*time.Minute, fmt.Sprintf("all %d listens to be stored after the restarts", len(want)),
		func() bool { n, _ := stored(t, third); return n >= len(want) })
	testenv.WaitFor(t, 5*time.Minute, "every delivery, redeliveries included, to be acknowledged", func() bool {
		var pending int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM broker_delivery`).Scan(&pending))
		return pending == 0
	})
	n, d := stored(t, third)
	require.Equal(t, len(want), n, "none lost, none twice")
	require.Equal(t, digest(want), d, "the store holds exactly the submitted listens")
}
