// Package statstest is the conformance suite of stats.Store: one set of
// behaviours, with expectations computed by hand from a small fixture,
// that every backend must show (PostgreSQL and ClickHouse, see
// internal/stats's tests). A backend passes when its answers are exactly
// these — the same order, ties broken the same way, the same counts after
// duplicated and refused batches.
package statstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/stats"
)

// Now is the fixture's present: Sunday 6 December 2026, noon UTC (its ISO
// week starts on Monday 30 November).
var Now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

type track struct {
	id, artist, name, release string
	ms                        int64
}

var (
	one   = track{"t1", "Alpha", "One", "First", 200_000}
	two   = track{"t2", "Alpha", "Two", "First", 180_000}
	three = track{"t3", "Beta", "Three", "Second", 240_000}
	four  = track{"", "Gamma", "Four", "", 210_000} // a scrobbler's track: no Overture id
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// play is one listen. played 0 is a ListenBrainz scrobble (no position
// reported: a stream and a scrobble); otherwise the rules of docs/stats.md:
// a stream from 30 s, a scrobble from half the track or 4 minutes.
func play(id, user, when string, tr track, played int64, skipped, premium bool) stats.Row {
	l := eventtype.Listen{ID: id, ListenedAt: at(when).Unix(), ArtistName: tr.artist, TrackName: tr.name,
		ReleaseName: tr.release, TrackID: tr.id, DurationMS: tr.ms, PlayedMS: played, Skipped: skipped,
		Premium: premium, Client: "overture"}
	if played == 0 {
		l.Stream, l.Scrobble, l.Client = true, true, "listenbrainz"
	} else {
		l.Stream = played >= 30_000
		l.Scrobble = played >= min(tr.ms/2, 240_000)
	}
	return stats.Row{UserID: user, Listen: l}
}

// Fixture is the suite's listens. The expectations below are computed by
// hand from it; the comments give the arithmetic.
func Fixture() []stats.Row {
	return []stats.Row{
		play("a1", "ana", "2026-12-06 10:00", one, 200_000, false, true),   // completed
		play("a1b", "ana", "2026-12-06 10:00", two, 180_000, false, true),  // same second as a1: ids break the tie
		play("a2", "ana", "2026-12-06 09:00", one, 0, false, false),        // scrobbler
		play("a3", "ana", "2026-12-06 08:00", two, 20_000, true, true),     // skipped at 20 s: neither stream nor scrobble
		play("a4", "ana", "2026-12-05 20:00", three, 240_000, false, true), // completed
		play("a5", "ana", "2026-12-05 19:00", four, 0, false, false),       // scrobbler, no track id
		play("a6", "ana", "2026-11-20 12:00", one, 190_000, false, true),   // 95 %: completed; November
		play("a7", "ana", "2025-08-01 12:00", three, 0, false, false),      // more than a year ago
		play("b1", "ben", "2026-12-06 11:00", one, 100_000, true, false),   // skipped at half: stream and scrobble
		play("b2", "ben", "2026-12-06 07:00", three, 240_000, false, false),
		play("b3", "ben", "2026-12-04 12:00", three, 60_000, true, false), // stream, not a scrobble (< 2 min)
		play("c1", "cy", "2026-12-06 06:00", three, 240_000, false, true),
		play("c2", "cy", "2026-12-01 06:00", two, 180_000, false, true),
	}
}

// Run runs the suite; open returns a new, empty store for each case.
func Run(t *testing.T, open func(t *testing.T) stats.Store) {
	t.Run("History", func(t *testing.T) { history(t, filled(t, open)) })
	t.Run("Recent", func(t *testing.T) { recent(t, filled(t, open)) })
	t.Run("Top", func(t *testing.T) { top(t, filled(t, open)) })
	t.Run("ListeningTime", func(t *testing.T) { listeningTime(t, filled(t, open)) })
	t.Run("Charts", func(t *testing.T) { charts(t, open) })
	t.Run("RebuildEqualsIncremental", func(t *testing.T) { rebuild(t, open) })
	t.Run("Duplicates", func(t *testing.T) { duplicates(t, open(t)) })
	t.Run("AllOrNothing", func(t *testing.T) { allOrNothing(t, open(t)) })
	t.Run("LargestBatch", func(t *testing.T) { largestBatch(t, open(t)) })
	t.Run("GroupedWrite", func(t *testing.T) { groupedWrite(t, open(t)) })
	t.Run("StreamsPerDay", func(t *testing.T) { streamsPerDay(t, filled(t, open)) })
	t.Run("Audience", func(t *testing.T) { audience(t, filled(t, open)) })
	t.Run("StreamCounts", func(t *testing.T) { streamCounts(t, filled(t, open)) })
	t.Run("Scan", func(t *testing.T) { scan(t, open(t)) })
}

func filled(t *testing.T, open func(t *testing.T) stats.Store) stats.Store {
	t.Helper()
	s := open(t)
	n, err := s.Write(context.Background(), Fixture())
	require.NoError(t, err)
	require.Equal(t, len(Fixture()), n, "every listen of the fixture is new")
	return s
}

func ids(ls []stats.Listen) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

func history(t *testing.T, s stats.Store) {
	ctx := context.Background()
	// ana's scrobbles newest first; a1b and a1 share a second (ids
	// descending); a3 (skipped at 20 s) is no scrobble.
	page, next, err := s.History(ctx, "ana", nil, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"a1b", "a1", "a2"}, ids(page))
	require.Equal(t, &stats.Cursor{At: at("2026-12-06 09:00"), ID: "a2"}, next)
	require.Equal(t, stats.Listen{ID: "a1", ListenedAt: at("2026-12-06 10:00"), ArtistName: "Alpha", TrackName: "One",
		ReleaseName: "First", TrackID: "t1", PlayedMS: 200_000, Stream: true, Scrobble: true}, page[1])

	page, next, err = s.History(ctx, "ana", next, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"a4", "a5", "a6"}, ids(page))
	require.Equal(t, &stats.Cursor{At: at("2026-11-20 12:00"), ID: "a6"}, next)

	page, next, err = s.History(ctx, "ana", next, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"a7"}, ids(page))
	require.Nil(t, next, "the last page has no cursor")

	// A cursor inside a second: after (10:00, a1b) comes a1, same second.
	page, _, err = s.History(ctx, "ana", &stats.Cursor{At: at("2026-12-06 10:00"), ID: "a1b"}, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"a1"}, ids(page))

	// Exactly one page: no cursor.
	page, next, err = s.History(ctx, "cy", nil, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"c1", "c2"}, ids(page))
	require.Nil(t, next)

	page, next, err = s.History(ctx, "nobody", nil, 10)
	require.NoError(t, err)
	require.Empty(t, page)
	require.Nil(t, next)
}

