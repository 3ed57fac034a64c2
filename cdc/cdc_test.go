package cdc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/cdc/cdctest"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) {
	cdctest.RunIfChild() // TestCrashLosesNothing's CDC process
	testenv.Main(m)
}

// recorder is the test's broker stand-in: it records what it acknowledges and
// refuses everything while failing is set.
type recorder struct {
	mu      sync.Mutex
	events  []event.Event // everything but progress reports
	reports []event.Event // progress reports
	failing atomic.Bool
	refused atomic.Int64
	// minRefused is the smallest commit LSN of a refused event.
	minRefused atomic.Uint64
}

func (r *recorder) Publish(_ context.Context, events ...event.Event) error {
	if r.failing.Load() {
		r.refused.Add(int64(len(events)))
		for _, e := range events {
			if s, ok := e.Extensions()["commitlsn"].(string); ok {
				v, _ := lsn.ParseToken(s)
				if m := r.minRefused.Load(); m == 0 || v < m {
					r.minRefused.Store(v)
				}
			}
		}
		return errors.New("broker unavailable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range events {
		if e.Type() == eventtype.CDCProgress {
			r.reports = append(r.reports, e)
		} else {
			r.events = append(r.events, e)
		}
	}
	return nil
}

// progress returns the progress reports acknowledged so far, decoded.
func (r *recorder) progress() []eventtype.ProgressData {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]eventtype.ProgressData, len(r.reports))
	for i, e := range r.reports {
		if err := json.Unmarshal(e.Data(), &out[i]); err != nil {
			panic(err)
		}
	}
	return out
}

func (r *recorder) snapshot() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// waitFor polls until cond holds on the recorded events.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]event.Event) bool) []event.Event {
	t.Helper()
	var evs []event.Event
	if !testenv.Poll(5*time.Minute, func() bool { evs = r.snapshot(); return cond(evs) }) {
		t.Fatalf("timed out waiting for %s; got %d events:\n%s", what, len(evs), dump(evs))
	}
	return evs
}

func dump(evs []event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		d := string(e.Data())
		if len(d) > 300 {
			d = d[:300] + "…"
		}
		fmt.Fprintf(&b, "  %s %s %s\n", e.Type(), e.ID(), d)
	}
	return b.String()
}

// changes returns the change events of table, decoded.
func changes(evs []event.Event, table string) []eventtype.ChangeData {
	var out []eventtype.ChangeData
	for _, e := range evs {
		if e.Type() != eventtype.CDCChanged(table) {
			continue
		}
		var d eventtype.ChangeData
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			panic(err)
		}
		out = append(out, d)
	}
	return out
}

type bundle struct {
	url  string
	pool *pgxpool.Pool
	rec  *recorder
	slot string
}

// setup makes a fresh database with the catalog schema.
func setup(t *testing.T) *bundle {
	t.Helper()
	url := testenv.Postgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, catalog.Migrate(ctx, pool))
	require.NoError(t, outbox.Migrate(ctx, pool))
	// Slots are cluster-wide: name them per test database.
	var db string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	return &bundle{url: url, pool: pool, rec: &recorder{}, slot: "cdc_" + db}
}

// run starts CDC until the test ends.
func (b *bundle) run(t *testing.T, mod ...func(*cdc.Config)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := cdc.Config{
		DatabaseURL: b.url, Slot: b.slot, Publication: b.slot, Publisher: b.rec,
		Log:            telemetry.NewLogger(testWriter{t}, slog.LevelInfo),
		StatusInterval: 100 * time.Millisecond, PruneInterval: 100 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	done := make(chan error, 1)
	go func() { done <- cdc.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("cdc.Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("cdc.Run did not stop")
			}
		})
	}
	t.Cleanup(stop)
	// Streaming has begun once the slot's snapshot is recorded.
	testenv.WaitFor(t, 2*time.Minute, "CDC to start (the slot's snapshot recorded)", func() bool {
		var n int
		err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM cdc_slot WHERE slot = $1`, b.slot).Scan(&n)
		return err == nil && n == 1
	})
	return stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

// replyTime is when the slot's walsender last heard a status update from
// CDC ("" while none streams).
func (b *bundle) replyTime(t *testing.T) string {
	t.Helper()
	var s *string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT max(r.reply_time)::text FROM pg_stat_replication r
	  JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`, b.slot).Scan(&s))
	if s == nil {
		return ""
	}
	return *s
}

