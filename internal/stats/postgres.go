package stats

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// chunk is how many rows one INSERT statement carries.
const chunk = 500

// PG is the PostgreSQL backend.
type PG struct {
	Pool *pgxpool.Pool
	// AfterChunk, when set, runs inside a Write's transaction after each
	// INSERT of up to 500 rows, with the rows written so far; an error
	// aborts the transaction (the crash tests interrupt a batch there).
	AfterChunk func(ctx context.Context, n int) error

	mu     sync.Mutex
	months map[time.Time]bool // partitions known to exist
}

var _ Store = (*PG)(nil)

// NewPG returns the PostgreSQL store on pool (migrated with Migrate).
func NewPG(pool *pgxpool.Pool) *PG { return &PG{Pool: pool, months: map[time.Time]bool{}} }

func monthOf(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// ensurePartitions creates the monthly partitions rows fall into, one
// creator at a time (advisory lock), before the insert's transaction.
func (s *PG) ensurePartitions(ctx context.Context, rows []Row) error {
	need := map[time.Time]bool{}
	s.mu.Lock()
	for _, r := range rows {
		m := monthOf(time.Unix(r.ListenedAt, 0))
		if !s.months[m] {
			need[m] = true
		}
	}
	s.mu.Unlock()
	if len(need) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('stats_listen partitions'))`); err != nil {
			return err
		}
		for m := range need {
			name := fmt.Sprintf("stats_listen_p%04d%02d", m.Year(), m.Month())
			q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF stats_listen FOR VALUES FROM ('%s') TO ('%s')`,
				name, m.Format(time.DateOnly), m.AddDate(0, 1, 0).Format(time.DateOnly))
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create listen partitions: %w", err)
	}
	s.mu.Lock()
	for m := range need {
		s.months[m] = true
	}
	s.mu.Unlock()
	return nil
}

