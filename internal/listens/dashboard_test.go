package listens_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// dashboardSeed plays, through POST /v1/listens with the player's progress
// reports, a small known history of three tracks (200 s long): trk-a1 and
// trk-a2 of Artist A's album, trk-b1 of Artist B. ana is premium, ben and
// cat are free.
//
//	2026-11-01 ben trk-a1 200 s completed
//	2026-12-05 ana trk-a1 200 s completed · ben trk-a1 200 s completed · ben trk-a2 10 s skipped (no stream)
//	2026-12-06 ana trk-a1 185 s completed · cat trk-a2 60 s skipped · cat trk-b1 200 s completed · ana trk-b1 100 s completed (not 90 %)
func dashboardSeed(t *testing.T, b *bundle) {
	t.Helper()
	type play struct {
		user, track, artist string
		at                  time.Time
		played              int64
		reason              string
	}
	d := func(m time.Month, day, hour int) time.Time { return time.Date(2026, m, day, hour, 0, 0, 0, time.UTC) }
	plays := []play{
		{"ben", "trk-a1", "Artist A", d(11, 1, 9), 200_000, "completed"},
		{"ana", "trk-a1", "Artist A", d(12, 5, 9), 200_000, "completed"},
		{"ben", "trk-a1", "Artist A", d(12, 5, 10), 200_000, "completed"},
		{"ben", "trk-a2", "Artist A", d(12, 5, 11), 10_000, "skipped"},
		{"ana", "trk-a1", "Artist A", d(12, 6, 9), 185_000, "completed"},
		{"cat", "trk-a2", "Artist A", d(12, 6, 10), 60_000, "skipped"},
		{"cat", "trk-b1", "Artist B", d(12, 6, 11), 200_000, "completed"},
		{"ana", "trk-b1", "Artist B", d(12, 6, 12), 100_000, "completed"},
	}
	for _, p := range plays {
		body := fmt.Sprintf(`{"listen_type":"single","payload":[{"listened_at":%d,"track_metadata":{"artist_name":%q,"track_name":"Song %s","release_name":"Album","additional_info":{"overture_track_id":%q,"duration_ms":200000,"played_ms":%d,"end_reason":%q}}}]}`,
			p.at.Unix(), p.artist, p.track, p.track, p.played, p.reason)
		tok := "Bearer " + b.auth.Token(t, p.user, tokentest.Options{Premium: p.user == "ana"})
		st, raw := b.do(t, http.MethodPost, "/v1/listens", tok, body, nil)
		require.Equal(t, http.StatusOK, st, "%s", raw)
	}
	testenv.WaitFor(t, 2*time.Minute, "the seeded plays to be stored", func() bool {
		a, err := b.svc.Stats.Audience(context.Background(), stats.Filter{}, d(11, 1, 0), d(12, 8, 0))
		require.NoError(t, err)
		return a.Plays == int64(len(plays))
	})
}

func (b *bundle) admin(t *testing.T) string {
	return "Bearer " + b.auth.Token(t, "admin-1", tokentest.Options{Roles: []string{"listener", "admin"}})
}

// The admins' dashboards: streams per day per track and the audience of a
// track, an album's tracks, an artist and the whole catalogue, over a date
// range; every number checked against the seeded plays, on both statistics
// backends (PostgreSQL, and ClickHouse on the embedded chDB).
func TestDashboards(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"PostgreSQL", "ClickHouse"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			w := statswriter.New()
			if backend == "ClickHouse" {
				w.Store = statstest.OpenCH(t)
			}
			testDashboards(t, w)
		})
	}
}