func (b *bundle) confirmed(t *testing.T) uint64 {
	t.Helper()
	var s *string
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, b.slot).Scan(&s))
	if s == nil {
		return 0
	}
	v, err := lsn.ParseToken(*s)
	require.NoError(t, err)
	return v
}

func TestSnapshotThenStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	artist := uuid.NewString()
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('post-punk', 'Post-punk')`)
	b.exec(t, `INSERT INTO artist (id, name, country) VALUES ($1, 'Кино', 'SU')`, artist)
	b.run(t)

	evs := b.rec.waitFor(t, "snapshot rows", func(evs []event.Event) bool { return len(evs) >= 2 })
	g := changes(evs, "genre")
	require.Len(t, g, 1)
	require.Equal(t, "r", g[0].Op)
	require.True(t, g[0].Source.Snapshot)
	require.Nil(t, g[0].Before)
	require.Equal(t, "Post-punk", g[0].After["name"])
	for _, e := range evs {
		require.True(t, strings.HasPrefix(e.ID(), "snapshot/"), e.ID())
		require.Equal(t, "/overture/cdc/"+b.slot, e.Source())
	}
	a := changes(evs, "artist")
	require.Len(t, a, 1)
	require.Equal(t, artist, a[0].After["id"])
	require.Equal(t, "Кино", a[0].After["name"])

	// Streaming: insert, update, delete, typed.
	track := uuid.NewString()
	b.exec(t, `INSERT INTO track (id, title, genre_id, position, duration_ms, explicit, popularity, published_at)
		VALUES ($1, 'Группа крови', 'post-punk', 1, 285000, true, 9007199254740000, '2026-01-02 03:04:05.123456+03')`, track)
	b.exec(t, `UPDATE track SET title = 'Gruppa krovi' WHERE id = $1`, track)
	b.exec(t, `DELETE FROM track WHERE id = $1`, track)
	evs = b.rec.waitFor(t, "three track changes", func(evs []event.Event) bool { return len(changes(evs, "track")) >= 3 })
	tr := changes(evs, "track")
	require.Equal(t, []string{"c", "u", "d"}, []string{tr[0].Op, tr[1].Op, tr[2].Op})

	c := tr[0]
	require.Nil(t, c.Before)
	require.Equal(t, track, c.After["id"])
	require.Equal(t, float64(1), c.After["position"])
	require.Equal(t, float64(285000), c.After["duration_ms"])
	require.Equal(t, true, c.After["explicit"])
	require.Equal(t, float64(9007199254740000), c.After["popularity"])
	require.Equal(t, "2026-01-02T00:04:05.123456Z", c.After["published_at"])
	require.Nil(t, c.After["album_id"])
	require.Contains(t, c.After, "album_id", "NULL columns are present as null")
	require.Equal(t, "draft", c.After["state"])
	require.False(t, c.Source.Snapshot)
	require.Equal(t, "overture-cdc", c.Source.Connector)
	require.Equal(t, "public", c.Source.Schema)
	require.Equal(t, "track", c.Source.Table)
	require.NotZero(t, c.Source.LSN)
	require.NotZero(t, c.Source.TxID)
	require.InDelta(t, time.Now().UnixMilli(), c.Source.TsMs, 60_000)

	u := tr[1]
	require.Equal(t, "Gruppa krovi", u.After["title"])
	require.Equal(t, "Группа крови", u.Before["title"], "track has REPLICA IDENTITY FULL: before is the old row")
	require.Greater(t, u.Source.LSN, c.Source.LSN)

	d := tr[2]
	require.Nil(t, d.After)
	require.Equal(t, track, d.Before["id"])

	// Envelope attributes of streamed events.
	var trackEvents []event.Event
	for _, e := range evs {
		if e.Type() == eventtype.CDCTrackChanged {
			trackEvents = append(trackEvents, e)
		}
	}
	for i, e := range trackEvents {
		require.Equal(t, "track:"+track, e.Extensions()["partitionkey"])
		id, idx, ok := strings.Cut(e.ID(), "/")
		require.True(t, ok, e.ID())
		require.Equal(t, lsn.FormatToken(tr[i].Source.LSN), id)
		require.Equal(t, "0", idx)
		commit, err := lsn.ParseToken(e.Extensions()["commitlsn"].(string))
		require.NoError(t, err)
		require.Greater(t, commit, tr[i].Source.LSN, "the commit ends after the change")
	}
}

func TestDefaultIdentityKeysAndMultiRowTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)
	artist, track := uuid.NewString(), uuid.NewString()
	ctx := context.Background()
	require.NoError(t, postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO artist (id, name) VALUES ('` + artist + `', 'Земфира')`,
			`INSERT INTO track (id, title) VALUES ('` + track + `', 'Хочешь?')`,
			`INSERT INTO track_artist (track_id, artist_id) VALUES ('` + track + `', '` + artist + `')`,
			`INSERT INTO track_rendition (track_id, kind, storage_key, bytes) VALUES ('` + track + `', 'mp3-320', 'k/1.mp3', 123)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}))
	b.exec(t, `UPDATE track_rendition SET storage_key = 'k/2.mp3' WHERE track_id = $1`, track)
	b.exec(t, `DELETE FROM track_artist WHERE track_id = $1`, track)
	evs := b.rec.waitFor(t, "all changes", func(evs []event.Event) bool { return len(evs) >= 6 })

	// One transaction: indexes 0..3 and one commit LSN.
	first := evs[:4]
	commit := first[0].Extensions()["commitlsn"]
	for i, e := range first {
		require.True(t, strings.HasSuffix(e.ID(), fmt.Sprintf("/%d", i)), e.ID())
		require.Equal(t, commit, e.Extensions()["commitlsn"])
	}
	require.Equal(t, "track_artist:"+track+":"+artist, first[2].Extensions()["partitionkey"])
	require.Equal(t, "track_rendition:"+track+":mp3-320", first[3].Extensions()["partitionkey"])

	rend := changes(evs, "track_rendition")
	require.Len(t, rend, 2)
	require.Equal(t, float64(123), rend[0].After["bytes"])
	// REPLICA IDENTITY DEFAULT: before of an update is the key.
	require.Equal(t, map[string]any{"track_id": track, "kind": "mp3-320"}, rend[1].Before)
	require.Equal(t, "k/2.mp3", rend[1].After["storage_key"])

	ta := changes(evs, "track_artist")
	require.Equal(t, "d", ta[1].Op)
	require.Equal(t, map[string]any{"track_id": track, "artist_id": artist}, ta[1].Before)
}

func TestUnchangedToast(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A genre-like table keeps DEFAULT identity; make one catalog table DEFAULT
	// again to see the unchanged marker, and keep track FULL to see the value
	// carried over.
	b.exec(t, `ALTER TABLE artist REPLICA IDENTITY DEFAULT`)
	b.run(t)
	big := randomText(300_000) // incompressible, so it is TOASTed out of line
	artist, track := uuid.NewString(), uuid.NewString()
	b.exec(t, `INSERT INTO artist (id, name, bio) VALUES ($1, 'Кино', $2)`, artist, big)
	b.exec(t, `INSERT INTO track (id, title, lyrics) VALUES ($1, 'Звезда', $2)`, track, big)
	b.exec(t, `UPDATE artist SET name = 'Kino' WHERE id = $1`, artist)
	b.exec(t, `UPDATE track SET title = 'Zvezda' WHERE id = $1`, track)
	evs := b.rec.waitFor(t, "updates", func(evs []event.Event) bool {
		return len(changes(evs, "artist")) >= 2 && len(changes(evs, "track")) >= 2
	})
	a := changes(evs, "artist")[1]
	require.Equal(t, "Kino", a.After["name"])
	require.NotContains(t, a.After, "bio", "an unchanged TOAST value is absent, not null")
	require.Equal(t, []string{"bio"}, a.UnchangedToast)

	tr := changes(evs, "track")[1]
	require.Equal(t, "Zvezda", tr.After["title"])
	require.Equal(t, big, tr.After["lyrics"], "REPLICA IDENTITY FULL carries the old value in")
	require.Empty(t, tr.UnchangedToast)
}

func randomText(n int) string {
	const alphabet = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := []rune(alphabet)
	var b strings.Builder
	x := uint64(88172645463325252)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b.WriteRune(r[x%uint64(len(r))])
	}
	return b.String()
}

func TestColumnAddedWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)
	id := uuid.NewString()
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('a', 'A')`)
	b.rec.waitFor(t, "first insert", func(evs []event.Event) bool { return len(evs) >= 1 })
	b.exec(t, `ALTER TABLE genre ADD COLUMN sort_order int`)
	b.exec(t, `INSERT INTO genre (id, name, sort_order) VALUES ('b', 'B', 7)`)
	b.exec(t, `ALTER TABLE artist ADD COLUMN tags jsonb`)
	b.exec(t, `INSERT INTO artist (id, name, tags) VALUES ($1, 'X', '{"a": [1, 2]}')`, id)
	evs := b.rec.waitFor(t, "changes after ALTER", func(evs []event.Event) bool { return len(evs) >= 3 })
	g := changes(evs, "genre")
	require.NotContains(t, g[0].After, "sort_order")
	require.Equal(t, float64(7), g[1].After["sort_order"])
	a := changes(evs, "artist")
	require.Equal(t, map[string]any{"a": []any{float64(1), float64(2)}}, a[0].After["tags"])
}

func TestOutboxRowsBecomeTheirEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	write := func(id string) {
		e := event.New()
		e.SetID(id)
		e.SetType(eventtype.TrackPublished)
		e.SetSource("/overture/catalog-admin")
		e.SetExtension("partitionkey", "track:"+id)
		require.NoError(t, e.SetData(event.ApplicationJSON, eventtype.TrackData{TrackID: id, Title: "t"}))
		require.NoError(t, postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, e) }))
	}
	write("before-start") // reaches the broker through the snapshot
	b.run(t)
	write("while-running")
	evs := b.rec.waitFor(t, "two outbox events", func(evs []event.Event) bool { return len(evs) >= 2 })
	require.Len(t, evs, 2)
	for i, want := range []string{"before-start", "while-running"} {
		e := evs[i]
		require.Equal(t, want, e.ID())
		require.Equal(t, eventtype.TrackPublished, e.Type())
		require.Equal(t, "/overture/catalog-admin", e.Source())
		require.Equal(t, "track:"+want, e.Extensions()["partitionkey"])
		require.NotEmpty(t, e.Extensions()["commitlsn"])
		var d eventtype.TrackData
		require.NoError(t, json.Unmarshal(e.Data(), &d))
		require.Equal(t, want, d.TrackID)
	}
	// Confirmed rows are pruned; an update or delete of outbox rows is not an event.
	testenv.WaitFor(t, 2*time.Minute, "acknowledged outbox rows to be pruned", func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
		return n == 0
	})
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('sentinel', 'S')`)
	evs = b.rec.waitFor(t, "sentinel", func(evs []event.Event) bool { return len(evs) >= 3 })
	require.Len(t, evs, 3, "outbox deletes by the pruner produce no events")
}

func TestConfirmsOnlyAcknowledged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('g0', 'G0')`)
	b.rec.waitFor(t, "first", func(evs []event.Event) bool { return len(evs) == 1 })
	// The broker goes down; writes continue.
	b.rec.failing.Store(true)
	var lastCommit uint64
	for i := 1; i <= 50; i++ {
		b.exec(t, `INSERT INTO genre (id, name) VALUES ($1, 'G')`, fmt.Sprintf("g%d", i))
	}
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT (pg_current_wal_lsn() - '0/0')::numeric::bigint`).Scan(&lastCommit))
	testenv.WaitFor(t, 2*time.Minute, "the broker to refuse an event", func() bool { return b.rec.refused.Load() > 0 })
	// Through ten status updates (CDC sends one every 100 ms; each moves
	// pg_stat_replication.reply_time), the slot never confirms the first
	// transaction the broker refused.
	for range 10 {
		before := b.replyTime(t)
		testenv.WaitFor(t, 5*time.Minute, "a status update from CDC", func() bool { return b.replyTime(t) != before })
		require.Less(t, b.confirmed(t), b.rec.minRefused.Load(), "confirmed_flush_lsn passed an event the broker refused")
	}

	// Recovery: everything arrives, in order, nothing lost.
	b.rec.failing.Store(false)
	evs := b.rec.waitFor(t, "all 51", func(evs []event.Event) bool { return len(changes(evs, "genre")) >= 51 })
	seen := map[string]bool{}
	for _, c := range changes(evs, "genre") {
		seen[c.After["id"].(string)] = true
	}
	for i := 0; i <= 50; i++ {
		require.True(t, seen[fmt.Sprintf("g%d", i)], "g%d lost", i)
	}
	testenv.WaitFor(t, 2*time.Minute, "the slot to confirm up to the last write after recovery",
		func() bool { return b.confirmed(t) >= lastCommit })
}

func TestResumesFromConfirmedPosition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stop := b.run(t)
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('one', '1')`)
	b.rec.waitFor(t, "one", func(evs []event.Event) bool { return len(evs) == 1 })
	stop()
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('two', '2')`)
	b.run(t)
	// A marker written after the restart: CDC delivers in commit order, so
	// a replay or re-snapshot of "one" would arrive before it.
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('three', '3')`)
	evs := b.rec.waitFor(t, "three", func(evs []event.Event) bool {
		g := changes(evs, "genre")
		return len(g) > 0 && g[len(g)-1].After["id"] == "three"
	})
	g := changes(evs, "genre")
	require.Len(t, g, 3, "a clean restart neither re-snapshots nor replays: %s", dump(evs))
	require.Equal(t, "two", g[1].After["id"])
	require.Equal(t, "c", g[1].Op)
}

