package bleve_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	blevelib "github.com/blevesearch/bleve/v2"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/searchtest"
)

// rebuilder is how a caller (the indexer) asks a store whether it must be
// rebuilt; stores that never need it do not implement it.
type rebuilder interface{ NeedsRebuild() bool }

func needsRebuild(t *testing.T, st search.Store) bool {
	t.Helper()
	r, ok := st.(rebuilder)
	if !ok {
		t.Fatalf("the bleve store has no NeedsRebuild method")
	}
	return r.NeedsRebuild()
}

func current(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// withInternal opens the live index of a closed store with Bleve directly
// and runs fn on it: what an older build, or a damaged marker, leaves.
func withInternal(t *testing.T, dir string, fn func(idx blevelib.Index) error) {
	t.Helper()
	idx, err := blevelib.Open(filepath.Join(dir, current(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(idx); err != nil {
		t.Fatal(err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStaleFormatIsReplaced: an index whose format this build does not know
// is not served. Open succeeds with a fresh empty index (reads work and find
// nothing of the old one), warns, and reports NeedsRebuild until a rebuild
// commits — also across a restart before that rebuild.
//
// Not parallel: it captures slog's default logger.
func TestStaleFormatIsReplaced(t *testing.T) {
	old := search.Track{ID: searchtest.ID(1), Title: "Stale song", Artists: []search.Artist{{ID: "s", Name: "Stale Band"}}}
	// writeCurrent leaves a store with one document written by this build.
	writeCurrent := func(t *testing.T, dir string) {
		st, err := bleve.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if needsRebuild(t, st) {
			t.Fatal("a new store says it needs a rebuild")
		}
		if err := st.Apply(t.Context(), []search.Op{search.Upsert(old, 10)}); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		found  string // the old_format the warning names
		tamper func(t *testing.T, dir string)
	}{
		{"marker removed", "none", func(t *testing.T, dir string) {
			writeCurrent(t, dir)
			withInternal(t, dir, func(idx blevelib.Index) error { return idx.DeleteInternal([]byte("overture.format")) })
		}},
		{"another format version", "1", func(t *testing.T, dir string) {
			writeCurrent(t, dir)
			withInternal(t, dir, func(idx blevelib.Index) error { return idx.SetInternal([]byte("overture.format"), []byte("1")) })
		}},
		{"index of an older build", "none", func(t *testing.T, dir string) {
			// Documents without the stored "src" and "ver" fields this build
			// reads: the ./.data index that once failed at read time.
			idx, err := blevelib.New(filepath.Join(dir, "tracks-old"), blevelib.NewIndexMapping())
			if err != nil {
				t.Fatal(err)
			}
			if err := idx.Index(old.ID, map[string]any{"id": old.ID, "title": old.Title, "text_en": "stale song"}); err != nil {
				t.Fatal(err)
			}
			if err := idx.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "CURRENT"), []byte("tracks-old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			dir := t.TempDir()
			c.tamper(t, dir)
			stale := current(t, dir)

			var logs bytes.Buffer
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
			st, err := bleve.Open(dir)
			slog.SetDefault(prev)
			if err != nil {
				t.Fatalf("open over a stale index: %v", err)
			}
			defer func() { _ = st.Close() }()

			if !needsRebuild(t, st) {
				t.Error("NeedsRebuild is false over a stale index")
			}
			if got := logs.String(); !strings.Contains(got, `"level":"WARN"`) || !strings.Contains(got, "older format") ||
				!strings.Contains(got, `"old_format":"`+c.found+`"`) || !strings.Contains(got, "rebuild needed") {
				t.Errorf("no warning naming the old format and the rebuild: %s", got)
			}
			if cur := current(t, dir); cur == stale {
				t.Errorf("CURRENT still names the stale index %s", cur)
			}
			if _, err := os.Stat(filepath.Join(dir, stale)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the stale index directory is still there: %v", err)
			}
			// Reads work and serve nothing of the old index.
			if n, err := st.Count(ctx); err != nil || n != 0 {
				t.Errorf("count = %d, %v; want 0 from the fresh index", n, err)
			}
			if res, err := st.Search(ctx, search.Query{Q: "stale"}); err != nil || res.Total != 0 {
				t.Errorf("search = %+v, %v; want no hit and no error", res, err)
			}
			if got, err := st.Get(ctx, old.ID); err != nil || len(got) != 0 {
				t.Errorf("get = %+v, %v; want nothing", got, err)
			}
			// Writes go on (the indexer keeps applying changes meanwhile).
			fresh := search.Track{ID: searchtest.ID(2), Title: "Fresh song", Artists: old.Artists}
			if err := st.Apply(ctx, []search.Op{search.Upsert(fresh, 20)}); err != nil {
				t.Fatal(err)
			}
			// A restart before the rebuild still knows a rebuild is due.
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if st, err = bleve.Open(dir); err != nil {
				t.Fatal(err)
			}
			if !needsRebuild(t, st) {
				t.Error("NeedsRebuild was forgotten by a restart before any rebuild")
			}
			if got, err := st.Get(ctx, fresh.ID); err != nil || got[fresh.ID].Title != "Fresh song" {
				t.Errorf("a write to the fresh index was lost by the restart: %+v, %v", got, err)
			}
			// A committed rebuild clears it, for good.
			rb, err := st.BeginRebuild(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if needsRebuild(t, st) != true {
				t.Error("NeedsRebuild cleared by beginning a rebuild; only a commit may clear it")
			}
			if err := rb.Apply(ctx, []search.Op{search.Upsert(old, search.RebuildVersion), search.Upsert(fresh, search.RebuildVersion)}); err != nil {
				t.Fatal(err)
			}
			if err := rb.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if needsRebuild(t, st) {
				t.Error("NeedsRebuild still true after a rebuild committed")
			}
			if n, err := st.Count(ctx); err != nil || n != 2 {
				t.Errorf("count after the rebuild %d, %v; want 2", n, err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if st, err = bleve.Open(dir); err != nil {
				t.Fatal(err)
			}
			if needsRebuild(t, st) {
				t.Error("NeedsRebuild came back after a restart following the rebuild")
			}
			if got, err := st.Get(ctx, old.ID, fresh.ID); err != nil || len(got) != 2 {
				t.Errorf("rebuilt documents after restart: %+v, %v", got, err)
			}
		})
	}
}

// TestOpenInUseLeavesRebuildAlone: a second opener (another process; here a
// second path to the same directory, which the in-process sharing does not
// recognize) must fail with ErrInUse without touching the holder's files —
// it used to drop the running rebuild's directory before trying the lock.
func TestOpenInUseLeavesRebuildAlone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rb, err := st.BeginRebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "same-store")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if other, err := bleve.Open(link); !errors.Is(err, bleve.ErrInUse) {
		if other != nil {
			other.Close()
		}
		t.Fatalf("second open = %v, want ErrInUse", err)
	}
	doc := search.Track{ID: searchtest.ID(1), Title: "Survivor", Artists: []search.Artist{{ID: "s", Name: "S"}}}
	if err := rb.Apply(ctx, []search.Op{search.Upsert(doc, search.RebuildVersion)}); err != nil {
		t.Fatalf("the rebuild broke after a refused open: %v", err)
	}
	if err := rb.Commit(ctx); err != nil {
		t.Fatalf("commit after a refused open: %v", err)
	}
	if got, err := st.Get(ctx, doc.ID); err != nil || len(got) != 1 {
		t.Fatalf("after the swap: %+v, %v", got, err)
	}
}

// TestLeftoverIndexIsDropped: a generation directory that is neither live nor
// pending (a swap interrupted after CURRENT moved) is removed at open, and
// the live one is kept.
func TestLeftoverIndexIsDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	doc := search.Track{ID: searchtest.ID(1), Title: "Kept", Artists: []search.Artist{{ID: "k", Name: "K"}}}
	if err := st.Apply(t.Context(), []search.Op{search.Upsert(doc, 5)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Mkdir(filepath.Join(dir, "tracks-leftover"), 0o755); err != nil {
		t.Fatal(err)
	}
	if st, err = bleve.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(filepath.Join(dir, "tracks-leftover")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover index directory kept: %v", err)
	}
	if needsRebuild(t, st) {
		t.Error("a store of this build's format says it needs a rebuild")
	}
	if got, err := st.Get(t.Context(), doc.ID); err != nil || len(got) != 1 {
		t.Errorf("live index lost: %+v, %v", got, err)
	}
}
