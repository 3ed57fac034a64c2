// Package searchtest is the conformance suite every search backend passes:
// the same documents, the same queries, the same expected answers, so the
// embedded default and the deployment backend behave alike.
package searchtest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/testenv"
)

// Opener returns a fresh, empty store private to the test.
type Opener func(t *testing.T) search.Store

// ID returns a stable test document id.
func ID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// Catalog is the fixture the query tests search.
func Catalog() []search.Track {
	kino := search.Artist{ID: "a-kino", Name: "Кино"}
	zemfira := search.Artist{ID: "a-zemfira", Name: "Земфира"}
	zemfiraLat := search.Artist{ID: "a-zemfira-lat", Name: "Zemfira"}
	nirvana := search.Artist{ID: "a-nirvana", Name: "Nirvana"}
	kate := search.Artist{ID: "a-kate", Name: "Kate Bush"}
	rock := &search.Genre{ID: "rock", Name: "Rock"}
	pop := &search.Genre{ID: "pop", Name: "Pop"}
	return []search.Track{
		{ID: ID(1), Title: "Группа крови", Album: &search.Album{ID: "al-1", Title: "Группа крови", Year: 1988}, Artists: []search.Artist{kino}, Genre: rock, Popularity: 900, DurationMS: 287000},
		{ID: ID(2), Title: "Звезда по имени Солнце", Album: &search.Album{ID: "al-2", Title: "Звезда по имени Солнце", Year: 1989}, Artists: []search.Artist{kino}, Genre: rock, Popularity: 800},
		{ID: ID(3), Title: "Искала", Album: &search.Album{ID: "al-3", Title: "Земфира", Year: 1999}, Artists: []search.Artist{zemfira}, Genre: rock, Popularity: 700},
		{ID: ID(4), Title: "Hotel", Album: &search.Album{ID: "al-4", Title: "Hotel", Year: 2013}, Artists: []search.Artist{zemfiraLat}, Genre: pop, Popularity: 100},
		{ID: ID(5), Title: "Smells Like Teen Spirit", Album: &search.Album{ID: "al-5", Title: "Nevermind", Year: 1991}, Artists: []search.Artist{nirvana}, Genre: rock, Popularity: 1000, Explicit: true},
		{ID: ID(6), Title: "Running Up That Hill", Album: &search.Album{ID: "al-6", Title: "Hounds of Love", Year: 1985}, Artists: []search.Artist{kate}, Genre: pop, Popularity: 950},
		{ID: ID(7), Title: "Песни о любви", Album: &search.Album{ID: "al-7", Title: "Тишина", Year: 2001}, Artists: []search.Artist{{ID: "a-x", Name: "Мельница"}}, Genre: pop, Popularity: 10},
		{ID: ID(8), Title: "Love and Anger", Album: &search.Album{ID: "al-6", Title: "Hounds of Love", Year: 1985}, Artists: []search.Artist{kate}, Genre: pop, Popularity: 300},
		{ID: ID(9), Title: "Hello", Album: &search.Album{ID: "al-9", Title: "Greetings", Year: 2010}, Artists: []search.Artist{{ID: "a-h1", Name: "Quiet Band"}}, Genre: pop, Popularity: 1},
		{ID: ID(10), Title: "Hallo", Album: &search.Album{ID: "al-10", Title: "Greetings", Year: 2010}, Artists: []search.Artist{{ID: "a-h2", Name: "Quiet Band"}}, Genre: pop, Popularity: 100000},
	}
}

func load(t *testing.T, st search.Index, docs []search.Track) {
	t.Helper()
	ops := make([]search.Op, 0, len(docs))
	for _, d := range docs {
		ops = append(ops, search.Upsert(d, 100))
	}
	if err := st.Apply(context.Background(), ops); err != nil {
		t.Fatalf("apply fixture: %v", err)
	}
}

func ids(r search.Result) []string {
	out := make([]string, 0, len(r.Hits))
	for _, h := range r.Hits {
		out = append(out, h.ID)
	}
	return out
}

