package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/overture-music/overture/internal/stats"
)

// query is one read the product runs, with its parameters drawn from the
// data: a random listen picks the listener, the artist, the day — so busy
// listeners and popular artists are asked for as often as they occur, the
// way requests arrive.
type query struct {
	name, what string
	goal       string // "history" or "chart": the goal it is held to
	// rounds caps the samples (heavy queries); 0: -samples.
	rounds int
	// days: the parameters cycle through the same 30 listens (days), so
	// that the chart reads find the charts the rollup computed.
	days bool
	run  func(ctx context.Context, s stats.Store, r rec) error
}

func (ds *dataset) queries() []query {
	ts, end := ds.gen.Tracks(), genEnd
	user := func(r rec) string { return ds.gen.Listeners()[r.user].ID }
	artist := func(r rec) string { return ts[r.track].ArtistName }
	at := func(r rec) time.Time { return genStart.Add(time.Duration(r.at) * time.Second) }
	month := func(r rec) time.Time { t := at(r); return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	return []query{
		{name: "history page", goal: "history", what: "`History(user, nil, 25)`: a listener's newest 25 scrobbles",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, _, err := s.History(ctx, user(r), nil, 25)
				return err
			}},
		{name: "history page, deep", goal: "history", what: "`History(user, cursor, 25)` from a cursor at a random listen of theirs",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, _, err := s.History(ctx, user(r), &stats.Cursor{At: at(r), ID: "~"}, 25)
				return err
			}},
		{name: "recent plays", what: "`Recent(user, 10)`",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, err := s.Recent(ctx, user(r), 10)
				return err
			}},
		{name: "top artists, year", what: "`Top(user, artists, 365 days, 50)`",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, err := s.Top(ctx, user(r), stats.Artists, 365*24*time.Hour, end, 50)
				return err
			}},
		{name: "top tracks, all time", what: "`Top(user, tracks, all time, 50)`",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, err := s.Top(ctx, user(r), stats.Tracks, 0, end, 50)
				return err
			}},
		{name: "listening time, 30 days", what: "`ListeningTime(user, 30 days)` ending at a random listen of theirs",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, err := s.ListeningTime(ctx, user(r), 30, at(r))
				return err
			}},
		{name: "chart rollup, a day", rounds: 30, days: true, what: "`Rollup(day, day)`: computes from the raw listens the top 50 tracks and artists of the day **and of its ISO week** (what the 5-minute PingSource runs, per period)",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				d := stats.DayStart(at(r))
				return s.Rollup(ctx, d, d)
			}},
		{name: "global daily chart", goal: "chart", days: true, what: "`Chart(daily, tracks, day)`: reads a computed chart (what `GET /v1/charts/tracks` serves on a cache miss)",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, err := s.Chart(ctx, stats.Daily, stats.Tracks, stats.DayStart(at(r)))
				return err
			}},
		{name: "artist streams per day, year", what: "`StreamsPerDay({artist}, 365 days)`: per day per track, with unique listeners",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				_, err := s.StreamsPerDay(ctx, stats.Filter{Artist: artist(r)}, end.AddDate(-1, 0, 0), end)
				return err
			}},
		{name: "unique listeners, artist, month", what: "`Audience({artist}, calendar month)`: plays, streams, unique listeners, completion, skips, premium share",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				m := month(r)
				_, err := s.Audience(ctx, stats.Filter{Artist: artist(r)}, m, m.AddDate(0, 1, 0))
				return err
			}},
		{name: "unique listeners, everyone, month", rounds: 20, what: "`Audience({}, calendar month)`: the same over every listen of the month (the admins' dashboard)",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				m := month(r)
				_, err := s.Audience(ctx, stats.Filter{}, m, m.AddDate(0, 1, 0))
				return err
			}},
		{name: "stream counts, album card", what: "`StreamCounts(album's track ids)`: all-time streams of an album's tracks",
			run: func(ctx context.Context, s stats.Store, r rec) error {
				t := ts[r.track]
				var ids []string
				for _, o := range ts[max(0, t.Index-20):min(len(ts), t.Index+20)] {
					if o.AlbumID == t.AlbumID {
						ids = append(ids, o.ID)
					}
				}
				_, err := s.StreamCounts(ctx, ids)
				return err
			}},
	}
}

type queryResult struct {
	name, what, goal string
	n                int
	client, server   []time.Duration // sorted
	serverOK         bool
}

// runQueries times each query on b: 3 unmeasured calls, then up to
// -samples (or the query's rounds) calls within -query-budget, one at a
// time, the same parameters on every backend (a fixed seed).
func runQueries(ctx context.Context, b *backend, ds *dataset) []queryResult {
	var out []queryResult
	drnd := rand.New(rand.NewPCG(7, 1<<32))
	days := make([]rec, 30)
	for i := range days {
		days[i] = ds.recs[drnd.IntN(len(ds.recs))]
	}
	cycle := len(days) // days whose charts exist: those the rollup timed
	for qi, q := range ds.queries() {
		rnd := rand.New(rand.NewPCG(7, uint64(qi)))
		pickRec := func(i int) rec {
			if q.days {
				return days[i%cycle]
			}
			return ds.recs[rnd.IntN(len(ds.recs))]
		}
		for i := range 3 {
			if err := q.run(ctx, b.query, pickRec(i)); err != nil {
				must(fmt.Errorf("%s on %s: %w", q.name, b.name, err))
			}
		}
		n := *samples
		if q.rounds > 0 {
			n = min(n, q.rounds)
		}
		res := queryResult{name: q.name, what: q.what, goal: q.goal, serverOK: true}
		deadline := time.Now().Add(*budget)
		for i := 0; i < n && (i < 10 || time.Now().Before(deadline)); i++ {
			r := pickRec(i)
			srv := b.serverTime()
			t := time.Now()
			err := q.run(ctx, b.query, r)
			d := time.Since(t)
			if err != nil {
				must(fmt.Errorf("%s on %s: %w", q.name, b.name, err))
			}
			res.client = append(res.client, d)
			if s, ok := srv(); ok {
				res.server = append(res.server, s)
			} else {
				res.serverOK = false
			}
		}
		res.n = len(res.client)
		if q.days && q.goal != "chart" {
			cycle = max(3, min(len(days), res.n))
		}
		slices.Sort(res.client)
		slices.Sort(res.server)
		slog.Info("query", "backend", b.name, "query", q.name, "n", res.n, "p50", pct(res.client, 50), "p95", pct(res.client, 95))
		out = append(out, res)
	}
	return out
}

// pct is the p-th percentile of sorted (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond))
	}
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
