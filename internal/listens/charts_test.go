package listens_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
)

// getChart reads a chart anonymously, with the X-Cache header.
func (b *bundle) getChart(t *testing.T, path string) (int, string, stats.Chart) {
	t.Helper()
	res, err := http.Get(b.srv.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var c stats.Chart
	if res.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(raw, &c), "%s", raw)
	}
	return res.StatusCode, res.Header.Get("X-Cache"), c
}

// The global charts are made by the scheduled rollup: the repository's
// PingSource (triggers/stats-rollup.yaml, its schedule shortened to every
// second) ticks through the broker to the stats-writer's stats-rollup
// Trigger, and the charts appear, then change when new listens arrive. A
// chart once read is answered from Redis (X-Cache: hit) until its
// ChartCacheTTL runs out, then from the refreshed rollup.
func TestScheduledRollupRefreshesCharts(t *testing.T) {
	t.Parallel()
	ping, err := os.ReadFile("../../triggers/stats-rollup.yaml")
	require.NoError(t, err)
	require.Contains(t, string(ping), `schedule: "*/5 * * * *"`)
	fast := strings.Replace(string(ping), `schedule: "*/5 * * * *"`, `schedule: "@every 1s"`, 1)
	w := statswriter.New()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	w.Now = func() time.Time { return now }
	b := setupWithObjects(t, w, fast)
	seed(t, b)

	const path = "/v1/charts/artists?period=daily&date=2026-12-06"
	var chart stats.Chart
	testenv.WaitFor(t, 2*time.Minute, "a scheduled rollup to compute the chart", func() bool {
		st, _, c := b.getChart(t, path)
		chart = c
		return st == http.StatusOK
	})
	require.Equal(t, []stats.Entry{{Rank: 1, ArtistName: "Björk", Count: 7, Listeners: 2}, {Rank: 2, ArtistName: "Radiohead", Count: 5, Listeners: 1}, {Rank: 3, ArtistName: "Portishead", Count: 1, Listeners: 1}}, chart.Entries)
	st, cache, _ := b.getChart(t, path)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "hit", cache)

	// Ten Portishead streams by a new listener on 6 December.
	var ls []string
	day := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	for i := range 10 {
		ls = append(ls, fmt.Sprintf(`{"listened_at":%d,"track_metadata":{"artist_name":"Portishead","track_name":"Sour Times","additional_info":{"duration_ms":250000,"played_ms":250000,"end_reason":"completed"}}}`,
			day.Add(time.Duration(i)*5*time.Minute).Unix()))
	}
	st, raw := b.do(t, http.MethodPost, "/v1/listens", b.bearer(t, "cy"), `{"listen_type":"import","payload":[`+strings.Join(ls, ",")+`]}`, nil)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	var refreshed stats.Chart
	testenv.WaitFor(t, 2*time.Minute, "the next scheduled rollup to count the new listens", func() bool {
		refreshed, err = b.svc.Stats.Chart(context.Background(), stats.Daily, stats.Artists, day)
		return err == nil && refreshed.Entries[0].ArtistName == "Portishead"
	})
	require.Equal(t, stats.Entry{Rank: 1, ArtistName: "Portishead", Count: 11, Listeners: 2}, refreshed.Entries[0])

	// Until the cached answer expires readers get it; then the new chart.
	_, cache, cached := b.getChart(t, path)
	require.Equal(t, "hit", cache)
	require.Equal(t, chart.Entries, cached.Entries, "cached for up to %s", listens.ChartCacheTTL)
	keys, err := b.rdb.Keys(context.Background(), "listens:chart:*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		ttl, err := b.rdb.TTL(context.Background(), k).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0))
		require.LessOrEqual(t, ttl, listens.ChartCacheTTL)
	}
	require.NoError(t, b.rdb.Del(context.Background(), keys...).Err()) // the TTL ran out
	_, cache, fresh := b.getChart(t, path)
	require.Equal(t, "miss", cache)
	require.Equal(t, "Portishead", fresh.Entries[0].ArtistName)
	require.Equal(t, int64(11), fresh.Entries[0].Count)
}