// Run runs the whole suite against the backend open returns.
func Run(t *testing.T, open Opener) {
	t.Run("Queries", func(t *testing.T) { t.Parallel(); queries(t, open) })
	t.Run("Pagination", func(t *testing.T) { t.Parallel(); pagination(t, open) })
	t.Run("PopularityBreaksTies", func(t *testing.T) { t.Parallel(); popularity(t, open) })
	t.Run("VersionsNeverRegress", func(t *testing.T) { t.Parallel(); versions(t, open) })
	t.Run("TombstoneBlocksResurrection", func(t *testing.T) { t.Parallel(); tombstone(t, open) })
	t.Run("RebuildSwapsUnderReaders", func(t *testing.T) { t.Parallel(); rebuild(t, open) })
	t.Run("GetOfDeletedIsAbsent", func(t *testing.T) { t.Parallel(); getDeleted(t, open) })
	t.Run("PurgeTombstones", func(t *testing.T) { t.Parallel(); purge(t, open) })
	t.Run("PurgeKeepsRebuildTombstones", func(t *testing.T) { t.Parallel(); purgeDuringRebuild(t, open) })
	t.Run("PurgeManyTombstones", func(t *testing.T) { t.Parallel(); purgeMany(t, open) })
	t.Run("Genres", func(t *testing.T) { t.Parallel(); genres(t, open) })
}

// snapshot is what a reader can observe of a store.
type snapshot struct {
	count  int
	browse []string
	query  []string
	total  int
	get    map[string]uint64 // id → version
}