// TestIdleSlotAdvances writes only to a table outside the publication: no
// event is published, yet the slot's confirmed position follows the WAL, so
// an idle catalog does not make PostgreSQL keep WAL forever.
func TestIdleSlotAdvances(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t)
	b.exec(t, `CREATE TABLE unrelated (id serial PRIMARY KEY, v text)`)
	for range 20 {
		b.exec(t, `INSERT INTO unrelated (v) SELECT repeat('x', 1000) FROM generate_series(1, 100)`)
	}
	var target uint64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT (pg_current_wal_insert_lsn() - '0/0')::numeric::bigint`).Scan(&target))
	testenv.WaitFor(t, 2*time.Minute, "confirmed_flush_lsn to follow the WAL while nothing is published",
		func() bool { return b.confirmed(t) >= target })
	require.Empty(t, b.rec.snapshot())
}

// TestSlotOfAnotherDatabaseIsRefused: slot names are cluster-wide, so a
// second database configured with the same slot name must get a clear error,
// not a retry loop or someone else's slot.
func TestSlotOfAnotherDatabaseIsRefused(t *testing.T) {
	t.Parallel()
	a, other := setup(t), setup(t)
	a.run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cdc.Run(ctx, cdc.Config{DatabaseURL: other.url, Slot: a.slot, Publisher: other.rec})
	require.ErrorIs(t, err, cdc.ErrConfig)
	require.ErrorContains(t, err, "belongs to database")
	require.Empty(t, other.rec.snapshot())
}

// TestUnfinishedSnapshotIsRetaken simulates a crash during the initial
// snapshot: the slot exists but its snapshot was never recorded as published.
// CDC must not stream from that slot (the rows before it would be lost); it
// recreates the slot and snapshots again.
func TestUnfinishedSnapshotIsRetaken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('before-slot', 'B')`)
	b.exec(t, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, b.slot)
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('after-slot', 'A')`)
	b.run(t)
	evs := b.rec.waitFor(t, "snapshot", func(evs []event.Event) bool { return len(evs) >= 2 })
	g := changes(evs, "genre")
	require.Len(t, g, 2, dump(evs))
	for _, c := range g {
		require.Equal(t, "r", c.Op, "both rows come from the new snapshot, none twice")
	}
}