func testDashboards(t *testing.T, w *statswriter.Writer) {
	b := setupWith(t, w)
	dashboardSeed(t, b)
	admin := b.admin(t)

	var sd listens.StreamsDashboard
	st, raw := b.do(t, http.MethodGet, "/v1/dashboard/streams?track_id=trk-a1&from=2026-12-05&to=2026-12-06", admin, nil, &sd)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	require.Equal(t, listens.Scope{TrackIDs: []string{"trk-a1"}}, sd.Scope)
	require.Equal(t, "2026-12-05", sd.Range.From)
	require.Equal(t, "2026-12-06", sd.Range.To)
	require.Equal(t, []stats.TrackDay{{Date: "2026-12-05", TrackID: "trk-a1", Streams: 2, Listeners: 2}, {Date: "2026-12-06", TrackID: "trk-a1", Streams: 1, Listeners: 1}}, sd.Days)

	// An album: its tracks' ids. The 10-second skip is no stream.
	st, raw = b.do(t, http.MethodGet, "/v1/dashboard/streams?track_id=trk-a1&track_id=trk-a2&from=2026-12-05&to=2026-12-06", admin, nil, &sd)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	require.Equal(t, []stats.TrackDay{{Date: "2026-12-05", TrackID: "trk-a1", Streams: 2, Listeners: 2},
		{Date: "2026-12-06", TrackID: "trk-a1", Streams: 1, Listeners: 1}, {Date: "2026-12-06", TrackID: "trk-a2", Streams: 1, Listeners: 1}}, sd.Days)

	// The default range is the 30 days ending today (7 December): 1
	// November is outside it.
	st, raw = b.do(t, http.MethodGet, "/v1/dashboard/streams?artist=Artist+A", admin, nil, &sd)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	require.Equal(t, "2026-11-08", sd.Range.From)
	require.Equal(t, "2026-12-07", sd.Range.To)
	require.Len(t, sd.Days, 3)

	audience := func(query string) listens.AudienceDashboard {
		t.Helper()
		var a listens.AudienceDashboard
		st, raw := b.do(t, http.MethodGet, "/v1/dashboard/audience?"+query, admin, nil, &a)
		require.Equal(t, http.StatusOK, st, "%s", raw)
		return a
	}
	a := audience("track_id=trk-a1&track_id=trk-a2&from=2026-12-05&to=2026-12-06")
	require.Equal(t, stats.Audience{Plays: 5, Streams: 4, Listeners: 3, CompletionRate: 3.0 / 5, SkipRate: 2.0 / 5, PremiumShare: 2.0 / 4}, a.Audience)
	require.InDelta(t, 0.5, a.FreeShare, 1e-9)
	a = audience("artist=Artist+B&from=2026-12-01&to=2026-12-07")
	require.Equal(t, listens.Scope{Artist: "Artist B"}, a.Scope)
	require.Equal(t, stats.Audience{Plays: 2, Streams: 2, Listeners: 2, CompletionRate: 1.0 / 2, SkipRate: 0, PremiumShare: 1.0 / 2}, a.Audience)
	a = audience("from=2026-11-01&to=2026-12-07")
	require.True(t, a.Scope.Catalogue)
	require.Equal(t, stats.Audience{Plays: 8, Streams: 7, Listeners: 3, CompletionRate: 5.0 / 8, SkipRate: 2.0 / 8, PremiumShare: 3.0 / 7}, a.Audience)
	require.InDelta(t, 4.0/7, a.FreeShare, 1e-9)
	a = audience("track_id=trk-b1&artist=Artist+A")
	require.Zero(t, a.Plays, "track and artist together: listens matching both")
	require.Zero(t, a.FreeShare, "no streams, no share")

	// The catalogue-wide streams per day, for a month at most.
	st, raw = b.do(t, http.MethodGet, "/v1/dashboard/streams?from=2026-12-01&to=2026-12-07", admin, nil, &sd)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	require.True(t, sd.Scope.Catalogue)
	require.Len(t, sd.Days, 4)
}

// Dashboards are for admins: there is no artist role or account ↔ artist
// link, so every scope needs the admin role.
func TestDashboardsNeedTheAdminRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/v1/dashboard/streams", "/v1/dashboard/audience", "/v1/dashboard/audience?track_id=trk-1", "/v1/dashboard/streams?artist=Artist+A"} {
		st, raw := b.do(t, http.MethodGet, path, "", nil, nil)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %s", path, raw)
		st, raw = b.do(t, http.MethodGet, path, b.bearer(t, "listener-1"), nil, nil)
		require.Equal(t, http.StatusForbidden, st, "%s: %s", path, raw)
		require.Contains(t, string(raw), "admin role")
		st, raw = b.do(t, http.MethodGet, path, b.admin(t), nil, nil)
		require.Equal(t, http.StatusOK, st, "%s: %s", path, raw)
	}
}

