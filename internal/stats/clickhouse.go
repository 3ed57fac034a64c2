package stats

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/overture-music/overture/internal/eventtype"
)

// Executor runs one ClickHouse statement and returns its output (rows in
// JSONEachRow for a SELECT). Two implement it: the embedded engine (chDB,
// in process) and a ClickHouse server over its HTTP interface; the store's
// SQL is the same for both.
type Executor interface {
	Exec(ctx context.Context, sql string) ([]byte, error)
}

// MaxQuerySize is the largest statement the store sends (ClickHouse's
// max_query_size, 256 KiB by default, counts the rows of an INSERT … SELECT
// FROM format()): 1,000 listens of up to 10 KiB each, escaped, with room.
const MaxQuerySize = 64 << 20

// Embedded is the process's chDB session as an Executor (see chdb.go: one
// session per process, opened on first use; every caller must name the
// same data directory).
func Embedded(lib, dataDir string) (Executor, error) {
	e, err := openEmbedded(lib, dataDir)
	if err != nil {
		return nil, err
	}
	return chdbExec{e}, nil
}

type chdbExec struct{ e *chdbEngine }

func (x chdbExec) Exec(ctx context.Context, sql string) ([]byte, error) {
	return x.e.exec(ctx, sql, "JSONEachRow")
}

// HTTPExecutor is a ClickHouse server's HTTP interface (port 8123): the
// statement is the POST body, the answer the body of a 200, anything else
// an error carrying the server's message. The URL carries the credentials
// if any (http://user:password@host:8123).
type HTTPExecutor struct {
	URL    string
	Client *http.Client // nil: http.DefaultClient
}

// Exec implements Executor.
func (h HTTPExecutor) Exec(ctx context.Context, sql string) ([]byte, error) {
	u, err := url.Parse(h.URL)
	if err != nil {
		return nil, fmt.Errorf("clickhouse url: %w", err)
	}
	q := u.Query()
	q.Set("default_format", "JSONEachRow")
	q.Set("max_query_size", strconv.Itoa(MaxQuerySize))
	u.RawQuery = q.Encode()
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(sql))
	if err != nil {
		return nil, err
	}
	if user != nil {
		pw, _ := user.Password()
		req.Header.Set("X-ClickHouse-User", user.Username())
		req.Header.Set("X-ClickHouse-Key", pw)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("clickhouse: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// CH is the ClickHouse backend: the same tables and queries as PG (see
// clickhouse_sql.go for the schema and why), on an Executor.
type CH struct {
	// Page is how many listens one query of Scan reads (0: ScanPage); tests
	// set a small one to cross pages.
	Page int

	x  Executor
	db string

	// mu makes Write's "which ids are new" and its INSERT one step for the
	// stores of this process, so the count it returns is exact even when a
	// batch is redelivered while its first delivery is being written.
	// Several writer processes on one server may each count a racing
	// duplicate as new; the stored listens stay exact (replacing key).
	mu *sync.Mutex
}

var _ Store = (*CH)(nil)

// writeLocks are the per-database write locks of this process.
var writeLocks sync.Map

var dbName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// NewCH opens the ClickHouse store in database db on x, creating its
// tables if needed.
func NewCH(ctx context.Context, x Executor, db string) (*CH, error) {
	if !dbName.MatchString(db) {
		return nil, fmt.Errorf("stats: %q is not a ClickHouse database name (letters, digits, _)", db)
	}
	for _, stmt := range clickhouseSchema {
		if _, err := x.Exec(ctx, strings.ReplaceAll(stmt, "{db}", db)); err != nil {
			return nil, fmt.Errorf("stats: create clickhouse schema: %w", err)
		}
	}
	mu, _ := writeLocks.LoadOrStore(db, &sync.Mutex{})
	return &CH{x: x, db: db, mu: mu.(*sync.Mutex)}, nil
}

// Database is the store's database.
func (s *CH) Database() string { return s.db }

// Exec runs a statement on the store's executor (the benchmark and tests
// read sizes and counts with it).
func (s *CH) Exec(ctx context.Context, sql string) ([]byte, error) { return s.x.Exec(ctx, sql) }

// num is a ClickHouse number in JSON, quoted (64-bit integers, by
// default in some versions) or not.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(strings.Trim(string(b), `"`), 10, 64)
	*n = num(v)
	return err
}

// query runs a SELECT and decodes each JSONEachRow line with each.
func (s *CH) query(ctx context.Context, sql string, each func(dec func(any) error) error) error {
	out, err := s.x.Exec(ctx, sql)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), len(out)+1)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := each(func(v any) error { return json.Unmarshal(line, v) }); err != nil {
			return fmt.Errorf("decode %q: %w", line, err)
		}
	}
	return sc.Err()
}