func observe(t *testing.T, st search.Index, docIDs []string, q string) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	if s.count, err = st.Count(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := st.Search(ctx, search.Query{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	s.browse = ids(res)
	if res, err = st.Search(ctx, search.Query{Q: q, Size: 100}); err != nil {
		t.Fatal(err)
	}
	s.query, s.total = ids(res), res.Total
	got, err := st.Get(ctx, docIDs...)
	if err != nil {
		t.Fatal(err)
	}
	s.get = map[string]uint64{}
	for id, d := range got {
		s.get[id] = d.Version
	}
	return s
}

// purge: PurgeTombstones removes exactly the tombstones below the bound;
// what readers see does not change; tombstones at or above the bound keep
// blocking older writes; and a write older than a purged tombstone is
// accepted — the documented trade-off, pinned here so it changes only on
// purpose.
func purge(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	band := []search.Artist{{ID: "pg", Name: "Purgers"}}
	doc := func(n int, title string) search.Track {
		return search.Track{ID: ID(n), Title: title, Artists: band, Popularity: int64(n)}
	}
	must := func(ops ...search.Op) {
		t.Helper()
		if err := st.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	must(
		search.Upsert(doc(1, "Purge live old"), 10), // live, old version: never purged
		search.Upsert(doc(2, "Purge live new"), 90), // live
		search.Upsert(doc(3, "Purge doomed"), 5),    // deleted at 20 below
		search.Upsert(doc(6, "Purge returns"), 5),   // deleted at 30, republished at 70
		search.Upsert(doc(7, "Purge late"), 5),      // deleted at 60 (above the bound)
		search.Delete(ID(4), 40),                    // tombstone only, below
		search.Delete(ID(5), 50),                    // tombstone exactly at the bound: stays
		search.Delete(ID(8), 49),                    // just below: purged
	)
	must(search.Delete(ID(3), 20), search.Delete(ID(6), 30), search.Delete(ID(7), 60))
	must(search.Upsert(doc(6, "Purge returns again"), 70))
	all := []string{ID(1), ID(2), ID(3), ID(4), ID(5), ID(6), ID(7), ID(8)}
	before := observe(t, st, all, "purge")
	if before.count != 3 || before.total != 3 {
		t.Fatalf("fixture: count %d, total %d, want 3 live documents", before.count, before.total)
	}

	n, err := st.PurgeTombstones(ctx, 50)
	if err != nil {
		t.Fatalf("purge below 50: %v", err)
	}
	if n != 3 { // ids 3 (v20), 4 (v40), 8 (v49)
		t.Errorf("purge below 50 removed %d tombstones, want 3 (versions 20, 40, 49; not 50, 60, nor live documents)", n)
	}
	after := observe(t, st, all, "purge")
	if after.count != before.count || after.total != before.total ||
		!slices.Equal(after.browse, before.browse) || !slices.Equal(after.query, before.query) || !mapsEqual(after.get, before.get) {
		t.Errorf("a purge changed what readers see:\nbefore %+v\nafter  %+v", before, after)
	}
	if n, err := st.PurgeTombstones(ctx, 50); err != nil || n != 0 {
		t.Errorf("second purge below 50 = %d, %v; want 0 (idempotent)", n, err)
	}
	if n, err := st.PurgeTombstones(ctx, 0); err != nil || n != 0 {
		t.Errorf("purge below 0 = %d, %v; want 0", n, err)
	}

	// Tombstones at or above the bound still block older writes.
	must(search.Upsert(doc(5, "Purge resurrected at bound"), 45), search.Upsert(doc(7, "Purge resurrected above"), 55))
	if got, err := st.Get(ctx, ID(5), ID(7)); err != nil || len(got) != 0 {
		t.Errorf("a kept tombstone let an older write through: %+v, %v", got, err)
	}
	// A write older than a purged tombstone is accepted like a first write
	// (the trade-off PurgeTombstones documents). OpenSearch still remembers
	// a deleted document's version for index.gc_deletes, so this may take
	// until then.
	late := doc(3, "Purge accepted late")
	testenv.WaitFor(t, acceptWithin, "a write at v15 below the purged tombstone (v20) to be accepted", func() bool {
		must(search.Upsert(late, 15))
		got, err := st.Get(ctx, ID(3))
		if err != nil {
			t.Fatal(err)
		}
		return got[ID(3)].Version == 15
	})
	if res, err := st.Search(ctx, search.Query{Q: "accepted"}); err != nil || res.Total != 1 {
		t.Errorf("the accepted write is not searchable: %+v, %v", res, err)
	}
	if n, err := st.Count(ctx); err != nil || n != 4 {
		t.Errorf("count after the accepted write %d, %v; want 4", n, err)
	}
}

// acceptWithin bounds how long a write older than a purged tombstone may
// still be refused.
const acceptWithin = 5 * time.Second

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// purgeDuringRebuild: while a rebuild copies the write model, its target
// keeps its tombstones even below the bound — the copy writes at
// RebuildVersion and only the tombstone stops it from restoring a row
// deleted after the snapshot was taken. Once swapped in, they can go.
func purgeDuringRebuild(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	gone := search.Track{ID: ID(1), Title: "Rebuild ghost", Artists: []search.Artist{{ID: "rg", Name: "Ghosts"}}}
	keep := search.Track{ID: ID(2), Title: "Rebuild keeper", Artists: gone.Artists}
	if err := st.Apply(ctx, []search.Op{search.Upsert(gone, 10), search.Upsert(keep, 10)}); err != nil {
		t.Fatal(err)
	}
	rb, err := st.BeginRebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot was taken; then the track is deleted (both indices).
	if err := st.Apply(ctx, []search.Op{search.Delete(ID(1), 20)}); err != nil {
		t.Fatal(err)
	}
	n, err := st.PurgeTombstones(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("purge with a rebuild registered removed %d tombstones, want 1 (the live index's only)", n)
	}
	// The copy then writes the snapshot's rows, including the deleted one.
	if err := rb.Apply(ctx, []search.Op{search.Upsert(gone, search.RebuildVersion), search.Upsert(keep, search.RebuildVersion)}); err != nil {
		t.Fatal(err)
	}
	if got, err := rb.Get(ctx, ID(1)); err != nil || len(got) != 0 {
		t.Fatalf("the rebuild's copy resurrected a track deleted after its snapshot: %+v, %v", got, err)
	}
	if err := rb.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, ID(1), ID(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[ID(1)]; ok || len(got) != 1 {
		t.Fatalf("after the swap: %+v, want only %s", got, ID(2))
	}
	if n, err := st.PurgeTombstones(ctx, 100); err != nil || n != 1 {
		t.Errorf("purge after the swap = %d, %v; want 1 (the rebuilt index's tombstone)", n, err)
	}
	if c, err := st.Count(ctx); err != nil || c != 1 {
		t.Errorf("count after the purge %d, %v; want 1", c, err)
	}
}

// getDeleted: a draft track is first seen as a versioned delete (a tombstone);
// reading it back must say "no document", not fail — the indexer reads the
// old documents of every change to invalidate the hot cache.
func getDeleted(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	live := search.Track{ID: ID(1), Title: "Live", Artists: []search.Artist{{ID: "a", Name: "A"}}}
	for v := int64(5); v <= 7; v++ {
		if err := st.Apply(ctx, []search.Op{search.Delete(ID(2), uint64(v))}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, ID(2)); err != nil {
			t.Fatalf("Get after delete at version %d: %v", v, err)
		}
	}
	if err := st.Apply(ctx, []search.Op{search.Upsert(live, 7)}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, ID(1), ID(2), ID(3))
	if err != nil {
		t.Fatalf("Get with a tombstoned id: %v", err)
	}
	if _, ok := got[ID(2)]; ok || len(got) != 1 || got[ID(1)].Title != "Live" {
		t.Fatalf("Get = %+v, want only the live document", got)
	}
}

func queries(t *testing.T, open Opener) {
	st := open(t)
	load(t, st, Catalog())
	ctx := context.Background()
	cases := []struct {
		name string
		q    search.Query
		want []string // must appear (any order) …
		top  string   // … and this must be the first hit, when set
		none []string // must not appear
	}{
		{name: "as you type latin", q: search.Query{Q: "smells like te"}, top: ID(5)},
		{name: "as you type cyrillic", q: search.Query{Q: "групп"}, top: ID(1)},
		{name: "as you type one word", q: search.Query{Q: "nirv"}, top: ID(5)},
		{name: "typo substitution", q: search.Query{Q: "nirvama"}, top: ID(5)},
		{name: "typo transposition", q: search.Query{Q: "smells like teen spirti"}, top: ID(5)},
		{name: "english stemming", q: search.Query{Q: "loving"}, want: []string{ID(8)}},
		{name: "english stemming running", q: search.Query{Q: "runs hill"}, top: ID(6)},
		{name: "russian stemming", q: search.Query{Q: "песнями"}, want: []string{ID(7)}},
		{name: "russian stemming звезды", q: search.Query{Q: "звездой"}, top: ID(2)},
		{name: "latin finds cyrillic", q: search.Query{Q: "kino"}, want: []string{ID(1), ID(2)}, none: []string{ID(5), ID(3)}},
		{name: "cyrillic finds latin", q: search.Query{Q: "земфира"}, want: []string{ID(3), ID(4)}},
		{name: "latin finds cyrillic zemfira", q: search.Query{Q: "zemfira"}, want: []string{ID(3), ID(4)}},
		{name: "transliteration variants", q: search.Query{Q: "gruppa krovi"}, top: ID(1)},
		{name: "relevance before popularity", q: search.Query{Q: "hello"}, top: ID(9)},
		{name: "genre filter", q: search.Query{Q: "kino", Genre: "pop"}, none: []string{ID(1), ID(2)}},
		{name: "artist filter", q: search.Query{Artist: "a-kate"}, want: []string{ID(6), ID(8)}, none: []string{ID(5)}},
		{name: "album filter", q: search.Query{Album: "al-6"}, want: []string{ID(6), ID(8)}, none: []string{ID(1)}},
		{name: "year range", q: search.Query{YearFrom: 1985, YearTo: 1989}, want: []string{ID(1), ID(2), ID(6), ID(8)}, none: []string{ID(5), ID(3)}},
		{name: "year from only", q: search.Query{Q: "zemfira", YearFrom: 2000}, want: []string{ID(4)}, none: []string{ID(3)}},
		{name: "browse by popularity", q: search.Query{Size: 3}, want: []string{ID(10), ID(5), ID(6)}, top: ID(10)},
		{name: "no match", q: search.Query{Q: "xylophonequartet"}, none: []string{ID(1), ID(2), ID(3), ID(4), ID(5), ID(6), ID(7), ID(8), ID(9), ID(10)}},
	}
	for _, c := range cases {
		res, err := st.Search(ctx, c.q)
		if err != nil {
			t.Errorf("%s: search %+v: %v", c.name, c.q, err)
			continue
		}
		got := ids(res)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: %q did not find %s; got %v", c.name, c.q.Q, w, got)
			}
		}
		for _, n := range c.none {
			if slices.Contains(got, n) {
				t.Errorf("%s: %q found %s, which it must not; got %v", c.name, c.q.Q, n, got)
			}
		}
		if c.top != "" && (len(got) == 0 || got[0] != c.top) {
			t.Errorf("%s: %q: first hit should be %s; got %v", c.name, c.q.Q, c.top, got)
		}
	}
	// The stored document comes back whole.
	got, err := st.Get(ctx, ID(1), ID(99))
	if err != nil {
		t.Fatal(err)
	}
	want := Catalog()[0]
	want.Version = 100
	if d, ok := got[ID(1)]; !ok || d.Title != want.Title || d.Album == nil || d.Album.Year != 1988 || len(d.Artists) != 1 || d.Artists[0].Name != "Кино" || d.Version != 100 {
		t.Errorf("Get(%s) = %+v, want %+v", ID(1), got[ID(1)], want)
	}
	if _, ok := got[ID(99)]; ok || len(got) != 1 {
		t.Errorf("Get returned unknown ids: %v", got)
	}
	if _, err := st.Search(ctx, search.Query{Size: 1000}); err == nil {
		t.Errorf("size 1000 was accepted")
	}
}

func pagination(t *testing.T, open Opener) {
	st := open(t)
	var docs []search.Track
	for i := range 25 {
		docs = append(docs, search.Track{ID: ID(i), Title: fmt.Sprintf("Paging song %d", i), Artists: []search.Artist{{ID: "p", Name: "Pager"}}, Popularity: int64(i)})
	}
	load(t, st, docs)
	seen := map[string]bool{}
	for page := 1; page <= 3; page++ {
		res, err := st.Search(context.Background(), search.Query{Q: "paging", Page: page, Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 25 {
			t.Errorf("page %d: total %d, want 25", page, res.Total)
		}
		wantLen := 10
		if page == 3 {
			wantLen = 5
		}
		if len(res.Hits) != wantLen {
			t.Errorf("page %d: %d hits, want %d", page, len(res.Hits), wantLen)
		}
		for _, h := range res.Hits {
			if seen[h.ID] {
				t.Errorf("page %d repeats %s", page, h.ID)
			}
			seen[h.ID] = true
		}
	}
	if len(seen) != 25 {
		t.Errorf("pages covered %d documents, want 25", len(seen))
	}
}

func popularity(t *testing.T, open Opener) {
	st := open(t)
	pops := []int64{5, 500, 50, 5000, 0}
	var docs []search.Track
	for i, p := range pops {
		docs = append(docs, search.Track{ID: ID(i), Title: "Echo", Artists: []search.Artist{{ID: "e", Name: "Same Band"}}, Popularity: p})
	}
	load(t, st, docs)
	res, err := st.Search(context.Background(), search.Query{Q: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ID(3), ID(1), ID(2), ID(0), ID(4)}
	if got := ids(res); !slices.Equal(got, want) {
		t.Errorf("equal relevance should rank by popularity: got %v, want %v", got, want)
	}
}

// history is a random sequence of versioned writes and the state it ends in.
func history(r *rand.Rand, docs, steps int) ([]search.Op, map[string]search.Track) {
	var ops []search.Op
	final := map[string]search.Track{}
	v := uint64(1000)
	for range steps {
		v += uint64(1 + r.IntN(5))
		id := ID(r.IntN(docs))
		if r.IntN(4) == 0 {
			ops = append(ops, search.Delete(id, v))
			delete(final, id)
			continue
		}
		d := search.Track{ID: id, Title: fmt.Sprintf("Version %d", v), Popularity: int64(v), Artists: []search.Artist{{ID: "h", Name: "History"}}}
		op := search.Upsert(d, v)
		ops = append(ops, op)
		final[id] = *op.Doc
	}
	return ops, final
}

func versions(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 11))
	ops, final := history(r, 40, 600)
	// Replay: every op twice, shuffled, in random-size batches, some batches
	// concurrently, as an at-least-once, reordering delivery would.
	feed := append(slices.Clone(ops), ops...)
	r.Shuffle(len(feed), func(i, j int) { feed[i], feed[j] = feed[j], feed[i] })
	var batches [][]search.Op
	for len(feed) > 0 {
		n := min(len(feed), 1+r.IntN(40))
		batches = append(batches, feed[:n])
		feed = feed[n:]
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 4)
	for _, b := range batches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := st.Apply(ctx, b); err != nil {
				failed.Store(err)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("apply: %v", err)
	}
	compare(t, st, 40, final)
	// Replaying the whole history once more, in order, changes nothing.
	if err := st.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	compare(t, st, 40, final)
}

func compare(t *testing.T, st search.Index, docs int, final map[string]search.Track) {
	t.Helper()
	ctx := context.Background()
	all := make([]string, docs)
	for i := range all {
		all[i] = ID(i)
	}
	got, err := st.Get(ctx, all...)
	if err != nil {
		t.Fatal(err)
	}
	diffs := 0
	for _, id := range all {
		w, wok := final[id]
		g, gok := got[id]
		switch {
		case wok != gok:
			diffs++
			t.Errorf("%s: present=%v, want present=%v (%+v)", id, gok, wok, g)
		case wok && (g.Title != w.Title || g.Version != w.Version || g.Popularity != w.Popularity):
			diffs++
			t.Errorf("%s: got %q v%d, want %q v%d", id, g.Title, g.Version, w.Title, w.Version)
		}
	}
	n, err := st.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(final) {
		t.Errorf("count %d, want %d", n, len(final))
	}
	res, err := st.Search(ctx, search.Query{Q: "history", Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != len(final) {
		t.Errorf("search finds %d documents, want %d (deleted ones must not match)", res.Total, len(final))
	}
	if diffs > 0 {
		t.Errorf("%d differences between the read model and the expected final state", diffs)
	}
}

func tombstone(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	doc := search.Track{ID: ID(1), Title: "Ghost", Artists: []search.Artist{{ID: "g", Name: "Ghosts"}}}
	must := func(ops ...search.Op) {
		t.Helper()
		if err := st.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	must(search.Upsert(doc, 10))
	must(search.Delete(ID(1), 20))
	must(search.Upsert(doc, 15)) // late, older upsert
	if got, _ := st.Get(ctx, ID(1)); len(got) != 0 {
		t.Fatalf("a late upsert (v15) resurrected a document deleted at v20: %+v", got)
	}
	if res, _ := st.Search(ctx, search.Query{Q: "ghost"}); res.Total != 0 {
		t.Fatalf("deleted document still found: %+v", res)
	}
	doc.Title = "Ghost returns"
	must(search.Upsert(doc, 30)) // republished later
	got, _ := st.Get(ctx, ID(1))
	if got[ID(1)].Title != "Ghost returns" {
		t.Fatalf("newer upsert after delete not applied: %+v", got)
	}
	// Equal version is a duplicate, not an update.
	dup := doc
	dup.Title = "Duplicate"
	must(search.Upsert(dup, 30))
	if got, _ := st.Get(ctx, ID(1)); got[ID(1)].Title != "Ghost returns" {
		t.Fatalf("same-version write overwrote the document: %+v", got)
	}
}

// Reads is what Readers saw.
type Reads struct {
	Total, Failed int64
	First         string // the first failed read: its total and error
}

// Readers keeps n goroutines searching idx for q until the returned stop is
// called; a read fails when it returns an error or fewer than atLeast
// documents. stop waits for the readers and reports their reads. Tests run
// it across a rebuild's swap to show that reads never go without answers.
func Readers(idx search.Index, q search.Query, atLeast, n int) (stop func() Reads) {
	stop, _ = readers(idx, q, atLeast, n)
	return stop
}

// readers is Readers that also tells how many reads were made so far.
func readers(idx search.Index, q search.Query, atLeast, n int) (stop func() Reads, count func() int64) {
	done := make(chan struct{})
	var reads, failures atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				res, err := idx.Search(context.Background(), q)
				reads.Add(1)
				if err != nil || res.Total < atLeast {
					failures.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("total %d, err %v", res.Total, err))
				}
			}
		})
	}
	return func() Reads {
		close(done)
		wg.Wait()
		r := Reads{Total: reads.Load(), Failed: failures.Load()}
		r.First, _ = first.Load().(string)
		return r
	}, reads.Load
}

func rebuild(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	var docs []search.Track
	for i := range 30 {
		docs = append(docs, search.Track{ID: ID(i), Title: fmt.Sprintf("Swap %d", i), Artists: []search.Artist{{ID: "s", Name: "Swappers"}}, Popularity: int64(i)})
	}
	load(t, st, docs)

	stop, count := readers(st, search.Query{Q: "swap", Size: 50}, 30, 3)
	// Reads go on before, during and after the swap: some before it…
	readMore := func() {
		t.Helper()
		target := count() + 20
		testenv.WaitFor(t, 5*time.Minute, "20 more reads", func() bool { return count() >= target })
	}
	rb, err := st.BeginRebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A change while the rebuild copies: the store writes it to both.
	changed := docs[3]
	changed.Title = "Swap changed during rebuild"
	if err := st.Apply(ctx, []search.Op{search.Upsert(changed, 500), search.Upsert(search.Track{ID: ID(30), Title: "Swap new", Artists: changed.Artists}, 501)}); err != nil {
		t.Fatal(err)
	}
	// The snapshot copy, older content at the rebuild version, loses to it.
	var snap []search.Op
	for _, d := range docs {
		snap = append(snap, search.Upsert(d, search.RebuildVersion))
	}
	if err := rb.Apply(ctx, snap); err != nil {
		t.Fatal(err)
	}
	readMore()
	if err := rb.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	readMore() // …and some after it
	if reads := stop(); reads.Failed > 0 {
		t.Errorf("%d of %d reads failed during the swap: %s", reads.Failed, reads.Total, reads.First)
	}
	got, err := st.Get(ctx, ID(3), ID(30))
	if err != nil {
		t.Fatal(err)
	}
	if got[ID(3)].Title != "Swap changed during rebuild" || got[ID(30)].Title != "Swap new" {
		t.Errorf("changes made during the rebuild were lost: %+v", got)
	}
	if n, _ := st.Count(ctx); n != 31 {
		t.Errorf("count after swap %d, want 31", n)
	}
	// A second rebuild works after the first committed.
	rb2, err := st.BeginRebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rb2.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Count(ctx); n != 31 {
		t.Errorf("count after abort %d, want 31", n)
	}
}

// purgeMany: more tombstones than one purge page (both backends page by
// 1,000), interleaved in id order with live documents and with tombstones
// above the bound, are all found.
func purgeMany(t *testing.T, open Opener) {
	st := open(t)
	ctx := context.Background()
	const n = 2500
	var ops []search.Op
	live := 0
	for i := range n {
		if i%10 == 0 { // every tenth id is a live document
			ops = append(ops, search.Upsert(search.Track{ID: ID(i), Title: fmt.Sprintf("Many %d", i), Artists: []search.Artist{{ID: "m", Name: "Many"}}}, uint64(10+i)))
			live++
			continue
		}
		ops = append(ops, search.Delete(ID(i), uint64(10+i)))
	}
	if err := st.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	const below = 10 + 2000 // ids 0..1999 below the bound
	wantFirst := 2000 - 200 // their tombstones: all but the live tenth
	got, err := st.PurgeTombstones(ctx, below)
	if err != nil {
		t.Fatal(err)
	}
	if got != wantFirst {
		t.Errorf("purge below %d removed %d tombstones, want %d", below, got, wantFirst)
	}
	if got, err = st.PurgeTombstones(ctx, math.MaxUint64); err != nil || got != (n-2000)-50 {
		t.Errorf("purge of the rest = %d, %v; want %d", got, err, (n-2000)-50)
	}
	if c, err := st.Count(ctx); err != nil || c != live {
		t.Errorf("count %d, %v; want the %d live documents", c, err, live)
	}
	if res, err := st.Search(ctx, search.Query{Q: "many", Size: 10}); err != nil || res.Total != live {
		t.Errorf("search total %d, %v; want %d", res.Total, err, live)
	}
}

// genres: Store.Genres counts the live documents of each genre — not
// tombstones, not documents without a genre, a moved document under its new
// genre only — sorted by name.
func genres(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	got, err := st.Genres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got) != 0 {
		t.Fatalf("empty store: genres %#v, want an empty list", got)
	}
	load(t, st, Catalog())
	moved := Catalog()[8] // pop → art rock
	moved.Genre = &search.Genre{ID: "art-rock", Name: "Art rock"}
	none := search.Track{ID: ID(11), Title: "No genre", Artists: []search.Artist{{ID: "a-n", Name: "N"}}}
	if err := st.Apply(ctx, []search.Op{search.Delete(ID(5), 200), search.Upsert(moved, 200), search.Upsert(none, 200)}); err != nil {
		t.Fatal(err)
	}
	if got, err = st.Genres(ctx); err != nil {
		t.Fatal(err)
	}
	want := []search.GenreCount{
		{Genre: search.Genre{ID: "art-rock", Name: "Art rock"}, Tracks: 1},
		{Genre: search.Genre{ID: "pop", Name: "Pop"}, Tracks: 5},
		{Genre: search.Genre{ID: "rock", Name: "Rock"}, Tracks: 3},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("genres = %+v, want %+v", got, want)
	}
}