// A range or scope the dashboards cannot use is a 400 problem naming the
// parameter; so is a stream-count request without or with too many tracks.
func TestDashboardBadParameters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	many := func(n int) string {
		v := url.Values{}
		for i := range n {
			v.Add("track_id", fmt.Sprintf("trk-%d", i))
		}
		return v.Encode()
	}
	for _, c := range []struct{ name, path, field string }{
		{"FromNotADate", "/v1/dashboard/streams?from=yesterday", "from"},
		{"ToNotADate", "/v1/dashboard/audience?to=2026-13-01", "to"},
		{"ToWithTime", "/v1/dashboard/audience?to=2026-12-01T00:00:00Z", "to"},
		{"FromAfterTo", "/v1/dashboard/audience?from=2026-12-06&to=2026-12-05", "from"},
		{"FromInTheFuture", "/v1/dashboard/audience?from=2026-12-08&to=2026-12-09", "from"},
		{"RangeTooLong", "/v1/dashboard/audience?from=2025-12-06&to=2026-12-07", "from"},
		{"CatalogueStreamsTooLong", "/v1/dashboard/streams?from=2026-11-01&to=2026-12-07", "from"},
		{"FromTwice", "/v1/dashboard/audience?from=2026-12-01&from=2026-12-02", "from"},
		{"EmptyArtist", "/v1/dashboard/audience?artist=", "artist"},
		{"LongArtist", "/v1/dashboard/audience?artist=" + strings.Repeat("a", 513), "artist"},
		{"TwoArtists", "/v1/dashboard/audience?artist=A&artist=B", "artist"},
		{"EmptyTrack", "/v1/dashboard/streams?track_id=", "track_id"},
		{"LongTrack", "/v1/dashboard/streams?track_id=" + strings.Repeat("t", 65), "track_id"},
		{"TooManyTracks", "/v1/dashboard/streams?" + many(listens.MaxScopeTracks+1), "track_id"},
		{"CountsWithoutTracks", "/v1/stream-counts", "track_id"},
		{"CountsTooManyTracks", "/v1/stream-counts?" + many(listens.MaxCountTracks+1), "track_id"},
	} {
		st, raw := b.do(t, http.MethodGet, c.path, b.admin(t), nil, nil)
		require.Equal(t, http.StatusBadRequest, st, "%s: %s", c.name, raw)
		var p struct {
			Type   string            `json:"type"`
			Detail string            `json:"detail"`
			Errors map[string]string `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(raw, &p), "%s", raw)
		require.Equal(t, "/problems/invalid-parameter", p.Type, "%s", c.name)
		require.Contains(t, p.Errors, c.field, "%s: %s", c.name, raw)
		require.True(t, strings.HasPrefix(p.Detail, c.field+": "), "%s: %s", c.name, p.Detail)
	}
	// The longest ranges allowed are accepted.
	st, raw := b.do(t, http.MethodGet, "/v1/dashboard/audience?from=2025-12-07&to=2026-12-07", b.admin(t), nil, nil)
	require.Equal(t, http.StatusOK, st, "366 days: %s", raw)
	st, raw = b.do(t, http.MethodGet, "/v1/dashboard/streams?from=2026-11-07&to=2026-12-07", b.admin(t), nil, nil)
	require.Equal(t, http.StatusOK, st, "31 days of the catalogue: %s", raw)
	st, raw = b.do(t, http.MethodGet, "/v1/stream-counts?"+many(listens.MaxCountTracks), "", nil, nil)
	require.Equal(t, http.StatusOK, st, "100 tracks: %s", raw)
}

// GET /v1/stream-counts: every track's all-time streams, public, for the
// query API's cards, on both backends.
func TestStreamCounts(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"PostgreSQL", "ClickHouse"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			w := statswriter.New()
			if backend == "ClickHouse" {
				w.Store = statstest.OpenCH(t)
			}
			b := setupWith(t, w)
			dashboardSeed(t, b)
			var c listens.StreamCounts
			st, raw := b.do(t, http.MethodGet, "/v1/stream-counts?track_id=trk-a1&track_id=trk-a2&track_id=trk-b1&track_id=never-played&track_id=trk-a1", "", nil, &c)
			require.Equal(t, http.StatusOK, st, "%s", raw)
			require.Equal(t, map[string]int64{"trk-a1": 4, "trk-a2": 1, "trk-b1": 2, "never-played": 0}, c.Counts)
		})
	}
}