// chRow is a listen as inserted (JSONEachRow; listened_at in Unix seconds).
type chRow struct {
	ListenID    string `json:"listen_id"`
	UserID      string `json:"user_id"`
	ListenedAt  int64  `json:"listened_at"`
	ArtistName  string `json:"artist_name"`
	TrackName   string `json:"track_name"`
	ReleaseName string `json:"release_name"`
	TrackID     string `json:"track_id"`
	DurationMS  int64  `json:"duration_ms"`
	PlayedMS    int64  `json:"played_ms"`
	Stream      bool   `json:"stream"`
	Scrobble    bool   `json:"scrobble"`
	Skipped     bool   `json:"skipped"`
	Premium     bool   `json:"premium"`
	Client      string `json:"client"`
}

// Write implements Store. The listen ids already stored are looked up
// first (by the sorting key: users, time span, ids), and only the new rows
// are inserted, as ONE INSERT: ClickHouse checks the constraints on the
// whole block before writing, and writes each month's part atomically.
// The rows travel inside the statement as a string (INSERT … SELECT FROM
// format()), never as data after FORMAT: the embedded engine is
// clickhouse-local, which reads such an INSERT's data from the process's
// stdin too when stdin holds input (and refuses the INSERT).
// The INSERT carries a deduplication token (a hash of its ids), so
// retrying it after a lost answer inserts nothing twice; and copies that
// still get in (racing writers) collapse by the replacing key and are
// never counted by the reads (FINAL).
//
// What is not atomic: a batch spanning two months is two parts, committed
// one after the other; a process killed between the two leaves the first
// month's listens stored until the batch's redelivery (not acknowledged,
// so redelivered) stores the rest, adding nothing twice.
func (s *CH) Write(ctx context.Context, rows []Row) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	users := map[string]bool{}
	ids := make([]string, 0, len(rows))
	first, last := rows[0].ListenedAt, rows[0].ListenedAt
	for _, r := range rows {
		users[r.UserID] = true
		ids = append(ids, r.ID)
		first, last = min(first, r.ListenedAt), max(last, r.ListenedAt)
	}
	userList := make([]string, 0, len(users))
	for u := range users {
		userList = append(userList, u)
	}
	have := map[string]bool{}
	err := s.query(ctx, fmt.Sprintf(`SELECT DISTINCT listen_id FROM %s.stats_listen
		WHERE user_id IN %s AND listened_at >= %s AND listened_at <= %s AND listen_id IN %s`,
		s.db, litList(userList), ts(time.Unix(first, 0)), ts(time.Unix(last, 0)), litList(ids)),
		func(dec func(any) error) error {
			var r struct {
				ID string `json:"listen_id"`
			}
			if err := dec(&r); err != nil {
				return err
			}
			have[r.ID] = true
			return nil
		})
	if err != nil {
		return 0, fmt.Errorf("write listens: existing ids: %w", err)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	tok := sha256.New()
	added := 0
	for _, r := range rows {
		if have[r.ID] {
			continue
		}
		have[r.ID] = true // the same listen twice in a batch counts once
		added++
		tok.Write([]byte(r.ID))
		tok.Write([]byte{0})
		if err := enc.Encode(chRow{ListenID: r.ID, UserID: r.UserID, ListenedAt: r.ListenedAt, ArtistName: r.ArtistName,
			TrackName: r.TrackName, ReleaseName: r.ReleaseName, TrackID: r.TrackID, DurationMS: r.DurationMS,
			PlayedMS: r.PlayedMS, Stream: r.Stream, Scrobble: r.Scrobble, Skipped: r.Skipped, Premium: r.Premium,
			Client: r.Client}); err != nil {
			return 0, fmt.Errorf("write listens: %w", err)
		}
	}
	if added == 0 {
		return 0, nil
	}
	sql := chInsert(s.db, hex.EncodeToString(tok.Sum(nil)), body.String())
	if _, err := s.x.Exec(ctx, sql); err != nil {
		return 0, fmt.Errorf("write listens: %w", err)
	}
	return added, nil
}