// Write implements Store: one transaction, INSERT … ON CONFLICT DO NOTHING
// on the listen id, so a redelivered or repeated batch adds nothing and an
// interrupted one left nothing.
func (s *PG) Write(ctx context.Context, rows []Row) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if err := s.ensurePartitions(ctx, rows); err != nil {
		return 0, err
	}
	added := 0
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		added = 0
		for i := 0; i < len(rows); i += chunk {
			part := rows[i:min(i+chunk, len(rows))]
			n := len(part)
			ids, users, tracks, artists, releases, trackIDs, clients := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			ats := make([]time.Time, n)
			durs, played := make([]int64, n), make([]int64, n)
			stream, scrobble, skipped, premium := make([]bool, n), make([]bool, n), make([]bool, n), make([]bool, n)
			for j, r := range part {
				ids[j], users[j], ats[j] = r.ID, r.UserID, time.Unix(r.ListenedAt, 0).UTC()
				artists[j], tracks[j], releases[j], trackIDs[j], clients[j] = r.ArtistName, r.TrackName, r.ReleaseName, r.TrackID, r.Client
				durs[j], played[j] = r.DurationMS, r.PlayedMS
				stream[j], scrobble[j], skipped[j], premium[j] = r.Stream, r.Scrobble, r.Skipped, r.Premium
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO stats_listen (listen_id, user_id, listened_at, artist_name, track_name, release_name, track_id,
				                          duration_ms, played_ms, stream, scrobble, skipped, premium, client)
				SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
				                     $8::bigint[], $9::bigint[], $10::bool[], $11::bool[], $12::bool[], $13::bool[], $14::text[])
				ON CONFLICT DO NOTHING`,
				ids, users, ats, artists, tracks, releases, trackIDs, durs, played, stream, scrobble, skipped, premium, clients)
			if err != nil {
				return err
			}
			added += int(tag.RowsAffected())
			if s.AfterChunk != nil {
				if err := s.AfterChunk(ctx, i+n); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("write listens: %w", err)
	}
	return added, nil
}

const listenCols = `listen_id, listened_at, artist_name, track_name, release_name, track_id, played_ms, stream, scrobble, skipped`

func scanListens(rows pgx.Rows) ([]Listen, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Listen, error) {
		var l Listen
		err := r.Scan(&l.ID, &l.ListenedAt, &l.ArtistName, &l.TrackName, &l.ReleaseName, &l.TrackID, &l.PlayedMS, &l.Stream, &l.Scrobble, &l.Skipped)
		l.ListenedAt = l.ListenedAt.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read listens: %w", err)
	}
	return out, nil
}

// History implements Store.
func (s *PG) History(ctx context.Context, user string, after *Cursor, limit int) ([]Listen, *Cursor, error) {
	at, id := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ""
	if after != nil {
		at, id = after.At, after.ID
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+listenCols+` FROM stats_listen
		WHERE user_id = $1 AND scrobble AND (listened_at, listen_id) < ($2, $3)
		ORDER BY listened_at DESC, listen_id DESC LIMIT $4`, user, at, id, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	out, err := scanListens(rows)
	if err != nil {
		return nil, nil, err
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	last := out[len(out)-1]
	return out, &Cursor{At: last.ListenedAt, ID: last.ID}, nil
}

// Recent implements Store.
func (s *PG) Recent(ctx context.Context, user string, limit int) ([]Listen, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+listenCols+` FROM stats_listen WHERE user_id = $1
		ORDER BY listened_at DESC, listen_id DESC LIMIT $2`, user, limit)
	if err != nil {
		return nil, fmt.Errorf("recent: %w", err)
	}
	return scanListens(rows)
}

// Top implements Store.
func (s *PG) Top(ctx context.Context, user, kind string, window time.Duration, now time.Time, limit int) ([]Entry, error) {
	from := time.Unix(0, 0)
	if window > 0 {
		from = now.Add(-window)
	}
	var group, cols string
	switch kind {
	case Tracks:
		group, cols = "artist_name, track_name", "artist_name, track_name, '' AS release_name, max(track_id)"
	case Artists:
		group, cols = "artist_name", "artist_name, '' AS track_name, '' AS release_name, ''"
	case Albums:
		group, cols = "artist_name, release_name", "artist_name, '' AS track_name, release_name, ''"
	default:
		return nil, fmt.Errorf("stats: unknown kind %q", kind)
	}
	where := ""
	if kind == Albums {
		where = " AND release_name <> ''"
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+cols+`, count(*) AS n FROM stats_listen
		WHERE user_id = $1 AND scrobble AND listened_at >= $2 AND listened_at <= $3`+where+`
		GROUP BY `+group+` ORDER BY n DESC, `+group+` LIMIT $4`, user, from, now, limit)
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", kind, err)
	}
	return collectEntries(rows)
}

func collectEntries(rows pgx.Rows) ([]Entry, error) {
	rank := 0
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		rank++
		e.Rank = rank
		err := r.Scan(&e.ArtistName, &e.TrackName, &e.ReleaseName, &e.TrackID, &e.Count)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read top list: %w", err)
	}
	return out, nil
}

// ListeningTime implements Store: played_ms, or the track's length when
// the client did not report how much it played.
func (s *PG) ListeningTime(ctx context.Context, user string, days int, now time.Time) ([]Day, error) {
	to := DayStart(now).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -days)
	rows, err := s.Pool.Query(ctx, `
		SELECT to_char(d, 'YYYY-MM-DD'), coalesce(sum(CASE WHEN l.played_ms > 0 THEN l.played_ms ELSE l.duration_ms END), 0)::bigint
		FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 day', interval '1 day') AS d
		LEFT JOIN stats_listen l ON l.user_id = $1 AND l.listened_at >= d AND l.listened_at < d + interval '1 day'
		GROUP BY d ORDER BY d`, user, from, to)
	if err != nil {
		return nil, fmt.Errorf("listening time: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Day, error) {
		var d Day
		err := r.Scan(&d.Date, &d.MS)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("listening time: %w", err)
	}
	return out, nil
}

// Chart implements Store.
func (s *PG) Chart(ctx context.Context, period, kind string, start time.Time) (Chart, error) {
	c := Chart{Period: period, Kind: kind}
	day := start
	if start.IsZero() {
		var newest *time.Time
		if err := s.Pool.QueryRow(ctx, `SELECT max(period_start) FROM stats_chart WHERE period = $1 AND kind = $2`, period, kind).Scan(&newest); err != nil {
			return c, fmt.Errorf("chart: %w", err)
		}
		if newest == nil {
			return c, ErrNoChart
		}
		day = *newest
	}
	rows, err := s.Pool.Query(ctx, `SELECT rank, artist_name, track_name, track_id, streams, listeners, computed_at
		FROM stats_chart WHERE period = $1 AND kind = $2 AND period_start = $3 ORDER BY rank`, period, kind, day)
	if err != nil {
		return c, fmt.Errorf("chart: %w", err)
	}
	c.Entries, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Rank, &e.ArtistName, &e.TrackName, &e.TrackID, &e.Count, &e.Listeners, &c.ComputedAt)
		return e, err
	})
	if err != nil {
		return c, fmt.Errorf("chart: %w", err)
	}
	if len(c.Entries) == 0 {
		return c, ErrNoChart
	}
	c.PeriodStart = day.Format(time.DateOnly)
	c.ComputedAt = c.ComputedAt.UTC()
	return c, nil
}

// Rollup implements Store: each day and week touching from .. to is
// recomputed from the raw listens in one transaction (replacing what was
// there), so a rollup can run any number of times.
func (s *PG) Rollup(ctx context.Context, from, to time.Time) error {
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { return rollup(ctx, tx, from, to) })
	if err != nil {
		return fmt.Errorf("rollup: %w", err)
	}
	return nil
}

func rollup(ctx context.Context, tx pgx.Tx, from, to time.Time) error {
	for d := DayStart(from); !d.After(to); d = d.AddDate(0, 0, 1) {
		if err := rollupPeriod(ctx, tx, Daily, d, d.AddDate(0, 0, 1)); err != nil {
			return err
		}
	}
	for w := WeekStart(from); !w.After(to); w = w.AddDate(0, 0, 7) {
		if err := rollupPeriod(ctx, tx, Weekly, w, w.AddDate(0, 0, 7)); err != nil {
			return err
		}
	}
	return nil
}

func rollupPeriod(ctx context.Context, tx pgx.Tx, period string, from, to time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM stats_chart WHERE period = $1 AND period_start = $2`, period, from); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO stats_chart (period, period_start, kind, rank, artist_name, track_name, track_id, streams, listeners)
		SELECT $1, $2::date, 'tracks', row_number() OVER (ORDER BY count(*) DESC, count(DISTINCT user_id) DESC, artist_name, track_name),
		       artist_name, track_name, max(track_id), count(*), count(DISTINCT user_id)
		FROM stats_listen WHERE stream AND listened_at >= $2 AND listened_at < $3
		GROUP BY artist_name, track_name ORDER BY 4 LIMIT $4`, period, from, to, ChartSize); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO stats_chart (period, period_start, kind, rank, artist_name, streams, listeners)
		SELECT $1, $2::date, 'artists', row_number() OVER (ORDER BY count(*) DESC, count(DISTINCT user_id) DESC, artist_name),
		       artist_name, count(*), count(DISTINCT user_id)
		FROM stats_listen WHERE stream AND listened_at >= $2 AND listened_at < $3
		GROUP BY artist_name ORDER BY 4 LIMIT $4`, period, from, to, ChartSize)
	return err
}

