package searchindexer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	searchindexer "github.com/overture-music/overture/functions/search-indexer"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/search/searchtest"
	"github.com/overture-music/overture/internal/search/writemodel"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type env struct {
	t     *testing.T
	pool  *pgxpool.Pool
	f     *searchindexer.Function
	store search.Store
	cache *hotcache.Cache
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// The catalog's own migrations, read from disk so this test does not
	// depend on the catalog package compiling while it is being edited.
	if err := postgres.Migrate(ctx, pool, "catalog", os.DirFS("../../internal/catalog/migrations")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	redisURL := testenv.Redis(t)
	f := searchindexer.New()
	if err := f.Start(ctx, map[string]string{"DATABASE_URL": url, "SEARCH_DIR": dir, "REDIS_URL": redisURL}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	st, err := bleve.Open(dir) // shares the indexer's store
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cache, err := hotcache.Open(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	return &env{t: t, pool: pool, f: f, store: st, cache: cache}
}

// write runs sql in a transaction and returns the WAL position after its
// commit, which is at least the commit LSN CDC would stamp on its changes.
func (e *env) write(sql string, args ...any) uint64 {
	e.t.Helper()
	ctx := e.t.Context()
	if _, err := e.pool.Exec(ctx, sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	var lsn uint64
	if err := e.pool.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&lsn); err != nil {
		e.t.Fatal(err)
	}
	return lsn
}

func (e *env) send(table, op string, row map[string]any, lsn uint64) {
	e.t.Helper()
	var before, after map[string]any
	if op == "d" {
		before = row
	} else {
		after = row
	}
	if _, err := e.f.Handle(e.t.Context(), searchtest.ChangeEvent(table, op, before, after, lsn)); err != nil {
		e.t.Fatalf("handle %s %s: %v", table, op, err)
	}
}

func (e *env) doc(id string) (search.Track, bool) {
	e.t.Helper()
	got, err := e.store.Get(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	d, ok := got[id]
	return d, ok
}

func TestChangesReachSearch(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	artist, album, track := uuid.NewString(), uuid.NewString(), uuid.NewString()
	l1 := e.write(`
WITH g AS (INSERT INTO genre (id, name) VALUES ('post-punk', 'Post-punk')),
     a AS (INSERT INTO artist (id, name) VALUES ($1, 'Кино')),
     al AS (INSERT INTO album (id, title, artist_id, release_year) VALUES ($2, 'Группа крови', $1, 1988))
SELECT 1`, artist, album)
	l2 := e.write(`INSERT INTO track (id, title, album_id, genre_id, duration_ms, popularity, state, published_at)
VALUES ($1, 'Группа крови', $2, 'post-punk', 287000, 900, 'published', now())`, track, album)
	l3 := e.write(`
WITH ta AS (INSERT INTO track_artist (track_id, artist_id) VALUES ($1, $2))
INSERT INTO track_rendition (track_id, kind, storage_key) VALUES ($1, 'mp3-320', 'k/1.mp3')`, track, artist)
	// Delivered out of order and with a duplicate, as a broker may.
	e.send("track_artist", "c", map[string]any{"track_id": track, "artist_id": artist}, l3)
	e.send("track", "c", map[string]any{"id": track, "title": "Группа крови"}, l2)
	e.send("genre", "c", map[string]any{"id": "post-punk"}, l1)
	e.send("track_rendition", "c", map[string]any{"track_id": track, "kind": "mp3-320"}, l3)
	e.send("track", "c", map[string]any{"id": track}, l2)

	d, ok := e.doc(track)
	if !ok {
		t.Fatal("published track not indexed")
	}
	if d.Title != "Группа крови" || d.Album == nil || d.Album.Title != "Группа крови" || d.Album.Year != 1988 ||
		len(d.Artists) != 1 || d.Artists[0].Name != "Кино" || d.Genre == nil || d.Genre.ID != "post-punk" ||
		d.DurationMS != 287000 || d.Popularity != 900 || len(d.Renditions) != 1 || d.Renditions[0] != "mp3-320" || d.Version != l3 {
		t.Fatalf("document = %+v", d)
	}
	res, err := e.store.Search(ctx, search.Query{Q: "kino"})
	if err != nil || res.Total != 1 {
		t.Fatalf("search kino: %+v %v", res, err)
	}

	// An album rename re-indexes the album's tracks.
	genBefore, _ := e.cache.Generation(ctx, hotcache.Album(album))
	l4 := e.write(`UPDATE album SET title = 'Blood Type' WHERE id = $1`, album)
	e.send("album", "u", map[string]any{"id": album, "title": "Blood Type"}, l4)
	if d, _ := e.doc(track); d.Album == nil || d.Album.Title != "Blood Type" || d.Version != l4 {
		t.Fatalf("after album rename: %+v", d)
	}
	if genAfter, _ := e.cache.Generation(ctx, hotcache.Album(album)); genAfter <= genBefore {
		t.Errorf("album cache generation not bumped: %d → %d", genBefore, genAfter)
	}
	// An artist rename too.
	l5 := e.write(`UPDATE artist SET name = 'Kino' WHERE id = $1`, artist)
	e.send("artist", "u", map[string]any{"id": artist}, l5)
	if d, _ := e.doc(track); d.Artists[0].Name != "Kino" {
		t.Fatalf("after artist rename: %+v", d)
	}
	// A replay of old events changes nothing.
	e.send("track", "c", map[string]any{"id": track}, l2)
	e.send("album", "c", map[string]any{"id": album}, l1)
	if d, _ := e.doc(track); d.Version != l5 || d.Artists[0].Name != "Kino" {
		t.Fatalf("replay regressed the document: %+v", d)
	}
	// Unpublishing removes; a replayed older event does not bring it back.
	l6 := e.write(`UPDATE track SET state = 'unpublished' WHERE id = $1`, track)
	e.send("track", "u", map[string]any{"id": track}, l6)
	if _, ok := e.doc(track); ok {
		t.Fatal("unpublished track still in search")
	}
	e.send("track_rendition", "c", map[string]any{"track_id": track}, l3)
	if _, ok := e.doc(track); ok {
		t.Fatal("a replayed older change resurrected an unpublished track")
	}
	// Republish, then delete the row.
	l7 := e.write(`UPDATE track SET state = 'published' WHERE id = $1`, track)
	e.send("track", "u", map[string]any{"id": track}, l7)
	if _, ok := e.doc(track); !ok {
		t.Fatal("republished track not back")
	}
	l8 := e.write(`DELETE FROM track WHERE id = $1`, track)
	e.send("track", "d", map[string]any{"id": track}, l8)
	if _, ok := e.doc(track); ok {
		t.Fatal("deleted track still in search")
	}
	// Applied changes alone never move the watermark: only CDC's progress
	// reports say that nothing else is owed (TestWatermarkCountsEveryChange).
	got, err := applied.Load(ctx, e.pool)
	if err != nil || got != 0 {
		t.Fatalf("watermark = %d (%v) without progress reports, want 0", got, err)
	}
}

// sendIndexed delivers a change event carrying its index in the transaction.
func (e *env) sendIndexed(table string, row map[string]any, commit uint64, index int) error {
	ev := searchtest.ChangeEvent(table, "u", nil, row, commit)
	ev.SetExtension("txindex", index)
	_, err := e.f.Handle(e.t.Context(), ev)
	return err
}

// report delivers a CDC progress report.
func (e *env) report(d eventtype.ProgressData) {
	e.t.Helper()
	ev := event.New()
	ev.SetType(eventtype.CDCProgress)
	ev.SetSource("/overture/cdc/test")
	ev.SetID("progress/" + d.From + "-" + d.To)
	if err := ev.SetData(event.ApplicationJSON, d); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.f.Handle(e.t.Context(), ev); err != nil {
		e.t.Fatalf("report %s-%s: %v", d.From, d.To, err)
	}
}

func (e *env) watermark() uint64 {
	e.t.Helper()
	w, err := applied.Load(e.t.Context(), e.pool)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func TestWatermarkCountsEveryChange(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tok := func(v uint64) string { return strconv.FormatUint(v, 10) }
	l0 := e.write(`SELECT 1`)
	e.report(eventtype.ProgressData{From: "0", To: tok(l0), Snapshot: true, Txns: []eventtype.ProgressTxn{}})
	if w := e.watermark(); w != l0 {
		t.Fatalf("after the snapshot report: %d, want %d", w, l0)
	}
	a, b := uuid.NewString(), uuid.NewString()
	l1 := e.write(`INSERT INTO track (id, title, state, published_at) VALUES ($1, 'A', 'published', now()), ($2, 'B', 'published', now())`, a, b)
	l2 := e.write(`UPDATE track SET title = 'A2' WHERE id = $1`, a)
	e.report(eventtype.ProgressData{From: tok(l0), To: tok(l2), Txns: []eventtype.ProgressTxn{{CommitLSN: tok(l1), Changes: 2}, {CommitLSN: tok(l2), Changes: 1}}})
	steps := []struct {
		row   string
		lsn   uint64
		index int
		want  uint64
	}{
		{a, l2, 0, l0}, // the later transaction first: l1 is still owed
		{b, l1, 1, l0},
		{b, l1, 1, l0}, // a redelivery counts once
		{a, l1, 0, l2},
	}
	for i, s := range steps {
		if err := e.sendIndexed("track", map[string]any{"id": s.row}, s.lsn, s.index); err != nil {
			t.Fatal(err)
		}
		if w := e.watermark(); w != s.want {
			t.Fatalf("step %d: watermark %d, want %d", i, w, s.want)
		}
	}
	if d, ok := e.doc(a); !ok || d.Title != "A2" {
		t.Fatalf("document behind the watermark: %+v", d)
	}
	// A change event the indexer cannot use goes to the dead-letter sink but
	// does not hold the watermark back forever.
	l3 := e.write(`SELECT 3`)
	e.report(eventtype.ProgressData{From: tok(l2), To: tok(l3), Txns: []eventtype.ProgressTxn{{CommitLSN: tok(l3), Changes: 1}}})
	if err := e.sendIndexed("track", map[string]any{"title": "no id"}, l3, 0); !errors.Is(err, searchindexer.ErrBadEvent) {
		t.Fatalf("bad event: %v", err)
	}
	if w := e.watermark(); w != l3 {
		t.Fatalf("after a bad event: %d, want %d", w, l3)
	}
	// A malformed report is refused.
	ev := event.New()
	ev.SetType(eventtype.CDCProgress)
	ev.SetSource("/overture/cdc/test")
	ev.SetID("progress/bad")
	_ = ev.SetData(event.ApplicationJSON, eventtype.ProgressData{From: "9", To: "1"})
	if _, err := e.f.Handle(t.Context(), ev); !errors.Is(err, searchindexer.ErrBadEvent) {
		t.Fatalf("bad report: %v", err)
	}
}

func TestDraftsAreNotIndexed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	track := uuid.NewString()
	l := e.write(`INSERT INTO track (id, title) VALUES ($1, 'Demo')`, track)
	e.send("track", "c", map[string]any{"id": track}, l)
	if _, ok := e.doc(track); ok {
		t.Fatal("draft indexed")
	}
	// Stopping twice is harmless (the host and a caller may both stop it),
	// and a change arriving after the stop fails so the broker redelivers it.
	for range 2 {
		if err := e.f.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.f.Handle(t.Context(), searchtest.ChangeEvent("track", "c", nil, map[string]any{"id": track}, l+1)); err == nil {
		t.Fatal("a stopped indexer acknowledged a change")
	}
}

func TestBadEventsAreRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	noLSN := searchtest.ChangeEvent("track", "c", nil, map[string]any{"id": uuid.NewString()}, 5)
	noLSN.SetExtension("commitlsn", nil)
	noKey := searchtest.ChangeEvent("track_artist", "c", nil, map[string]any{"artist_id": "x"}, 5)
	badTable := searchtest.ChangeEvent("playlist", "c", nil, map[string]any{"id": "x"}, 5)
	for _, c := range []struct {
		name string
		ev   func() error
	}{
		{"no commitlsn", func() error { _, err := e.f.Handle(ctx, noLSN); return err }},
		{"no key", func() error { _, err := e.f.Handle(ctx, noKey); return err }},
		{"unknown table", func() error { _, err := e.f.Handle(ctx, badTable); return err }},
	} {
		if err := c.ev(); !errors.Is(err, searchindexer.ErrBadEvent) {
			t.Errorf("%s: err = %v, want ErrBadEvent", c.name, err)
		}
	}
}

// TestNewSnapshotRebuilds: CDC re-created its slot and re-snapshotted, so a
// track deleted in between never produced a delete event. The first event
// of the new snapshot makes the indexer rebuild, which drops that track.
func TestNewSnapshotRebuilds(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	gone, kept := uuid.NewString(), uuid.NewString()
	l1 := e.write(`INSERT INTO track (id, title, state, published_at) VALUES ($1, 'Gone', 'published', now()), ($2, 'Kept', 'published', now())`, gone, kept)
	snap := func(id string, lsn uint64) {
		ev := searchtest.ChangeEvent("track", "r", nil, map[string]any{"id": id}, lsn)
		if _, err := e.f.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// The first snapshot (partial: CDC dies during it).
	snap(gone, l1)
	snap(kept, l1)
	// Waits for the rebuild the first snapshot started.
	waitCount := func(want int) {
		t.Helper()
		testenv.WaitFor(t, 5*time.Minute, fmt.Sprintf("the read model to hold %d documents", want), func() bool {
			n, err := e.store.Count(ctx)
			return err == nil && n == want
		})
	}
	waitCount(2)
	// The gap: a delete no event will ever announce.
	l2 := e.write(`DELETE FROM track WHERE id = $1`, gone)
	// The new snapshot emits the rows that exist.
	snap(kept, l2)
	waitCount(1)
	if _, ok := e.doc(gone); ok {
		t.Fatal("a track deleted during the snapshot gap is still searchable")
	}
	if _, ok := e.doc(kept); !ok {
		t.Fatal("the rebuild lost a live track")
	}
}

// TestTruncateRebuilds: a TRUNCATE names no rows; the indexer rebuilds the
// read model from the write model instead of refusing the event.
func TestTruncateRebuilds(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	a, b := uuid.NewString(), uuid.NewString()
	l1 := e.write(`INSERT INTO track (id, title, state, published_at) VALUES ($1, 'A', 'published', now()), ($2, 'B', 'published', now())`, a, b)
	e.send("track", "c", map[string]any{"id": a}, l1)
	e.send("track", "c", map[string]any{"id": b}, l1)
	if n, err := e.store.Count(ctx); err != nil || n != 2 {
		t.Fatalf("before: %d %v", n, err)
	}
	l2 := e.write(`TRUNCATE track_rendition, track_artist, track`)
	ev := searchtest.ChangeEvent("track", "t", nil, nil, l2)
	ev.SetExtension("txindex", 0)
	if _, err := e.f.Handle(ctx, ev); err != nil {
		t.Fatalf("truncate event: %v", err)
	}
	testenv.WaitFor(t, 5*time.Minute, "the rebuild after TRUNCATE to empty the read model", func() bool {
		n, err := e.store.Count(ctx)
		needed, _, err2 := applied.RebuildNeeded(ctx, e.pool)
		return err == nil && err2 == nil && n == 0 && !needed
	})
}

// TestInvisibleTransactionIsRetried: CDC can hand over a commit a moment
// before other sessions see it. A batch whose transaction is still invisible
// after the wait fails (the broker redelivers it) and records nothing, so
// the watermark does not pass a write that is not searchable.
func TestInvisibleTransactionIsRetried(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	tok := func(v uint64) string { return strconv.FormatUint(v, 10) }
	id := uuid.NewString()
	l0 := e.write(`INSERT INTO track (id, title, state, published_at) VALUES ($1, 'before', 'published', now())`, id)
	e.report(eventtype.ProgressData{From: "0", To: tok(l0), Snapshot: true, Txns: []eventtype.ProgressTxn{}})
	e.send("track", "c", map[string]any{"id": id}, l0) // the snapshot's copy, as "before"

	// The change's transaction: open, so it is invisible to the indexer.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	var xid int64
	if err := tx.QueryRow(ctx, `UPDATE track SET title = 'after' WHERE id = $1 RETURNING txid_current() % 4294967296`, id).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	commit := e.write(`SELECT 1`) + 1
	e.report(eventtype.ProgressData{From: tok(l0), To: tok(commit), Txns: []eventtype.ProgressTxn{{CommitLSN: tok(commit), Changes: 1}}})
	ev := searchtest.ChangeEvent("track", "u", nil, map[string]any{"id": id}, commit)
	var d eventtype.ChangeData
	if err := json.Unmarshal(ev.Data(), &d); err != nil {
		t.Fatal(err)
	}
	d.Source.TxID = uint32(xid)
	if err := ev.SetData(event.ApplicationJSON, d); err != nil {
		t.Fatal(err)
	}
	ev.SetExtension("txindex", 0)

	if _, err := e.f.Handle(ctx, ev); !errors.Is(err, writemodel.ErrNotVisible) {
		t.Fatalf("change of an invisible transaction: %v, want ErrNotVisible", err)
	}
	if w := e.watermark(); w != l0 {
		t.Fatalf("watermark %d after a failed batch, want %d", w, l0)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.Handle(ctx, ev); err != nil { // the broker's redelivery
		t.Fatalf("redelivery: %v", err)
	}
	if w := e.watermark(); w != commit {
		t.Fatalf("watermark %d after the redelivery, want %d", w, commit)
	}
	if got, ok := e.doc(id); !ok || got.Title != "after" {
		t.Fatalf("document after the redelivery: %+v", got)
	}
}
