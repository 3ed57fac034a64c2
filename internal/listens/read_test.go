package listens_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
)

// seed submits a small, known listening history through the API: listener
// ana plays Radiohead 5 times, Björk 3 times and Portishead twice (one of
// them a skip) on 6 December 2026, once more Radiohead on 28 November;
// listener ben plays Björk 4 times on 6 December. It returns when all are
// stored.
func seed(t *testing.T, b *bundle) {
	t.Helper()
	day := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	type play struct {
		user, artist, track, album string
		at                         time.Time
		played                     int64
		skipped                    bool
	}
	var plays []play
	for i := range 5 {
		plays = append(plays, play{"ana", "Radiohead", fmt.Sprintf("Track R%d", i%2), "OK Computer", day.Add(time.Duration(i) * 5 * time.Minute), 200_000, false})
	}
	for i := range 3 {
		plays = append(plays, play{"ana", "Björk", "Jóga", "Homogenic", day.Add(time.Hour + time.Duration(i)*5*time.Minute), 200_000, false})
	}
	plays = append(plays,
		play{"ana", "Portishead", "Roads", "Dummy", day.Add(2 * time.Hour), 200_000, false},
		play{"ana", "Portishead", "Glory Box", "Dummy", day.Add(2*time.Hour + 5*time.Minute), 12_000, true},
		play{"ana", "Radiohead", "Track R0", "OK Computer", day.AddDate(0, 0, -8), 200_000, false})
	for i := range 4 {
		plays = append(plays, play{"ben", "Björk", "Jóga", "Homogenic", day.Add(time.Duration(i) * 5 * time.Minute), 200_000, false})
	}
	byUser := map[string][]string{}
	for _, p := range plays {
		byUser[p.user] = append(byUser[p.user], fmt.Sprintf(`{"listened_at":%d,"track_metadata":{"artist_name":%q,"track_name":%q,"release_name":%q,"additional_info":{"duration_ms":300000,"played_ms":%d,"end_reason":%q}}}`,
			p.at.Unix(), p.artist, p.track, p.album, p.played, map[bool]string{true: "skipped", false: "completed"}[p.skipped]))
	}
	for user, ls := range byUser {
		body := `{"listen_type":"import","payload":[` + strings.Join(ls, ",") + `]}`
		for range 2 { // a client retrying a batch whose answer it lost
			st, raw := b.do(t, http.MethodPost, "/v1/listens", b.bearer(t, user), body, nil)
			require.Equal(t, http.StatusOK, st, "%s", raw)
		}
	}
	testenv.WaitFor(t, 2*time.Minute, "the seeded plays to be stored", func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM stats_listen`).Scan(&n))
		return n == len(plays)
	})
}

// From POST /v1/listens through the broker and the stats-writer to what the
// listener and everyone read: history, recent plays, top lists, listening
// time and the charts, on a small seeded data set.
func TestStatisticsEndToEnd(t *testing.T) {
	t.Parallel()
	w := statswriter.New()
	b := setupWith(t, w)
	seed(t, b)
	ana := b.bearer(t, "ana")

	// History: scrobbles only (the 12-second skip is not one), newest first,
	// paged with the cursor.
	var all []stats.Listen
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		var page struct {
			Listens    []stats.Listen `json:"listens"`
			NextCursor string         `json:"next_cursor"`
		}
		st, raw := b.do(t, http.MethodGet, "/v1/me/listens?limit=4&cursor="+cursor, ana, nil, &page)
		require.Equal(t, http.StatusOK, st, "%s", raw)
		all = append(all, page.Listens...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.Len(t, all, 10)
	for i := 1; i < len(all); i++ {
		require.True(t, all[i-1].ListenedAt.After(all[i].ListenedAt), "newest first")
	}
	require.Equal(t, "Roads", all[0].TrackName)
	st, _ := b.do(t, http.MethodGet, "/v1/me/listens?cursor=garbage", ana, nil, nil)
	require.Equal(t, http.StatusUnprocessableEntity, st)

	var recent struct {
		Listens []stats.Listen `json:"listens"`
	}
	st, _ = b.do(t, http.MethodGet, "/v1/me/recent?limit=2", ana, nil, &recent)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "Glory Box", recent.Listens[0].TrackName, "recent plays include skips")
	require.True(t, recent.Listens[0].Skipped)
	require.False(t, recent.Listens[0].Stream)

	type top struct {
		Entries []stats.Entry `json:"entries"`
	}
	var artists, albums, tracks top
	st, _ = b.do(t, http.MethodGet, "/v1/me/top/artists?range=all_time", ana, nil, &artists)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, []stats.Entry{{Rank: 1, ArtistName: "Radiohead", Count: 6}, {Rank: 2, ArtistName: "Björk", Count: 3}, {Rank: 3, ArtistName: "Portishead", Count: 1}}, artists.Entries)
	b.do(t, http.MethodGet, "/v1/me/top/artists?range=week", ana, nil, &artists)
	require.Equal(t, int64(5), artists.Entries[0].Count, "28 November is outside the week to 7 December")
	b.do(t, http.MethodGet, "/v1/me/top/albums?range=month", ana, nil, &albums)
	require.Equal(t, "OK Computer", albums.Entries[0].ReleaseName)
	require.Equal(t, int64(6), albums.Entries[0].Count)
	b.do(t, http.MethodGet, "/v1/me/top/tracks?range=year&limit=1", ana, nil, &tracks)
	require.Equal(t, []stats.Entry{{Rank: 1, ArtistName: "Radiohead", TrackName: "Track R0", Count: 4}}, tracks.Entries)
	st, _ = b.do(t, http.MethodGet, "/v1/me/top/artists?range=decade", ana, nil, nil)
	require.Equal(t, http.StatusUnprocessableEntity, st)

	var lt struct {
		Days []stats.Day `json:"days"`
	}
	st, _ = b.do(t, http.MethodGet, "/v1/me/listening-time?days=7", ana, nil, &lt)
	require.Equal(t, http.StatusOK, st)
	require.Len(t, lt.Days, 7)
	require.Equal(t, stats.Day{Date: "2026-12-06", MS: 9*200_000 + 12_000}, lt.Days[5])
	require.Equal(t, stats.Day{Date: "2026-12-01", MS: 0}, lt.Days[0])

	// Charts: none before the rollup; then the daily top of 6 December by
	// streams (Björk: 3 + 4 from two listeners), served from the cache the
	// second time.
	st, _ = b.do(t, http.MethodGet, "/v1/charts/artists?period=daily&date=2026-12-06", "", nil, nil)
	require.Equal(t, http.StatusNotFound, st)
	w.Now = func() time.Time { return b.now }
	ping := event.New()
	ping.SetID("tick")
	ping.SetType(eventtype.Ping)
	ping.SetSource(statswriter.RollupSource)
	_, err := w.Handle(context.Background(), ping)
	require.NoError(t, err)
	var chart stats.Chart
	st, raw := b.do(t, http.MethodGet, "/v1/charts/artists?period=daily&date=2026-12-06", "", nil, &chart)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	require.Equal(t, []stats.Entry{{Rank: 1, ArtistName: "Björk", Count: 7, Listeners: 2}, {Rank: 2, ArtistName: "Radiohead", Count: 5, Listeners: 1}, {Rank: 3, ArtistName: "Portishead", Count: 1, Listeners: 1}}, chart.Entries)
	var weekly stats.Chart
	st, _ = b.do(t, http.MethodGet, "/v1/charts/tracks?period=weekly", "", nil, &weekly)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "2026-11-30", weekly.PeriodStart)
	require.Equal(t, "Jóga", weekly.Entries[0].TrackName)
	require.Equal(t, int64(7), weekly.Entries[0].Count)
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/v1/charts/artists?period=daily&date=2026-12-06", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, "hit", res.Header.Get("X-Cache"))
}