// Rebuild implements Store: every chart from the first listen to the last,
// in one transaction (readers see the old charts until it commits).
func (s *PG) Rebuild(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var first, last *time.Time
		if err := tx.QueryRow(ctx, `SELECT min(listened_at), max(listened_at) FROM stats_listen`).Scan(&first, &last); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM stats_chart`); err != nil {
			return err
		}
		if first == nil {
			return nil
		}
		return rollup(ctx, tx, *first, *last)
	})
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}

// filterSQL is f as conditions on stats_listen, with its arguments
// numbered after the first n.
func filterSQL(f Filter, n int) (string, []any) {
	var where string
	var args []any
	if len(f.TrackIDs) > 0 {
		args = append(args, f.TrackIDs)
		where += fmt.Sprintf(" AND track_id = ANY($%d)", n+len(args))
	}
	if f.Artist != "" {
		args = append(args, f.Artist)
		where += fmt.Sprintf(" AND artist_name = $%d", n+len(args))
	}
	return where, args
}

// StreamsPerDay implements Store.
func (s *PG) StreamsPerDay(ctx context.Context, f Filter, from, to time.Time) ([]TrackDay, error) {
	where, args := filterSQL(f, 2)
	rows, err := s.Pool.Query(ctx, `
		SELECT to_char(date_trunc('day', listened_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS d, track_id, count(*), count(DISTINCT user_id)
		FROM stats_listen WHERE stream AND track_id <> '' AND listened_at >= $1 AND listened_at < $2`+where+`
		GROUP BY d, track_id ORDER BY d, track_id`, append([]any{from, to}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("streams per day: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TrackDay, error) {
		var d TrackDay
		err := r.Scan(&d.Date, &d.TrackID, &d.Streams, &d.Listeners)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("streams per day: %w", err)
	}
	return out, nil
}

// Audience implements Store (the definitions are Audience's).
func (s *PG) Audience(ctx context.Context, f Filter, from, to time.Time) (Audience, error) {
	where, args := filterSQL(f, 3)
	var a Audience
	var measured, completed, skipped, premium int64
	err := s.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE stream), count(DISTINCT user_id) FILTER (WHERE stream),
		       count(*) FILTER (WHERE played_ms > 0),
		       count(*) FILTER (WHERE played_ms > 0 AND NOT skipped AND duration_ms > 0 AND played_ms >= $3::float8 * duration_ms),
		       count(*) FILTER (WHERE played_ms > 0 AND skipped),
		       count(*) FILTER (WHERE stream AND premium)
		FROM stats_listen WHERE listened_at >= $1 AND listened_at < $2`+where,
		append([]any{from, to, CompletedShare}, args...)...).
		Scan(&a.Plays, &a.Streams, &a.Listeners, &measured, &completed, &skipped, &premium)
	if err != nil {
		return a, fmt.Errorf("audience: %w", err)
	}
	a.CompletionRate, a.SkipRate, a.PremiumShare = ratio(completed, measured), ratio(skipped, measured), ratio(premium, a.Streams)
	return a, nil
}

// StreamCounts implements Store.
func (s *PG) StreamCounts(ctx context.Context, trackIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(trackIDs))
	for _, id := range trackIDs {
		out[id] = 0
	}
	if len(trackIDs) == 0 {
		return out, nil
	}
	rows, err := s.Pool.Query(ctx, `SELECT track_id, count(*) FROM stats_listen WHERE stream AND track_id = ANY($1) GROUP BY track_id`, trackIDs)
	if err != nil {
		return nil, fmt.Errorf("stream counts: %w", err)
	}
	var id string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil }); err != nil {
		return nil, fmt.Errorf("stream counts: %w", err)
	}
	return out, nil
}

// Scan implements Store: one query whose rows pgx reads off the
// connection as fn takes them (the server sorts, spilling to disk past
// work_mem), so the process holds one listen at a time.
func (s *PG) Scan(ctx context.Context, from, to time.Time, fn func(Row) error) error {
	rows, err := s.Pool.Query(ctx, `
		SELECT listen_id, user_id, listened_at, artist_name, track_name, release_name, track_id,
		       duration_ms, played_ms, stream, scrobble, skipped, premium, client
		FROM stats_listen WHERE listened_at >= $1 AND listened_at < $2
		ORDER BY listened_at, listen_id`, from, to)
	if err != nil {
		return fmt.Errorf("scan listens: %w", err)
	}
	var r Row
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.UserID, &at, &r.ArtistName, &r.TrackName, &r.ReleaseName, &r.TrackID,
		&r.DurationMS, &r.PlayedMS, &r.Stream, &r.Scrobble, &r.Skipped, &r.Premium, &r.Client}, func() error {
		r.ListenedAt = at.Unix()
		return fn(r)
	})
	if err != nil {
		return fmt.Errorf("scan listens: %w", err)
	}
	return nil
}
