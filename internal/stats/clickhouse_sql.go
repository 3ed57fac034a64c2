package stats

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The ClickHouse schema. It is applied with IF NOT EXISTS at every open
// (ClickHouse has no goose; a later change adds an idempotent ALTER … IF
// NOT EXISTS here). {db} is the store's database.
//
// stats_listen: ReplacingMergeTree, so two copies of a listen (a
// redelivered batch racing its first delivery, an INSERT retried after a
// lost answer) collapse into one; every read uses FINAL, which collapses
// them at read time too, before the background merge has. The sorting key
// is the replacing key: (user_id, listened_at, listen_id) — a listen id
// determines its user and time, so it is as unique as the id, and it is
// the order of one listener's reads (history, recent, top lists).
// Partitions are months (a listen's copies share its month, as replacing
// needs). Charts and dashboards scan by time: a month's partition is
// pruned by its min/max time; track and artist filters use bloom-filter
// skip indexes. insert_deduplication_token needs a deduplication window
// on a non-replicated MergeTree (its default there is 0: off). The
// constraints are checked on the whole inserted block before any part is
// written, so a batch with one bad row stores nothing.
var clickhouseSchema = []string{
	`CREATE DATABASE IF NOT EXISTS {db}`,
	`CREATE TABLE IF NOT EXISTS {db}.stats_listen (
		listen_id    String,
		user_id      String,
		listened_at  DateTime('UTC'),
		artist_name  String,
		track_name   String,
		release_name String DEFAULT '',
		track_id     String DEFAULT '',
		duration_ms  Int64 DEFAULT 0,
		played_ms    Int64 DEFAULT 0,
		stream       Bool,
		scrobble     Bool,
		skipped      Bool DEFAULT false,
		premium      Bool DEFAULT false,
		client       LowCardinality(String) DEFAULT '',
		INDEX stats_listen_track track_id TYPE bloom_filter GRANULARITY 4,
		INDEX stats_listen_artist artist_name TYPE bloom_filter GRANULARITY 4,
		CONSTRAINT stats_listen_ids CHECK listen_id != '' AND user_id != '',
		CONSTRAINT stats_listen_ms CHECK duration_ms >= 0 AND played_ms >= 0
	) ENGINE = ReplacingMergeTree
	PARTITION BY toYYYYMM(listened_at)
	ORDER BY (user_id, listened_at, listen_id)
	SETTINGS non_replicated_deduplication_window = 1000`,
	// Charts are versions: a rollup inserts a period's whole chart with
	// one computed_at, readers take the newest version, and the replacing
	// key (period, kind, period_start, rank) drops older entries of the
	// same rank in merges. Recomputed, never incremented.
	`CREATE TABLE IF NOT EXISTS {db}.stats_chart (
		period       LowCardinality(String),
		period_start Date,
		kind         LowCardinality(String),
		rank         UInt32,
		artist_name  String,
		track_name   String DEFAULT '',
		track_id     String DEFAULT '',
		streams      UInt64,
		listeners    UInt64,
		computed_at  DateTime64(3, 'UTC')
	) ENGINE = ReplacingMergeTree(computed_at)
	ORDER BY (period, kind, period_start, rank)`,
}

// lit is s as a ClickHouse string literal.
func lit(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case 0:
			b.WriteString(`\0`) // the embedded engine takes the query as a C string
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// litList is ss as a parenthesised list of literals.
func litList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = lit(s)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// ts is t as a ClickHouse DateTime in UTC (second precision, as stored).
func ts(t time.Time) string {
	return "toDateTime(" + strconv.FormatInt(t.Unix(), 10) + ", 'UTC')"
}

// day is t's date as a ClickHouse Date.
func day(t time.Time) string { return "toDate(" + lit(t.UTC().Format(time.DateOnly)) + ")" }

// chFilter is f as conditions.
func chFilter(f Filter) string {
	var where string
	if len(f.TrackIDs) > 0 {
		where += " AND track_id IN " + litList(f.TrackIDs)
	}
	if f.Artist != "" {
		where += " AND artist_name = " + lit(f.Artist)
	}
	return where
}

const chListenCols = `listen_id, toUnixTimestamp(listened_at) AS at, artist_name, track_name, release_name, track_id, played_ms, stream, scrobble, skipped`

// chRollup is the INSERT … SELECT computing the charts of one period and
// kind for every period starting in from .. to: ranked by streams, then
// unique listeners, then names (as PostgreSQL ranks them).
func chRollup(db, period, kind string, from, to time.Time) string {
	start := "toDate(listened_at)"
	if period == Weekly {
		start = "toMonday(listened_at)"
	}
	tname := "track_name"
	group, cols := "artist_name, track_name", "artist_name, track_name, max(track_id) AS tid"
	if kind == Artists {
		tname = "''"
		group, cols = "artist_name", "artist_name, '' AS tid"
	}
	return fmt.Sprintf(`INSERT INTO %[1]s.stats_chart (period, period_start, kind, rank, artist_name, track_name, track_id, streams, listeners, computed_at)
		SELECT %[2]s, ps, %[3]s, rank, artist_name, %[10]s, tid, streams, listeners, now64(3, 'UTC')
		FROM (
			SELECT %[4]s AS ps, %[5]s, count() AS streams, uniqExact(user_id) AS listeners,
			       row_number() OVER (PARTITION BY ps ORDER BY streams DESC, listeners DESC, %[6]s) AS rank
			FROM %[1]s.stats_listen FINAL
			WHERE stream AND listened_at >= %[7]s AND listened_at < %[8]s
			GROUP BY ps, %[6]s
		) WHERE rank <= %[9]d`,
		db, lit(period), lit(kind), start, cols, group, ts(from), ts(to), ChartSize, tname)
}

// chInsertCols and chInsertStructure are stats_listen's columns as Write
// sends them (JSONEachRow, listened_at in Unix seconds).
const (
	chInsertCols      = "listen_id, user_id, listened_at, artist_name, track_name, release_name, track_id, duration_ms, played_ms, stream, scrobble, skipped, premium, client"
	chInsertStructure = "listen_id String, user_id String, listened_at DateTime('UTC'), artist_name String, track_name String, release_name String, track_id String, duration_ms Int64, played_ms Int64, stream Bool, scrobble Bool, skipped Bool, premium Bool, client String"
)

// chInsert is the INSERT of rows (JSONEachRow lines) into db's listens
// with a deduplication token.
func chInsert(db, token, rows string) string {
	return fmt.Sprintf("INSERT INTO %s.stats_listen (%s) SELECT %s FROM format(JSONEachRow, %s, %s) SETTINGS insert_deduplication_token = %s",
		db, chInsertCols, chInsertCols, lit(chInsertStructure), lit(rows), lit(token))
}
