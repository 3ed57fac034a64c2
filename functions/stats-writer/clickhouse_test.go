package statswriter_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
)

// The writer on STATS_BACKEND=clickhouse (the embedded chDB): a batch
// delivered twice, and one overlapping it, stored once per listen; the
// rollup ping computes the charts from them.
func TestClickHouseBackend(t *testing.T) {
	cfg := statstest.Config(t)
	w := statswriter.New()
	w.Log = slog.New(slog.DiscardHandler)
	w.Now = func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }
	functiontest.Start(t, w, cfg)
	ok, err := w.Ready(context.Background())
	require.NoError(t, err)
	require.True(t, ok)

	x, _ := statstest.Embedded(t)
	count := func() string {
		out, err := x.Exec(context.Background(), "SELECT count() AS n FROM "+cfg[stats.KeyClickHouseDatabase]+".stats_listen FINAL")
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	e := batch(t, "u1", 1000)
	for range 2 {
		_, err := w.Handle(context.Background(), e)
		require.NoError(t, err)
	}
	require.Equal(t, `{"n":1000}`, count())
	_, err = w.Handle(context.Background(), batch(t, "u1", 1200)) // 200 new
	require.NoError(t, err)
	require.Equal(t, `{"n":1200}`, count())

	ping := event.New()
	ping.SetID("tick-1")
	ping.SetType(eventtype.Ping)
	ping.SetSource(statswriter.RollupSource)
	_, err = w.Handle(context.Background(), ping)
	require.NoError(t, err)
	// batch(): 1,200 listens a minute apart back from 1 Dec 10:00, 7
	// artists in turn; 1 Dec holds the 601 from 00:00 to 10:00.
	c, err := w.Store.Chart(context.Background(), stats.Daily, stats.Artists, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "2026-12-01", c.PeriodStart)
	var total int64
	for _, e := range c.Entries {
		total += e.Count
	}
	require.Equal(t, int64(601), total)
}

// A backend that does not exist fails the start, naming the setting.
func TestUnknownBackendFailsStart(t *testing.T) {
	w := statswriter.New()
	w.Log = slog.New(slog.DiscardHandler)
	err := w.Start(context.Background(), map[string]string{"STATS_BACKEND": "mysql", "DATABASE_URL": "postgres://x"})
	require.ErrorContains(t, err, "STATS_BACKEND")
}