type chListen struct {
	ID          string `json:"listen_id"`
	At          num    `json:"at"`
	ArtistName  string `json:"artist_name"`
	TrackName   string `json:"track_name"`
	ReleaseName string `json:"release_name"`
	TrackID     string `json:"track_id"`
	PlayedMS    num    `json:"played_ms"`
	Stream      bool   `json:"stream"`
	Scrobble    bool   `json:"scrobble"`
	Skipped     bool   `json:"skipped"`
}

func (s *CH) listens(ctx context.Context, sql string) ([]Listen, error) {
	var out []Listen
	err := s.query(ctx, sql, func(dec func(any) error) error {
		var r chListen
		if err := dec(&r); err != nil {
			return err
		}
		out = append(out, Listen{ID: r.ID, ListenedAt: time.Unix(int64(r.At), 0).UTC(), ArtistName: r.ArtistName,
			TrackName: r.TrackName, ReleaseName: r.ReleaseName, TrackID: r.TrackID, PlayedMS: int64(r.PlayedMS),
			Stream: r.Stream, Scrobble: r.Scrobble, Skipped: r.Skipped})
		return nil
	})
	return out, err
}

// History implements Store.
func (s *CH) History(ctx context.Context, user string, after *Cursor, limit int) ([]Listen, *Cursor, error) {
	cond := ""
	if after != nil {
		cond = fmt.Sprintf(" AND (listened_at, listen_id) < (%s, %s)", ts(after.At), lit(after.ID))
	}
	out, err := s.listens(ctx, fmt.Sprintf(`SELECT %s FROM %s.stats_listen FINAL
		WHERE user_id = %s AND scrobble%s ORDER BY listened_at DESC, listen_id DESC LIMIT %d`,
		chListenCols, s.db, lit(user), cond, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	l := out[len(out)-1]
	return out, &Cursor{At: l.ListenedAt, ID: l.ID}, nil
}

// Recent implements Store.
func (s *CH) Recent(ctx context.Context, user string, limit int) ([]Listen, error) {
	out, err := s.listens(ctx, fmt.Sprintf(`SELECT %s FROM %s.stats_listen FINAL
		WHERE user_id = %s ORDER BY listened_at DESC, listen_id DESC LIMIT %d`, chListenCols, s.db, lit(user), limit))
	if err != nil {
		return nil, fmt.Errorf("recent: %w", err)
	}
	return out, nil
}

type chEntry struct {
	Rank        num    `json:"rank"`
	ArtistName  string `json:"artist_name"`
	TrackName   string `json:"track_name"`
	ReleaseName string `json:"release_name"`
	TrackID     string `json:"track_id"`
	TID         string `json:"tid"` // a top list's track id (an alias must not shadow the column)
	Count       num    `json:"n"`
	Listeners   num    `json:"listeners"`
	ComputedAt  num    `json:"computed_ms"`
}

func (e chEntry) entry() Entry {
	return Entry{Rank: int(e.Rank), ArtistName: e.ArtistName, TrackName: e.TrackName, ReleaseName: e.ReleaseName,
		TrackID: e.TrackID + e.TID, Count: int64(e.Count), Listeners: int64(e.Listeners)}
}

// Top implements Store.
func (s *CH) Top(ctx context.Context, user, kind string, window time.Duration, now time.Time, limit int) ([]Entry, error) {
	from := time.Unix(0, 0)
	if window > 0 {
		from = now.Add(-window)
	}
	var group, cols, where string
	switch kind {
	case Tracks:
		group, cols = "artist_name, track_name", "artist_name, track_name, max(track_id) AS tid"
	case Artists:
		group, cols = "artist_name", "artist_name"
	case Albums:
		group, cols, where = "artist_name, release_name", "artist_name, release_name", " AND release_name != ''"
	default:
		return nil, fmt.Errorf("stats: unknown kind %q", kind)
	}
	var out []Entry
	err := s.query(ctx, fmt.Sprintf(`SELECT %s, count() AS n FROM %s.stats_listen FINAL
		WHERE user_id = %s AND scrobble AND listened_at >= %s AND listened_at <= %s%s
		GROUP BY %s ORDER BY n DESC, %s LIMIT %d`,
		cols, s.db, lit(user), ts(from), ts(now), where, group, group, limit),
		func(dec func(any) error) error {
			var e chEntry
			if err := dec(&e); err != nil {
				return err
			}
			e.Rank = num(len(out) + 1)
			out = append(out, e.entry())
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", kind, err)
	}
	return out, nil
}

// ListeningTime implements Store: played_ms, or the track's length when
// the client did not report how much it played.
func (s *CH) ListeningTime(ctx context.Context, user string, days int, now time.Time) ([]Day, error) {
	to := DayStart(now).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -days)
	ms := map[string]int64{}
	err := s.query(ctx, fmt.Sprintf(`SELECT toString(toDate(listened_at)) AS d, sum(if(played_ms > 0, played_ms, duration_ms)) AS ms
		FROM %s.stats_listen FINAL WHERE user_id = %s AND listened_at >= %s AND listened_at < %s GROUP BY d`,
		s.db, lit(user), ts(from), ts(to)),
		func(dec func(any) error) error {
			var r struct {
				D  string `json:"d"`
				MS num    `json:"ms"`
			}
			if err := dec(&r); err != nil {
				return err
			}
			ms[r.D] = int64(r.MS)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("listening time: %w", err)
	}
	out := make([]Day, 0, days)
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		k := d.Format(time.DateOnly)
		out = append(out, Day{Date: k, MS: ms[k]})
	}
	return out, nil
}

// Chart implements Store: the newest version of the period's chart.
func (s *CH) Chart(ctx context.Context, period, kind string, start time.Time) (Chart, error) {
	c := Chart{Period: period, Kind: kind}
	if start.IsZero() {
		var r struct {
			D string `json:"d"`
			N num    `json:"n"`
		}
		err := s.query(ctx, fmt.Sprintf(`SELECT toString(max(period_start)) AS d, count() AS n FROM %s.stats_chart
			WHERE period = %s AND kind = %s`, s.db, lit(period), lit(kind)), func(dec func(any) error) error { return dec(&r) })
		if err != nil {
			return c, fmt.Errorf("chart: %w", err)
		}
		if r.N == 0 {
			return c, ErrNoChart
		}
		d, err := time.Parse(time.DateOnly, r.D)
		if err != nil {
			return c, fmt.Errorf("chart: %w", err)
		}
		start = d
	}
	err := s.query(ctx, fmt.Sprintf(`SELECT rank, artist_name, track_name, track_id, streams AS n, listeners,
			toUnixTimestamp64Milli(computed_at) AS computed_ms
		FROM %[1]s.stats_chart FINAL
		WHERE period = %[2]s AND kind = %[3]s AND period_start = %[4]s
		  AND computed_at = (SELECT max(computed_at) FROM %[1]s.stats_chart WHERE period = %[2]s AND kind = %[3]s AND period_start = %[4]s)
		ORDER BY rank`, s.db, lit(period), lit(kind), day(start)),
		func(dec func(any) error) error {
			var e chEntry
			if err := dec(&e); err != nil {
				return err
			}
			c.Entries = append(c.Entries, e.entry())
			c.ComputedAt = time.UnixMilli(int64(e.ComputedAt)).UTC()
			return nil
		})
	if err != nil {
		return c, fmt.Errorf("chart: %w", err)
	}
	if len(c.Entries) == 0 {
		return c, ErrNoChart
	}
	c.PeriodStart = start.Format(time.DateOnly)
	return c, nil
}

// Rollup implements Store: each day and week touching from .. to gets a
// new version of its charts, computed from the raw listens (never
// incremented), so a rollup can run any number of times.
func (s *CH) Rollup(ctx context.Context, from, to time.Time) error {
	periods := []struct {
		period   string
		from, to time.Time
	}{
		{Daily, DayStart(from), DayStart(to).AddDate(0, 0, 1)},
		{Weekly, WeekStart(from), WeekStart(to).AddDate(0, 0, 7)},
	}
	for _, p := range periods {
		for _, kind := range []string{Tracks, Artists} {
			if _, err := s.x.Exec(ctx, chRollup(s.db, p.period, kind, p.from, p.to)); err != nil {
				return fmt.Errorf("rollup %s %s: %w", p.period, kind, err)
			}
		}
	}
	return nil
}

// Rebuild implements Store: every period from the first listen to the
// last gets a new version of its charts (readers see the previous version
// of a chart until its new one is inserted).
func (s *CH) Rebuild(ctx context.Context) error {
	var r struct {
		First num `json:"first"`
		Last  num `json:"last"`
		N     num `json:"n"`
	}
	err := s.query(ctx, fmt.Sprintf(`SELECT toUnixTimestamp(min(listened_at)) AS first, toUnixTimestamp(max(listened_at)) AS last, count() AS n
		FROM %s.stats_listen`, s.db), func(dec func(any) error) error { return dec(&r) })
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if r.N == 0 {
		return nil
	}
	if err := s.Rollup(ctx, time.Unix(int64(r.First), 0), time.Unix(int64(r.Last), 0)); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}

// StreamsPerDay implements Store.
func (s *CH) StreamsPerDay(ctx context.Context, f Filter, from, to time.Time) ([]TrackDay, error) {
	var out []TrackDay
	err := s.query(ctx, fmt.Sprintf(`SELECT toString(toDate(listened_at)) AS date, track_id, count() AS streams, uniqExact(user_id) AS listeners
		FROM %s.stats_listen FINAL WHERE stream AND track_id != '' AND listened_at >= %s AND listened_at < %s%s
		GROUP BY date, track_id ORDER BY date, track_id`, s.db, ts(from), ts(to), chFilter(f)),
		func(dec func(any) error) error {
			var r struct {
				Date      string `json:"date"`
				TrackID   string `json:"track_id"`
				Streams   num    `json:"streams"`
				Listeners num    `json:"listeners"`
			}
			if err := dec(&r); err != nil {
				return err
			}
			out = append(out, TrackDay{Date: r.Date, TrackID: r.TrackID, Streams: int64(r.Streams), Listeners: int64(r.Listeners)})
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("streams per day: %w", err)
	}
	return out, nil
}

// Audience implements Store (the definitions are Audience's).
func (s *CH) Audience(ctx context.Context, f Filter, from, to time.Time) (Audience, error) {
	var r struct {
		Plays, Streams, Listeners, Measured, Completed, Skipped, Premium num
	}
	err := s.query(ctx, fmt.Sprintf(`SELECT count() AS Plays, countIf(stream) AS Streams, uniqExactIf(user_id, stream) AS Listeners,
			countIf(played_ms > 0) AS Measured,
			countIf(played_ms > 0 AND NOT skipped AND duration_ms > 0 AND played_ms >= %v * duration_ms) AS Completed,
			countIf(played_ms > 0 AND skipped) AS Skipped, countIf(stream AND premium) AS Premium
		FROM %s.stats_listen FINAL WHERE listened_at >= %s AND listened_at < %s%s`,
		CompletedShare, s.db, ts(from), ts(to), chFilter(f)), func(dec func(any) error) error { return dec(&r) })
	if err != nil {
		return Audience{}, fmt.Errorf("audience: %w", err)
	}
	return Audience{Plays: int64(r.Plays), Streams: int64(r.Streams), Listeners: int64(r.Listeners),
		CompletionRate: ratio(int64(r.Completed), int64(r.Measured)), SkipRate: ratio(int64(r.Skipped), int64(r.Measured)),
		PremiumShare: ratio(int64(r.Premium), int64(r.Streams))}, nil
}

// StreamCounts implements Store.
func (s *CH) StreamCounts(ctx context.Context, trackIDs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(trackIDs))
	for _, id := range trackIDs {
		out[id] = 0
	}
	if len(trackIDs) == 0 {
		return out, nil
	}
	err := s.query(ctx, fmt.Sprintf(`SELECT track_id, count() AS n FROM %s.stats_listen FINAL
		WHERE stream AND track_id IN %s GROUP BY track_id`, s.db, litList(trackIDs)),
		func(dec func(any) error) error {
			var r struct {
				ID string `json:"track_id"`
				N  num    `json:"n"`
			}
			if err := dec(&r); err != nil {
				return err
			}
			out[r.ID] = int64(r.N)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("stream counts: %w", err)
	}
	return out, nil
}

// ScanPage is how many listens one query of CH.Scan reads: its memory is
// one page's answer and rows (about 40 MB at 50,000 listens).
const ScanPage = 50_000

// chScanRow is a listen as Scan reads it (64-bit numbers may come quoted).
type chScanRow struct {
	ListenID    string `json:"listen_id"`
	UserID      string `json:"user_id"`
	At          num    `json:"at"`
	ArtistName  string `json:"artist_name"`
	TrackName   string `json:"track_name"`
	ReleaseName string `json:"release_name"`
	TrackID     string `json:"track_id"`
	DurationMS  num    `json:"duration_ms"`
	PlayedMS    num    `json:"played_ms"`
	Stream      bool   `json:"stream"`
	Scrobble    bool   `json:"scrobble"`
	Skipped     bool   `json:"skipped"`
	Premium     bool   `json:"premium"`
	Client      string `json:"client"`
}

// Scan implements Store: pages of ScanPage listens (s.Page, when set, in
// tests), each a FINAL query — copies of a listen not yet merged are read
// once — that starts after the last listen of the one before (keyset on
// listened_at, listen_id: unique, as a listen id determines its time), so
// memory stays one page whatever the window holds, and the month
// partitions already read are pruned from the next pages.
func (s *CH) Scan(ctx context.Context, from, to time.Time, fn func(Row) error) error {
	page := cmp.Or(s.Page, ScanPage)
	// listened_at holds whole seconds: >= from and < to are >= and < the
	// next whole second of each.
	from, to = ceilSecond(from), ceilSecond(to)
	after := ""
	for {
		n := 0
		var last Row
		var fnErr error
		err := s.query(ctx, fmt.Sprintf(`SELECT listen_id, user_id, toUnixTimestamp(listened_at) AS at, artist_name,
				track_name, release_name, track_id, duration_ms, played_ms, stream, scrobble, skipped, premium, client
			FROM %s.stats_listen FINAL WHERE listened_at >= %s AND listened_at < %s%s
			ORDER BY listened_at, listen_id LIMIT %d`, s.db, ts(from), ts(to), after, page),
			func(dec func(any) error) error {
				var c chScanRow
				if err := dec(&c); err != nil {
					return err
				}
				n++
				last = Row{UserID: c.UserID, Listen: eventtype.Listen{ID: c.ListenID, ListenedAt: int64(c.At),
					ArtistName: c.ArtistName, TrackName: c.TrackName, ReleaseName: c.ReleaseName, TrackID: c.TrackID,
					DurationMS: int64(c.DurationMS), PlayedMS: int64(c.PlayedMS), Stream: c.Stream, Scrobble: c.Scrobble,
					Skipped: c.Skipped, Premium: c.Premium, Client: c.Client}}
				fnErr = fn(last)
				return fnErr
			})
		if fnErr != nil {
			return fmt.Errorf("scan listens: %w", fnErr)
		}
		if err != nil {
			return fmt.Errorf("scan listens: %w", err)
		}
		if n < page {
			return nil
		}
		from = time.Unix(last.ListenedAt, 0)
		after = fmt.Sprintf(" AND (listened_at, listen_id) > (%s, %s)", ts(from), lit(last.ID))
	}
}

// ceilSecond is t rounded up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); r.Before(t) {
		return r.Add(time.Second)
	}
	return t
}