func recent(t *testing.T, s stats.Store) {
	// Plays of any length: the skip a3 is there, with its flags.
	got, err := s.Recent(context.Background(), "ana", 4)
	require.NoError(t, err)
	require.Equal(t, []string{"a1b", "a1", "a2", "a3"}, ids(got))
	require.Equal(t, stats.Listen{ID: "a3", ListenedAt: at("2026-12-06 08:00"), ArtistName: "Alpha", TrackName: "Two",
		ReleaseName: "First", TrackID: "t2", PlayedMS: 20_000, Skipped: true}, got[3])
}

func top(t *testing.T, s stats.Store) {
	e := func(rank int, artist, name, release, id string, n int64) stats.Entry {
		return stats.Entry{Rank: rank, ArtistName: artist, TrackName: name, ReleaseName: release, TrackID: id, Count: n}
	}
	// ana's scrobbles: week (from 29 Nov noon) a1b a1 a2 a4 a5; month and
	// year add a6 (20 Nov); all time adds a7 (2025). Ties by name.
	cases := []struct {
		kind, rng string
		want      []stats.Entry
	}{
		{stats.Tracks, "week", []stats.Entry{e(1, "Alpha", "One", "", "t1", 2), e(2, "Alpha", "Two", "", "t2", 1), e(3, "Beta", "Three", "", "t3", 1), e(4, "Gamma", "Four", "", "", 1)}},
		{stats.Artists, "week", []stats.Entry{e(1, "Alpha", "", "", "", 3), e(2, "Beta", "", "", "", 1), e(3, "Gamma", "", "", "", 1)}},
		{stats.Albums, "week", []stats.Entry{e(1, "Alpha", "", "First", "", 3), e(2, "Beta", "", "Second", "", 1)}},
		{stats.Tracks, "month", []stats.Entry{e(1, "Alpha", "One", "", "t1", 3), e(2, "Alpha", "Two", "", "t2", 1), e(3, "Beta", "Three", "", "t3", 1), e(4, "Gamma", "Four", "", "", 1)}},
		{stats.Artists, "year", []stats.Entry{e(1, "Alpha", "", "", "", 4), e(2, "Beta", "", "", "", 1), e(3, "Gamma", "", "", "", 1)}},
		{stats.Artists, "all_time", []stats.Entry{e(1, "Alpha", "", "", "", 4), e(2, "Beta", "", "", "", 2), e(3, "Gamma", "", "", "", 1)}},
		{stats.Tracks, "all_time", []stats.Entry{e(1, "Alpha", "One", "", "t1", 3), e(2, "Beta", "Three", "", "t3", 2)}}, // limit 2
		{stats.Albums, "all_time", []stats.Entry{e(1, "Alpha", "", "First", "", 4), e(2, "Beta", "", "Second", "", 2)}},
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.rng, func(t *testing.T) {
			limit := 10
			if c.kind == stats.Tracks && c.rng == "all_time" {
				limit = 2
			}
			got, err := s.Top(context.Background(), "ana", c.kind, stats.Ranges[c.rng], Now, limit)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	got, err := s.Top(context.Background(), "nobody", stats.Artists, 0, Now, 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

func listeningTime(t *testing.T, s stats.Store) {
	got, err := s.ListeningTime(context.Background(), "ana", 7, Now)
	require.NoError(t, err)
	// 6 Dec: a1b 180 s + a1 200 s + a2 (no position: the length, 200 s) +
	// a3 20 s; 5 Dec: a4 240 s + a5 (the length, 210 s).
	want := []stats.Day{}
	for d, ms := range map[string]int64{"2026-11-30": 0, "2026-12-01": 0, "2026-12-02": 0, "2026-12-03": 0,
		"2026-12-04": 0, "2026-12-05": 450_000, "2026-12-06": 600_000} {
		want = append(want, stats.Day{Date: d, MS: ms})
	}
	slices.SortFunc(want, func(a, b stats.Day) int { return strings.Compare(a.Date, b.Date) })
	require.Equal(t, want, got)
}

func ce(rank int, artist, name, id string, n, listeners int64) stats.Entry {
	return stats.Entry{Rank: rank, ArtistName: artist, TrackName: name, TrackID: id, Count: n, Listeners: listeners}
}

// chartOf is a computed chart's entries.
func chartOf(t *testing.T, s stats.Store, period, kind string, start time.Time) []stats.Entry {
	t.Helper()
	c, err := s.Chart(context.Background(), period, kind, start)
	require.NoError(t, err, "%s %s chart of %s", period, kind, start)
	return c.Entries
}

func charts(t *testing.T, open func(t *testing.T) stats.Store) {
	ctx := context.Background()
	s := open(t)
	_, err := s.Chart(ctx, stats.Daily, stats.Tracks, time.Time{})
	require.ErrorIs(t, err, stats.ErrNoChart, "no chart before a rollup")

	_, err = s.Write(ctx, Fixture())
	require.NoError(t, err)
	_, err = s.Chart(ctx, stats.Daily, stats.Tracks, time.Time{})
	require.ErrorIs(t, err, stats.ErrNoChart, "charts come from the rollup, not from writes")

	// The writer's rollup: the last 7 days, twice (idempotent).
	for range 2 {
		require.NoError(t, s.Rollup(ctx, Now.AddDate(0, 0, -7), Now))
	}
	// 6 Dec streams: t1 a1 a2 b1 (ana, ben), t3 b2 c1, t2 a1b; a3 is no stream.
	daily := []stats.Entry{ce(1, "Alpha", "One", "t1", 3, 2), ce(2, "Beta", "Three", "t3", 2, 2), ce(3, "Alpha", "Two", "t2", 1, 1)}
	c, err := s.Chart(ctx, stats.Daily, stats.Tracks, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "2026-12-06", c.PeriodStart, "the newest day by default")
	require.Equal(t, daily, c.Entries)
	require.False(t, c.ComputedAt.IsZero())
	require.Equal(t, daily, chartOf(t, s, stats.Daily, stats.Tracks, at("2026-12-06 00:00")))
	require.Equal(t, []stats.Entry{ce(1, "Alpha", "", "", 4, 2), ce(2, "Beta", "", "", 2, 2)},
		chartOf(t, s, stats.Daily, stats.Artists, at("2026-12-06 00:00")))
	// 5 Dec: one stream each, one listener each: by name.
	require.Equal(t, []stats.Entry{ce(1, "Beta", "Three", "t3", 1, 1), ce(2, "Gamma", "Four", "", 1, 1)},
		chartOf(t, s, stats.Daily, stats.Tracks, at("2026-12-05 00:00")))
	// Week of 30 Nov: t3 a4 b2 b3 c1 (3 listeners), t1 a1 a2 b1, t2 a1b c2, Four a5.
	weekly := []stats.Entry{ce(1, "Beta", "Three", "t3", 4, 3), ce(2, "Alpha", "One", "t1", 3, 2),
		ce(3, "Alpha", "Two", "t2", 2, 2), ce(4, "Gamma", "Four", "", 1, 1)}
	c, err = s.Chart(ctx, stats.Weekly, stats.Tracks, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "2026-11-30", c.PeriodStart)
	require.Equal(t, weekly, c.Entries)
	require.Equal(t, []stats.Entry{ce(1, "Alpha", "", "", 5, 3), ce(2, "Beta", "", "", 4, 3), ce(3, "Gamma", "", "", 1, 1)},
		chartOf(t, s, stats.Weekly, stats.Artists, at("2026-11-30 00:00")))
	_, err = s.Chart(ctx, stats.Daily, stats.Tracks, at("2026-12-03 00:00"))
	require.ErrorIs(t, err, stats.ErrNoChart, "a day without streams has no chart")
	_, err = s.Chart(ctx, stats.Daily, stats.Tracks, at("2026-11-20 00:00"))
	require.ErrorIs(t, err, stats.ErrNoChart, "outside the rollup's window")

	// A late listen of Two on 6 Dec: the rollup recomputes (never adds
	// to) the chart; Two now ties Three on streams and listeners and
	// ranks first by name.
	_, err = s.Write(ctx, []stats.Row{play("d1", "dan", "2026-12-06 05:00", two, 180_000, false, false)})
	require.NoError(t, err)
	require.NoError(t, s.Rollup(ctx, Now.AddDate(0, 0, -1), Now))
	require.Equal(t, []stats.Entry{ce(1, "Alpha", "One", "t1", 3, 2), ce(2, "Alpha", "Two", "t2", 2, 2), ce(3, "Beta", "Three", "t3", 2, 2)},
		chartOf(t, s, stats.Daily, stats.Tracks, at("2026-12-06 00:00")))
	require.NoError(t, s.Rollup(ctx, Now.AddDate(0, 0, -1), Now))
	require.Equal(t, []stats.Entry{ce(1, "Alpha", "One", "t1", 3, 2), ce(2, "Alpha", "Two", "t2", 2, 2), ce(3, "Beta", "Three", "t3", 2, 2)},
		chartOf(t, s, stats.Daily, stats.Tracks, at("2026-12-06 00:00")), "a repeated rollup changes nothing")
}

// every chart of the fixture's periods (nil where there is none).
func allCharts(t *testing.T, s stats.Store) map[string][]stats.Entry {
	t.Helper()
	out := map[string][]stats.Entry{}
	var days []time.Time
	for _, span := range [][2]string{{"2025-07-28 00:00", "2025-08-03 00:00"}, {"2026-11-16 00:00", "2026-12-06 00:00"}} {
		for d := at(span[0]); !d.After(at(span[1])); d = d.AddDate(0, 0, 1) {
			days = append(days, d)
		}
	}
	for _, d := range days {
		for _, kind := range []string{stats.Tracks, stats.Artists} {
			for _, period := range []string{stats.Daily, stats.Weekly} {
				if period == stats.Weekly && d.Weekday() != time.Monday {
					continue
				}
				c, err := s.Chart(context.Background(), period, kind, d)
				if err == stats.ErrNoChart {
					continue
				}
				require.NoError(t, err)
				out[fmt.Sprintf("%s %s %s", period, kind, c.PeriodStart)] = c.Entries
			}
		}
	}
	return out
}

func rebuild(t *testing.T, open func(t *testing.T) stats.Store) {
	ctx := context.Background()
	s := open(t)
	require.NoError(t, s.Rebuild(ctx), "rebuilding an empty store")
	// Incrementally: each listen's day rolled up after it was written.
	for _, r := range Fixture() {
		_, err := s.Write(ctx, []stats.Row{r})
		require.NoError(t, err)
		when := time.Unix(r.ListenedAt, 0)
		require.NoError(t, s.Rollup(ctx, when, when))
	}
	incremental := allCharts(t, s)
	// Streams fall on 2025-08-01, 2026-11-20, 12-01, 12-04, 12-05, 12-06:
	// 6 days and 3 weeks (28 Jul 2025, 16 and 30 Nov 2026), tracks and artists.
	require.Len(t, incremental, 2*(6+3))
	require.Equal(t, []stats.Entry{ce(1, "Beta", "Three", "t3", 1, 1)}, incremental["weekly tracks 2025-07-28"])
	require.NoError(t, s.Rebuild(ctx))
	require.Equal(t, incremental, allCharts(t, s), "rebuilt charts equal the incremental ones")
	require.NoError(t, s.Rebuild(ctx))
	require.Equal(t, incremental, allCharts(t, s), "and a second rebuild too")
}

func duplicates(t *testing.T, s stats.Store) {
	ctx := context.Background()
	rows := Fixture()
	n, err := s.Write(ctx, rows)
	require.NoError(t, err)
	require.Equal(t, 13, n)
	n, err = s.Write(ctx, rows)
	require.NoError(t, err)
	require.Equal(t, 0, n, "a redelivered batch adds nothing")
	// A batch overlapping stored listens, holding one new listen twice.
	late := play("a8", "ana", "2026-12-06 11:30", three, 240_000, false, true)
	n, err = s.Write(ctx, append([]stats.Row{late, rows[0], rows[6], late}, rows[9:]...))
	require.NoError(t, err)
	require.Equal(t, 1, n, "only a8 is new, once")
	recent, err := s.Recent(ctx, "ana", 100)
	require.NoError(t, err)
	require.Equal(t, []string{"a8", "a1b", "a1", "a2", "a3", "a4", "a5", "a6", "a7"}, ids(recent))
	counts, err := s.StreamCounts(ctx, []string{"t3"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"t3": 6}, counts, "t3: a4 a7 b2 b3 c1 and a8, each once")
	n, err = s.Write(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, n)
}

func allOrNothing(t *testing.T, s stats.Store) {
	ctx := context.Background()
	// 600 listens of eve across November and December; the last has a
	// negative position, which both stores refuse: the whole batch with it.
	var rows []stats.Row
	start := at("2026-11-30 20:00")
	for i := range 600 {
		r := play(fmt.Sprintf("e%03d", i), "eve", "2026-11-30 20:00", one, 200_000, false, false)
		r.ListenedAt = start.Add(time.Duration(i) * time.Minute).Unix()
		rows = append(rows, r)
	}
	bad := rows[599]
	bad.PlayedMS = -1
	_, err := s.Write(ctx, append(rows[:599:599], bad))
	require.Error(t, err)
	got, err := s.Recent(ctx, "eve", 1000)
	require.NoError(t, err)
	require.Empty(t, got, "nothing of a refused batch is stored")

	n, err := s.Write(ctx, rows)
	require.NoError(t, err)
	require.Equal(t, 600, n, "the corrected batch is stored whole")
	got, err = s.Recent(ctx, "eve", 1000)
	require.NoError(t, err)
	require.Len(t, got, 600)
	require.Equal(t, "e599", got[0].ID)
	require.Equal(t, "e000", got[599].ID)
}

func streamsPerDay(t *testing.T, s stats.Store) {
	ctx := context.Background()
	d := func(date, id string, n, l int64) stats.TrackDay {
		return stats.TrackDay{Date: date, TrackID: id, Streams: n, Listeners: l}
	}
	cases := []struct {
		name     string
		f        stats.Filter
		from, to string
		want     []stats.TrackDay
	}{
		// Four (no track id) and the skip a3 are not counted.
		{"catalogue", stats.Filter{}, "2026-12-04 00:00", "2026-12-07 00:00", []stats.TrackDay{
			d("2026-12-04", "t3", 1, 1), d("2026-12-05", "t3", 1, 1),
			d("2026-12-06", "t1", 3, 2), d("2026-12-06", "t2", 1, 1), d("2026-12-06", "t3", 2, 2)}},
		{"artist", stats.Filter{Artist: "Alpha"}, "2026-11-01 00:00", "2026-12-07 00:00", []stats.TrackDay{
			d("2026-11-20", "t1", 1, 1), d("2026-12-01", "t2", 1, 1), d("2026-12-06", "t1", 3, 2), d("2026-12-06", "t2", 1, 1)}},
		{"tracks", stats.Filter{TrackIDs: []string{"t2", "t3"}}, "2026-12-05 00:00", "2026-12-06 00:00", []stats.TrackDay{
			d("2026-12-05", "t3", 1, 1)}},
		{"end excluded", stats.Filter{TrackIDs: []string{"t1"}}, "2026-12-05 00:00", "2026-12-06 00:00", nil},
		{"both", stats.Filter{TrackIDs: []string{"t3"}, Artist: "Alpha"}, "2025-01-01 00:00", "2027-01-01 00:00", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.StreamsPerDay(ctx, c.f, at(c.from), at(c.to))
			require.NoError(t, err)
			if c.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, c.want, got)
		})
	}
}

func audience(t *testing.T, s stats.Store) {
	ctx := context.Background()
	cases := []struct {
		name     string
		f        stats.Filter
		from, to string
		want     stats.Audience
	}{
		// 6 Dec: plays a1 a1b a2 a3 b1 b2 c1; streams all but a3, by ana,
		// ben, cy. Measured (a position reported): all but a2; completed
		// a1 a1b b2 c1; skipped a3 b1. Premium streams a1 a1b c1 of 6.
		{"day", stats.Filter{}, "2026-12-06 00:00", "2026-12-07 00:00",
			stats.Audience{Plays: 7, Streams: 6, Listeners: 3, CompletionRate: 4.0 / 6, SkipRate: 2.0 / 6, PremiumShare: 0.5}},
		// t1: a1 a2 a6 b1; measured a1 a6 b1, completed a1 a6 (95 %),
		// skipped b1; premium a1 a6.
		{"track", stats.Filter{TrackIDs: []string{"t1"}}, "2026-11-01 00:00", "2026-12-07 00:00",
			stats.Audience{Plays: 4, Streams: 4, Listeners: 2, CompletionRate: 2.0 / 3, SkipRate: 1.0 / 3, PremiumShare: 0.5}},
		// Beta on 4–5 Dec: b3 (skipped at 60 s, free), a4 (completed, premium).
		{"artist", stats.Filter{Artist: "Beta"}, "2026-12-04 00:00", "2026-12-06 00:00",
			stats.Audience{Plays: 2, Streams: 2, Listeners: 2, CompletionRate: 0.5, SkipRate: 0.5, PremiumShare: 0.5}},
		// Gamma: a5 only, a scrobble: no measured play, no premium stream.
		{"unmeasured", stats.Filter{Artist: "Gamma"}, "2026-01-01 00:00", "2027-01-01 00:00",
			stats.Audience{Plays: 1, Streams: 1, Listeners: 1}},
		{"nothing", stats.Filter{Artist: "Nobody"}, "2026-01-01 00:00", "2027-01-01 00:00", stats.Audience{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Audience(ctx, c.f, at(c.from), at(c.to))
			require.NoError(t, err)
			require.Equal(t, c.want.Plays, got.Plays)
			require.Equal(t, c.want.Streams, got.Streams)
			require.Equal(t, c.want.Listeners, got.Listeners)
			require.InDelta(t, c.want.CompletionRate, got.CompletionRate, 1e-9)
			require.InDelta(t, c.want.SkipRate, got.SkipRate, 1e-9)
			require.InDelta(t, c.want.PremiumShare, got.PremiumShare, 1e-9)
		})
	}
}

func streamCounts(t *testing.T, s stats.Store) {
	ctx := context.Background()
	// All time: t1 a1 a2 a6 b1; t2 a1b c2 (a3 is no stream); t3 a4 a7 b2
	// b3 c1; t9 was never played.
	got, err := s.StreamCounts(ctx, []string{"t1", "t2", "t3", "t9"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"t1": 4, "t2": 2, "t3": 5, "t9": 0}, got)
	got, err = s.StreamCounts(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)
}

// largestBatch: the listens service's largest batch — 1,000 listens with
// long names (about 4.5 MB of rows, beyond ClickHouse's default
// max_query_size) — is stored whole.
func largestBatch(t *testing.T, s stats.Store) {
	ctx := context.Background()
	long := strings.Repeat("ä'\\x", 300) // quotes and backslashes too
	var rows []stats.Row
	for i := range 1000 {
		tr := track{fmt.Sprintf("long-%d", i), "Artist " + long, fmt.Sprintf("Track %d %s", i, long), "Album " + long, 200_000}
		r := play(fmt.Sprintf("l%04d", i), "lou", "2026-12-01 00:00", tr, 0, false, false)
		r.ListenedAt += int64(i)
		rows = append(rows, r)
	}
	n, err := s.Write(ctx, rows)
	require.NoError(t, err)
	require.Equal(t, 1000, n)
	got, err := s.Recent(ctx, "lou", 1)
	require.NoError(t, err)
	require.Equal(t, "Track 999 "+long, got[0].TrackName)
	counts, err := s.StreamCounts(ctx, []string{"long-0", "long-999"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"long-0": 1, "long-999": 1}, counts)
}

// groupedWrite: the stats-writer's grouped write — 10,000 listens of 50
// users across November and December, 2,000 of them stored before (a
// redelivered batch among new ones) and one repeated inside the write — is
// stored whole, each listen once, and counts only the new ones.
func groupedWrite(t *testing.T, s stats.Store) {
	ctx := context.Background()
	start := at("2026-11-29 00:00")
	var rows []stats.Row
	for i := range 10_000 {
		u := fmt.Sprintf("g%02d", i%50)
		id := sha256.Sum256(fmt.Appendf(nil, "%s-%d", u, i)) // as long as the listens service's ids
		r := play(hex.EncodeToString(id[:16]), u, "2026-11-29 00:00", []track{one, two, three, four}[i%4], 0, false, false)
		r.ListenedAt = start.Add(time.Duration(i) * time.Minute).Unix() // to 5 December
		rows = append(rows, r)
	}
	n, err := s.Write(ctx, rows[3000:5000])
	require.NoError(t, err)
	require.Equal(t, 2000, n)
	n, err = s.Write(ctx, append(rows, rows[7]))
	require.NoError(t, err)
	require.Equal(t, 8000, n, "the 2,000 stored before and the repeated listen are not new")
	n, err = s.Write(ctx, rows)
	require.NoError(t, err)
	require.Zero(t, n, "the whole write redelivered adds nothing")
	for _, u := range []string{"g00", "g49"} {
		got, err := s.Recent(ctx, u, 1000)
		require.NoError(t, err)
		require.Len(t, got, 200, "%s: each of its listens once", u)
	}
	a, err := s.Audience(ctx, stats.Filter{}, start, start.AddDate(0, 1, 0))
	require.NoError(t, err)
	require.Equal(t, int64(10_000), a.Plays)
	require.Equal(t, int64(50), a.Listeners)
}

// ScanOrder is the fixture in Scan's order: by time, a1 before a1b in
// their shared second (by id).
var ScanOrder = []string{"a7", "a6", "c2", "b3", "a5", "a4", "c1", "b2", "a3", "a2", "a1", "a1b", "b1"}

// Scanned is what s.Scan passes fn over from .. to, checked to be whole
// fixture listens.
func Scanned(t *testing.T, s stats.Store, from, to time.Time) []string {
	t.Helper()
	want := map[string]stats.Row{}
	for _, r := range Fixture() {
		want[r.ID] = r
	}
	var got []string
	require.NoError(t, s.Scan(context.Background(), from, to, func(r stats.Row) error {
		require.Equal(t, want[r.ID], r, "a listen is read back as written")
		got = append(got, r.ID)
		return nil
	}))
	return got
}

func scan(t *testing.T, s stats.Store) {
	ctx := context.Background()
	rows := Fixture()
	// Stored with a redelivery and an overlapping batch: still each once.
	for range 2 {
		_, err := s.Write(ctx, rows)
		require.NoError(t, err)
	}
	_, err := s.Write(ctx, append([]stats.Row{rows[3]}, rows[9:]...))
	require.NoError(t, err)

	require.Equal(t, ScanOrder, Scanned(t, s, at("2025-01-01 00:00"), at("2027-01-01 00:00")), "every listen once, in time order")
	// From included, to excluded: 5 Dec 20:00 is a4; 6 Dec 10:00 is a1 and a1b.
	require.Equal(t, []string{"a4", "c1", "b2", "a3", "a2"}, Scanned(t, s, at("2026-12-05 20:00"), at("2026-12-06 10:00")))
	require.Empty(t, Scanned(t, s, at("2026-12-07 00:00"), at("2027-01-01 00:00")), "nothing after b1")
	require.Empty(t, Scanned(t, s, at("2026-12-06 10:00"), at("2026-12-06 10:00")), "an empty window")

	// fn's error stops the scan and comes back.
	stop := errors.New("enough")
	n := 0
	err = s.Scan(ctx, at("2025-01-01 00:00"), at("2027-01-01 00:00"), func(stats.Row) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n, "no listen after the error")
}
