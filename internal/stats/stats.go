// Package stats is the listening-statistics store: the raw listens (the
// truth, written exactly once per listen id by the stats-writer function),
// the charts rolled up from them, and the queries the listens service
// answers listeners and everyone with.
//
// Store is the interface every reader and writer goes through (no
// component reads the tables directly); [Open] picks the backend from
// STATS_BACKEND. PG is the PostgreSQL backend (stats_listen in monthly
// partitions with BRIN on time, stats_chart); CH is the ClickHouse backend
// (ReplacingMergeTree read with FINAL), over the embedded chDB engine or a
// ClickHouse server's HTTP interface. Both pass one conformance suite
// (statstest). docs/stats.md describes the store, the counting rules and the
// measurements that chose PostgreSQL as the default.
package stats

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the statistics tables.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "stats", migrations)
}

// ChartSize is how many entries a chart keeps.
const ChartSize = 50

// Periods of the charts and ranges of a listener's top lists.
const (
	Daily  = "daily"
	Weekly = "weekly"
)

// Kinds of top lists.
const (
	Tracks  = "tracks"
	Artists = "artists"
	Albums  = "albums"
)

// Ranges of a listener's top lists: trailing windows ending now.
var Ranges = map[string]time.Duration{
	"week":     7 * 24 * time.Hour,
	"month":    30 * 24 * time.Hour,
	"year":     365 * 24 * time.Hour,
	"all_time": 0,
}

// ErrNoChart: no chart was computed for the period asked.
var ErrNoChart = errors.New("stats: no chart for this period")

// Row is one stored listen of a user.
type Row struct {
	UserID string
	eventtype.Listen
}

// Listen is a listen as the read API shows it.
type Listen struct {
	ID          string    `json:"id"`
	ListenedAt  time.Time `json:"listened_at"`
	ArtistName  string    `json:"artist_name"`
	TrackName   string    `json:"track_name"`
	ReleaseName string    `json:"release_name,omitempty"`
	TrackID     string    `json:"track_id,omitempty"`
	PlayedMS    int64     `json:"played_ms,omitempty"`
	Stream      bool      `json:"stream"`
	Scrobble    bool      `json:"scrobble"`
	Skipped     bool      `json:"skipped,omitempty"`
}

// Entry is one line of a top list or chart.
type Entry struct {
	Rank        int    `json:"rank"`
	ArtistName  string `json:"artist_name"`
	TrackName   string `json:"track_name,omitempty"`
	ReleaseName string `json:"release_name,omitempty"`
	TrackID     string `json:"track_id,omitempty"`
	Count       int64  `json:"count"`
	Listeners   int64  `json:"listeners,omitempty"`
}

// Day is a listener's listening time on one UTC day.
type Day struct {
	Date string `json:"date"` // YYYY-MM-DD
	MS   int64  `json:"ms"`
}

// Chart is a computed global chart.
type Chart struct {
	Period      string    `json:"period"`
	PeriodStart string    `json:"period_start"` // YYYY-MM-DD (a Monday for weekly)
	Kind        string    `json:"kind"`
	ComputedAt  time.Time `json:"computed_at"`
	Entries     []Entry   `json:"entries"`
}

// Cursor is where a history page ends: pass it back for the next page.
type Cursor struct {
	At time.Time
	ID string
}

// Store is the statistics store both backends implement.
type Store interface {
	// Write stores rows, each listen at most once (by listen id), atomically:
	// all rows or none. It returns how many were new.
	Write(ctx context.Context, rows []Row) (int, error)
	// History is user's scrobbles, newest first, after the cursor (nil:
	// from the newest); the next cursor is nil at the end.
	History(ctx context.Context, user string, after *Cursor, limit int) ([]Listen, *Cursor, error)
	// Recent is user's last plays of any length, newest first.
	Recent(ctx context.Context, user string, limit int) ([]Listen, error)
	// Top is user's most played tracks, artists or albums (by scrobbles)
	// in the trailing window (0: all time) ending at now.
	Top(ctx context.Context, user, kind string, window time.Duration, now time.Time, limit int) ([]Entry, error)
	// ListeningTime is user's time played per UTC day over the days
	// ending with now's.
	ListeningTime(ctx context.Context, user string, days int, now time.Time) ([]Day, error)
	// Chart is the computed chart of period and kind that starts at start
	// (the zero time: the newest one), or ErrNoChart.
	Chart(ctx context.Context, period, kind string, start time.Time) (Chart, error)
	// Rollup recomputes the charts of the periods containing from .. to.
	Rollup(ctx context.Context, from, to time.Time) error
	// Rebuild recomputes every chart from the raw listens.
	Rebuild(ctx context.Context) error
	// Scan calls fn with every stored listen in from .. to (to excluded),
	// whole (as written), each once, in time order: listened_at, then
	// listen id. Its memory is bounded whatever the window holds (a page
	// of listens at most), for the readers of raw listens in bulk — the
	// recommendations' training window. An error of fn stops the scan and
	// is returned (wrapped).
	Scan(ctx context.Context, from, to time.Time, fn func(Row) error) error

	// StreamsPerDay is the streams and unique listeners per UTC day per
	// track (listens with an Overture track id) in from .. to (to
	// excluded), ordered by day then track id; days without streams are
	// absent.
	StreamsPerDay(ctx context.Context, f Filter, from, to time.Time) ([]TrackDay, error)
	// Audience is the plays, streams, unique listeners, completion and skip
	// rates and the premium share of streams in from .. to (to excluded).
	Audience(ctx context.Context, f Filter, from, to time.Time) (Audience, error)
	// StreamCounts is every given track's all-time streams (0 for a track
	// never streamed), for track and album cards.
	StreamCounts(ctx context.Context, trackIDs []string) (map[string]int64, error)
}

// Filter selects listens for dashboards: by track ids, or by artist name;
// empty = the whole catalogue. Both set: listens matching both.
type Filter struct {
	TrackIDs []string
	Artist   string
}

// TrackDay is one track's streams on one UTC day.
type TrackDay struct {
	Date      string `json:"date"` // YYYY-MM-DD
	TrackID   string `json:"track_id"`
	Streams   int64  `json:"streams"`
	Listeners int64  `json:"listeners"`
}

// Audience is a dashboard's summary of a period.
//
// Plays counts every listen (any length); Streams those of at least 30 s;
// Listeners the distinct users with at least one stream. The rates are
// over the measured plays — listens whose player reported how much it
// played (played_ms > 0; ListenBrainz scrobblers report nothing and are
// left out): CompletionRate is the share of them that were completed
// (played at least CompletedShare of the track's length and not ended by a
// skip), SkipRate the share ended by a skip. PremiumShare is the share of
// streams by premium listeners (free = 1 − PremiumShare). A rate without
// a denominator is 0.
type Audience struct {
	Plays          int64   `json:"plays"`
	Streams        int64   `json:"streams"`
	Listeners      int64   `json:"listeners"`
	CompletionRate float64 `json:"completion_rate"`
	SkipRate       float64 `json:"skip_rate"`
	PremiumShare   float64 `json:"premium_share"`
}

// CompletedShare is the part of a track's length a play must reach to
// count as completed (end_reason completed is sent at the track's end, so
// it always qualifies; 90 % also counts a player that stops during the
// last seconds' silence).
const CompletedShare = 0.9

// DayStart is the UTC day of t.
func DayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// WeekStart is the Monday (UTC) of t's ISO week.
func WeekStart(t time.Time) time.Time {
	d := DayStart(t)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// ratio is n/d, 0 without a denominator.
func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}
