// Package bleve is the embedded search backend: a Bleve (scorch) index on
// local disk, so `make run` needs no search server.
//
// Layout under the store directory:
//
//	CURRENT        name of the live index directory (the "alias"), replaced
//	               atomically by rename when a reindex commits
//	PENDING        name of a rebuild in progress (removed on commit/abort;
//	               a leftover one is dropped at open: that rebuild died)
//	REBUILD        present while the live index needs a rebuild from the
//	               write model (see NeedsRebuild); removed when one commits
//	tracks-<n>/    one Bleve index per generation; any but CURRENT's and
//	               PENDING's is a leftover and dropped at open
//
// Each generation records the format it was written in (the internal key
// "overture.format", set when it is created). At open, a live index with
// no or another format — left by an older build, whose documents may lack
// the fields this one reads — is not served: the store switches CURRENT to a
// fresh empty index, drops the old one, logs a warning and reports
// NeedsRebuild until a rebuild commits. An empty index that says so is
// better than one that answers reads with errors or wrong documents, and
// the write model can always refill it.
//
// Bleve has no conditional writes, so external versioning is done here: each
// document carries its version as a stored field, a delete writes a
// tombstone document (deleted:T and the version) that queries exclude, and
// Apply drops ops not newer than the stored version (cached in memory, read
// with one lookup per batch for the rest). Document and version are one
// Bleve document, so they are persisted together. (Bleve's internal key-value
// space was the first choice; scorch rewrites all of it at every persist, so
// batches slowed down with the number of documents.) Apply calls are
// serialized per store while they hand their batch to Bleve; searches run
// concurrently.
//
// Durability: Apply returns only once its writes are on disk, so a caller
// that acknowledges or records a change after Apply (the indexer, the
// watermark) never gets ahead of what survives a crash. But the writers'
// lock is not held while scorch persists: indexes are opened with scorch's
// "unsafe_batch", so a batch returns once it is searchable, and Apply then
// waits, outside the lock, for scorch's persisted callback of its batch
// (scorch persists its whole root snapshot in order, so that callback also
// covers every batch handed over before). Meanwhile the next writers hand
// over their batches, and scorch persists them together: one segment file
// and one fsync for several batches instead of one each. An Apply whose ops
// were all skipped as not newer waits for the last batch handed over, which
// wrote (or followed) the version that made it skip.
//
// A Bleve index can be opened by one process only, so every user in a process
// (indexer, query API, reindex) shares one Store per directory via Open.
package bleve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/lang/ru"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/overture-music/overture/internal/search"
)

// ErrInUse is returned by Open when another process holds the store.
var ErrInUse = errors.New("bleve store is in use by another process")

// FormatVersion is the index format this build writes and reads: the
// mapping, the stored fields ("src", "ver") and the tombstone encoding.
// Change it with any of them, so indices written by older builds are
// replaced rather than misread.
const FormatVersion = "2"

// formatKey is the Bleve internal key holding a generation's format.
var formatKey = []byte("overture.format")

var (
	registryMu sync.Mutex
	registry   = map[string]*shared{}
)

type shared struct {
	st   *store
	refs int
}

// Open returns the store in dir, creating it when empty; every caller in the
// process with the same dir shares one store. Close releases the reference.
//
// When the live index was written in another format (see FormatVersion),
// Open still succeeds, with a fresh empty index, logs a warning through
// slog.Default and the returned store's NeedsRebuild() reports true until a
// rebuild (BeginRebuild … Commit, i.e. reindex.Run) has committed, also
// across restarts.
func Open(dir string) (search.Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bleve store %s: %w", dir, err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if s, ok := registry[abs]; ok {
		s.refs++
		return &handle{store: s.st, dir: abs}, nil
	}
	st, err := openStore(abs)
	if err != nil {
		return nil, err
	}
	registry[abs] = &shared{st: st, refs: 1}
	return &handle{store: st, dir: abs}, nil
}

// handle is one holder's reference to a shared store.
type handle struct {
	*store
	dir  string
	once sync.Once
}

func (h *handle) Close() error {
	var err error
	h.once.Do(func() {
		registryMu.Lock()
		defer registryMu.Unlock()
		s := registry[h.dir]
		if s == nil {
			return
		}
		s.refs--
		if s.refs == 0 {
			delete(registry, h.dir)
			err = s.st.close()
		}
	})
	return err
}

// gen is one physical index generation.
type gen struct {
	name string
	path string
	idx  bleve.Index

	// mu: readers hold it shared while using idx; dropping the generation
	// takes it exclusively, so a swap never closes an index under a reader.
	mu     sync.RWMutex
	closed bool

	vmu      sync.Mutex
	versions map[string]uint64 // cache of the internal version entries

	// last is the most recent batch handed to scorch (nil: none yet);
	// guarded by the store's wmu, which every writer of g holds.
	last *persist
}

// persist is a batch scorch has made searchable; done is closed once it is
// on disk, and with it every batch handed over before.
type persist struct {
	done chan struct{}
	err  error // set before done is closed
}

// scorchConfig is the runtime configuration every generation is opened
// with: a batch returns once searchable, and persists in the background
// (see the package comment: Apply waits for it, outside the writers' lock).
func scorchConfig() map[string]any { return map[string]any{"unsafe_batch": true} }

type store struct {
	dir  string
	lock *os.File // flock on dir/LOCK: one process per store
	// needsRebuild: the live index was replaced by an empty one and no
	// rebuild has committed since (mirrored by the REBUILD file).
	needsRebuild atomic.Bool
	// wmu serializes writers (Apply, rebuild commit) with each other.
	wmu     sync.Mutex
	mu      sync.RWMutex
	cur     *gen
	pending *gen
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bleve store %s: %w", dir, err)
	}
	// Lock before touching anything: the PENDING and leftover directories
	// below belong to whoever holds the lock.
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bleve store %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s (stop the platform first, or reindex through it)", ErrInUse, dir)
	}
	s := &store{dir: dir, lock: lock}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// load opens (or creates) the live generation, holding the lock.
func (s *store) load() error {
	dir := s.dir
	// A leftover PENDING is a rebuild that died: drop it.
	if b, err := os.ReadFile(filepath.Join(dir, "PENDING")); err == nil {
		if name := strings.TrimSpace(string(b)); name != "" && !strings.ContainsAny(name, "/\\") {
			_ = os.RemoveAll(filepath.Join(dir, name))
		}
		_ = os.Remove(filepath.Join(dir, "PENDING"))
	}
	if _, err := os.Stat(filepath.Join(dir, "REBUILD")); err == nil {
		s.needsRebuild.Store(true)
	}
	name := ""
	if b, err := os.ReadFile(filepath.Join(dir, "CURRENT")); err == nil {
		name = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bleve store %s: read CURRENT: %w", dir, err)
	}
	if name == "" {
		g, err := s.create()
		if err != nil {
			return err
		}
		if err := writeAtomic(dir, "CURRENT", g.name); err != nil {
			_ = g.drop(true)
			return err
		}
		s.cur = g
	} else {
		path := filepath.Join(dir, name)
		idx, err := bleve.OpenUsing(path, scorchConfig())
		if err != nil {
			return fmt.Errorf("bleve store %s: open %s: %w", dir, name, err)
		}
		found, err := idx.GetInternal(formatKey)
		if err != nil {
			idx.Close()
			return fmt.Errorf("bleve store %s: read format of %s: %w", dir, name, err)
		}
		old := &gen{name: name, path: path, idx: idx, versions: map[string]uint64{}}
		if string(found) == FormatVersion {
			s.cur = old
		} else if err := s.replaceStale(old, string(found)); err != nil {
			_ = old.drop(false)
			return err
		}
	}
	s.dropLeftovers()
	return nil
}

// replaceStale makes a fresh empty generation live in place of old, whose
// format is found (empty: none recorded), and marks the store as needing a
// rebuild. The order is crash-safe: REBUILD is written before CURRENT moves,
// and an old directory left behind is dropped at the next open.
func (s *store) replaceStale(old *gen, found string) error {
	if found == "" {
		found = "none"
	}
	reason := fmt.Sprintf("index %s has format %s, this build reads format %s", old.name, found, FormatVersion)
	g, err := s.create()
	if err != nil {
		return err
	}
	if err := writeAtomic(s.dir, "REBUILD", reason); err != nil {
		_ = g.drop(true)
		return fmt.Errorf("bleve store %s: %w", s.dir, err)
	}
	if err := writeAtomic(s.dir, "CURRENT", g.name); err != nil {
		_ = g.drop(true)
		return fmt.Errorf("bleve store %s: %w", s.dir, err)
	}
	s.cur = g
	s.needsRebuild.Store(true)
	slog.Default().Warn("bleve search index of an older format found; serving a new empty index until it is rebuilt from the write model",
		"dir", s.dir, "old_index", old.name, "old_format", found, "format", FormatVersion, "new_index", g.name,
		"action", "rebuild needed: the indexer rebuilds when the store reports it, or run `overture reindex`")
	if err := old.drop(true); err != nil {
		slog.Default().Warn("bleve: could not remove the old index; it is dropped at the next open", "dir", s.dir, "index", old.name, "err", err)
	}
	return nil
}

// dropLeftovers removes generation directories that are neither live nor
// pending: the old index of a swap or format replacement interrupted after
// CURRENT moved.
func (s *store) dropLeftovers() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "tracks-") && e.Name() != s.cur.name {
			_ = os.RemoveAll(filepath.Join(s.dir, e.Name()))
		}
	}
}

// NeedsRebuild reports that the live index was created empty in place of an
// index of another format (see FormatVersion) and no rebuild has committed
// since: the caller should run one (reindex.Run). It stays true across
// restarts until then.
func (s *store) NeedsRebuild() bool { return s.needsRebuild.Load() }

func (s *store) create() (*gen, error) {
	name := "tracks-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	path := filepath.Join(s.dir, name)
	// Created in scorch's default (synchronous) mode, so the marker is on
	// disk before CURRENT or PENDING names the index, and with nothing in
	// its saved configuration (a plain bleve.Open of it behaves as ever);
	// then reopened with scorchConfig.
	idx, err := bleve.New(path, indexMapping())
	if err != nil {
		return nil, fmt.Errorf("bleve store %s: create %s: %w", s.dir, name, err)
	}
	err = idx.SetInternal(formatKey, []byte(FormatVersion))
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		idx, err = bleve.OpenUsing(path, scorchConfig())
	}
	if err != nil {
		_ = os.RemoveAll(path)
		return nil, fmt.Errorf("bleve store %s: record format of %s: %w", s.dir, name, err)
	}
	return &gen{name: name, path: path, idx: idx, versions: map[string]uint64{}}, nil
}

// batch hands b to scorch and returns once it is searchable, with what to
// wait on until it is on disk. The caller holds the store's wmu.
func (g *gen) batch(b *bleve.Batch) (*persist, error) {
	p := &persist{done: make(chan struct{})}
	b.SetPersistedCallback(func(err error) {
		p.err = err
		close(p.done)
	})
	if err := g.idx.Batch(b); err != nil {
		return nil, err
	}
	g.last = p
	return p, nil
}

// wait returns once p (nil: nothing) is on disk, or ctx ends.
func (p *persist) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("bleve: persist: %w", p.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bleve: waiting for the write to be persisted: %w", ctx.Err())
	}
}

// durable waits, holding g's reader lock (so g is not closed meanwhile:
// closing would drop what scorch has not persisted yet), until p is on disk.
func (g *gen) durable(ctx context.Context, p *persist) error {
	if p == nil {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return fmt.Errorf("bleve: index %s was closed before the write was persisted", g.name)
	}
	return p.wait(ctx)
}

// writeAtomic replaces dir/file with content by rename, then syncs dir.
func writeAtomic(dir, file, content string) error {
	tmp := filepath.Join(dir, file+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if _, err = f.WriteString(content + "\n"); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, file))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, g := range []*gen{s.cur, s.pending} {
		if g != nil {
			errs = append(errs, g.drop(false))
		}
	}
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

// drop closes g once no reader uses it, and removes its files when remove.
func (g *gen) drop(remove bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	err := g.idx.Close()
	if remove {
		err = errors.Join(err, os.RemoveAll(g.path))
	}
	return err
}

// read runs fn on the live generation, retrying when a swap closed the one it
// picked.
func (s *store) read(fn func(g *gen) error) error {
	for {
		s.mu.RLock()
		g := s.cur
		s.mu.RUnlock()
		g.mu.RLock()
		if g.closed {
			g.mu.RUnlock()
			continue
		}
		err := fn(g)
		g.mu.RUnlock()
		return err
	}
}

func (s *store) Apply(ctx context.Context, ops []search.Op) error {
	s.wmu.Lock()
	s.mu.RLock()
	targets := []*gen{s.cur}
	if s.pending != nil {
		targets = append(targets, s.pending)
	}
	s.mu.RUnlock()
	waits := make([]*persist, len(targets))
	for i, g := range targets {
		p, err := g.apply(ops)
		if err != nil {
			s.wmu.Unlock()
			return err
		}
		waits[i] = p
	}
	s.wmu.Unlock()
	// Persisting runs without the writers' lock: the next writers hand
	// over their batches meanwhile, and scorch persists them together.
	for i, g := range targets {
		if err := g.durable(ctx, waits[i]); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *store) Search(ctx context.Context, q search.Query) (search.Result, error) {
	var res search.Result
	err := s.read(func(g *gen) error {
		var err error
		res, err = g.search(ctx, q)
		return err
	})
	return res, err
}

func (s *store) Get(ctx context.Context, ids ...string) (map[string]search.Track, error) {
	var out map[string]search.Track
	err := s.read(func(g *gen) error {
		var err error
		out, err = g.get(ctx, ids)
		return err
	})
	return out, err
}

func (s *store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.read(func(g *gen) error {
		var err error
		n, err = g.count(ctx)
		return err
	})
	return n, err
}

// Genres implements search.Store: a terms facet over the genre id of the
// live documents, then each genre's name from one of its documents (the
// mapping indexes the id only), all from one generation.
func (s *store) Genres(ctx context.Context) ([]search.GenreCount, error) {
	var out []search.GenreCount
	err := s.read(func(g *gen) error {
		var err error
		out, err = g.genres(ctx)
		return err
	})
	return out, err
}

func (s *store) BeginRebuild(ctx context.Context) (search.Rebuild, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pending != nil {
		return nil, fmt.Errorf("bleve store %s: a rebuild (%s) is already running", s.dir, s.pending.name)
	}
	g, err := s.create()
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(s.dir, "PENDING", g.name); err != nil {
		_ = g.drop(true)
		return nil, err
	}
	s.mu.Lock()
	s.pending = g
	s.mu.Unlock()
	return &rebuild{s: s, g: g}, nil
}

// purgeChunk is how many tombstones PurgeTombstones examines per batch;
// writers wait for at most one batch.
const purgeChunk = 1000

// PurgeTombstones implements search.Store: it deletes the live index's
// tombstones older than below, in batches of purgeChunk taken in id order,
// each under the writers' lock so no Apply can replace a tombstone between
// reading its version and deleting it. A rebuild target is left alone (see
// search.Store). The "ver" field is stored, not indexed, so versions are
// compared here rather than in the query.
func (s *store) PurgeTombstones(ctx context.Context, below uint64) (int, error) {
	if below == 0 {
		return 0, nil
	}
	s.mu.RLock()
	g := s.cur
	s.mu.RUnlock()
	total, after := 0, ""
	for {
		n, last, done, err := s.purgeBatch(ctx, g, below, after)
		total += n
		if err != nil || done {
			return total, err
		}
		after = last
	}
}

func (s *store) purgeBatch(ctx context.Context, g *gen, below uint64, after string) (removed int, last string, done bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", true, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return 0, "", true, nil // swapped out meanwhile: its replacement's copy has finished, purge it next time
	}
	tomb := bleve.NewTermQuery("T")
	tomb.SetField("deleted")
	req := bleve.NewSearchRequestOptions(tomb, purgeChunk, 0, false)
	req.SortBy([]string{"_id"})
	if after != "" {
		req.SetSearchAfter([]string{after})
	}
	req.Fields = []string{"ver", "src"}
	res, err := g.idx.SearchInContext(ctx, req)
	if err != nil {
		return 0, "", true, fmt.Errorf("bleve purge tombstones: %w", err)
	}
	b := g.idx.NewBatch()
	var ids []string
	for _, h := range res.Hits {
		last = h.ID
		if _, live := h.Fields["src"]; live {
			continue // only tombstones lack the stored document
		}
		vs, _ := h.Fields["ver"].(string)
		v, err := strconv.ParseUint(vs, 10, 64)
		if err != nil {
			return 0, "", true, fmt.Errorf("bleve purge tombstones: version of %s: %q", h.ID, vs)
		}
		if v < below {
			b.Delete(h.ID)
			ids = append(ids, h.ID)
		}
	}
	done = len(res.Hits) < purgeChunk
	if len(ids) == 0 {
		return 0, last, done, nil
	}
	p, err := g.batch(b)
	if err == nil {
		// Under the writers' lock, unlike Apply: purging is rare, and its
		// next batch must not read tombstones this one may not have persisted.
		err = p.wait(ctx)
	}
	g.vmu.Lock()
	for _, id := range ids {
		if err != nil {
			delete(g.versions, id) // unknown now: reread next time
		} else {
			g.versions[id] = 0 // gone: the next write of id is a first write
		}
	}
	g.vmu.Unlock()
	if err != nil {
		return 0, "", true, fmt.Errorf("bleve purge tombstones: delete %d: %w", len(ids), err)
	}
	return len(ids), last, done, nil
}

type rebuild struct {
	s *store
	g *gen
}

func (r *rebuild) Name() string { return r.g.name }

func (r *rebuild) Apply(ctx context.Context, ops []search.Op) error {
	// Serialized with the store's writers: both write r.g's version map.
	r.s.wmu.Lock()
	p, err := r.g.apply(ops)
	r.s.wmu.Unlock()
	if err != nil {
		return err
	}
	if err := r.g.durable(ctx, p); err != nil {
		return err
	}
	return ctx.Err()
}

func (r *rebuild) Search(ctx context.Context, q search.Query) (search.Result, error) {
	r.g.mu.RLock()
	defer r.g.mu.RUnlock()
	return r.g.search(ctx, q)
}

func (r *rebuild) Get(ctx context.Context, ids ...string) (map[string]search.Track, error) {
	r.g.mu.RLock()
	defer r.g.mu.RUnlock()
	return r.g.get(ctx, ids)
}

func (r *rebuild) Count(ctx context.Context) (int, error) {
	r.g.mu.RLock()
	defer r.g.mu.RUnlock()
	return r.g.count(ctx)
}

func (r *rebuild) Commit(ctx context.Context) error {
	s := r.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pending != r.g {
		return errors.New("bleve rebuild: no longer pending")
	}
	if err := writeAtomic(s.dir, "CURRENT", r.g.name); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(s.dir, "PENDING"))
	// A committed rebuild copied the whole write model: nothing is missing.
	if err := os.Remove(filepath.Join(s.dir, "REBUILD")); err == nil || errors.Is(err, os.ErrNotExist) {
		s.needsRebuild.Store(false)
	}
	s.mu.Lock()
	old := s.cur
	s.cur, s.pending = r.g, nil
	s.mu.Unlock()
	// Readers that picked old finish first (drop waits for them).
	return old.drop(true)
}

func (r *rebuild) Abort(ctx context.Context) error {
	s := r.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.pending == r.g {
		s.pending = nil
	}
	s.mu.Unlock()
	_ = os.Remove(filepath.Join(s.dir, "PENDING"))
	return r.g.drop(true)
}

// --- one generation ---

// versions returns the stored version of each id (0 when never written),
// from the cache or, for the rest, with one stored-field lookup.
func (g *gen) versionsOf(ids []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(ids))
	var missing []string
	g.vmu.Lock()
	for _, id := range ids {
		if v, ok := g.versions[id]; ok {
			out[id] = v
		} else {
			missing = append(missing, id)
		}
	}
	g.vmu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(missing), len(missing), 0, false)
	req.Fields = []string{"ver"}
	res, err := g.idx.Search(req)
	if err != nil {
		return nil, fmt.Errorf("bleve: read versions: %w", err)
	}
	for _, h := range res.Hits {
		s, _ := h.Fields["ver"].(string)
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bleve: version of %s: %q", h.ID, s)
		}
		out[h.ID] = v
	}
	g.vmu.Lock()
	for _, id := range missing {
		g.versions[id] = out[id]
	}
	g.vmu.Unlock()
	return out, nil
}

// apply writes the ops newer than what g holds, in one batch, and returns
// once they are searchable, with what to wait on until they are on disk:
// its batch, or when every op was skipped, the last batch handed over
// (which wrote, or followed, the versions that made them skip). The caller
// holds the store's wmu. The version is a stored field of the document
// itself, and a delete writes a tombstone document (deleted:T, the version,
// nothing searchable), so document and version are always persisted
// together.
func (g *gen) apply(ops []search.Op) (*persist, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil, fmt.Errorf("bleve: index %s is closed", g.name)
	}
	// Within a batch, the highest version of each id wins.
	latest := make(map[string]search.Op, len(ops))
	for _, op := range ops {
		if prev, ok := latest[op.ID]; !ok || op.Version > prev.Version {
			latest[op.ID] = op
		}
	}
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	cur, err := g.versionsOf(ids)
	if err != nil {
		return nil, err
	}
	b := g.idx.NewBatch()
	written := map[string]uint64{}
	for id, op := range latest {
		if op.Version <= cur[id] {
			continue // replayed or reordered: the stored document is as new or newer
		}
		var doc map[string]any
		if op.Doc != nil {
			t := *op.Doc
			t.Version = op.Version
			doc = indexDoc(t)
		} else {
			doc = map[string]any{"id": id, "deleted": "T"}
		}
		doc["ver"] = strconv.FormatUint(op.Version, 10)
		if err := b.Index(id, doc); err != nil {
			return nil, fmt.Errorf("bleve: index %s: %w", id, err)
		}
		written[id] = op.Version
	}
	if len(written) == 0 {
		return g.last, nil
	}
	p, err := g.batch(b)
	if err != nil {
		g.vmu.Lock()
		for id := range written {
			delete(g.versions, id) // unknown now: reread next time
		}
		g.vmu.Unlock()
		return nil, fmt.Errorf("bleve: batch of %d writes: %w", len(written), err)
	}
	// Cached before they are on disk: a writer that skips an op because of
	// them waits for this batch (g.last) to persist before it returns.
	g.vmu.Lock()
	for id, v := range written {
		g.versions[id] = v
	}
	g.vmu.Unlock()
	return p, nil
}

// indexDoc is what Bleve indexes: the searchable derived fields plus the
// document itself as a stored, unindexed JSON field.
func indexDoc(t search.Track) map[string]any {
	src, _ := json.Marshal(t)
	text := t.SearchText()
	d := map[string]any{
		"id":         t.ID,
		"text_en":    text,
		"text_ru":    text,
		"tr":         search.Translit(text),
		"popularity": float64(t.Popularity),
		"src":        string(src),
	}
	if t.Genre != nil {
		d["genre"] = t.Genre.ID
	}
	if t.Album != nil {
		d["album"] = t.Album.ID
		if t.Album.Year != 0 {
			d["year"] = float64(t.Album.Year)
		}
	}
	ids := make([]string, 0, len(t.Artists))
	for _, a := range t.Artists {
		ids = append(ids, a.ID)
	}
	d["artists"] = ids
	return d
}

func indexMapping() mapping.IndexMapping {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer("tr", map[string]any{
		"type":          custom.Name,
		"tokenizer":     whitespace.Name,
		"token_filters": []string{lowercase.Name},
	}); err != nil {
		panic(err) // static configuration
	}
	text := func(analyzer string) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store = false
		f.IncludeInAll = false
		f.IncludeTermVectors = false
		return f
	}
	kw := text(keyword.Name)
	num := bleve.NewNumericFieldMapping()
	num.Store = false
	num.IncludeInAll = false
	num.DocValues = true
	src := bleve.NewTextFieldMapping()
	src.Index = false
	src.Store = true
	src.IncludeInAll = false
	src.DocValues = false

	dm := bleve.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt("id", kw)
	dm.AddFieldMappingsAt("genre", kw)
	dm.AddFieldMappingsAt("album", kw)
	dm.AddFieldMappingsAt("artists", kw)
	dm.AddFieldMappingsAt("text_en", text(en.AnalyzerName))
	dm.AddFieldMappingsAt("text_ru", text(ru.AnalyzerName))
	dm.AddFieldMappingsAt("tr", text("tr"))
	dm.AddFieldMappingsAt("year", num)
	dm.AddFieldMappingsAt("popularity", num)
	dm.AddFieldMappingsAt("src", src)
	ver := bleve.NewTextFieldMapping()
	ver.Index = false
	ver.Store = true
	ver.IncludeInAll = false
	ver.DocValues = false
	dm.AddFieldMappingsAt("ver", ver)
	dm.AddFieldMappingsAt("deleted", kw)
	im.DefaultMapping = dm
	im.DefaultAnalyzer = keyword.Name
	return im
}

func buildQuery(q search.Query) query.Query {
	var must []query.Query
	for _, t := range search.Terms(q.Q) {
		var alts []query.Query
		for _, f := range []string{"text_en", "text_ru"} {
			m := bleve.NewMatchQuery(t.Word)
			m.SetField(f)
			m.SetBoost(3)
			alts = append(alts, m)
		}
		exact := bleve.NewTermQuery(t.Key)
		exact.SetField("tr")
		exact.SetBoost(2)
		alts = append(alts, exact)
		if t.Fuzzy > 0 {
			fz := bleve.NewFuzzyQuery(t.Key)
			fz.SetField("tr")
			fz.SetFuzziness(t.Fuzzy)
			fz.SetBoost(1)
			alts = append(alts, fz)
		}
		if t.IsPrefix && len(t.Key) >= 2 {
			p := bleve.NewPrefixQuery(t.Key)
			p.SetField("tr")
			p.SetBoost(1.5)
			alts = append(alts, p)
		}
		must = append(must, bleve.NewDisjunctionQuery(alts...))
	}
	term := func(field, v string) {
		if v != "" {
			tq := bleve.NewTermQuery(v)
			tq.SetField(field)
			must = append(must, tq)
		}
	}
	term("genre", q.Genre)
	term("artists", q.Artist)
	term("album", q.Album)
	if q.YearFrom != 0 || q.YearTo != 0 {
		var lo, hi *float64
		if q.YearFrom != 0 {
			f := float64(q.YearFrom)
			lo = &f
		}
		if q.YearTo != 0 {
			f := float64(q.YearTo)
			hi = &f
		}
		yes := true
		r := bleve.NewNumericRangeInclusiveQuery(lo, hi, &yes, &yes)
		r.SetField("year")
		must = append(must, r)
	}
	if len(must) == 0 {
		return bleve.NewMatchAllQuery()
	}
	return bleve.NewConjunctionQuery(must...)
}

// live restricts q to documents that are not tombstones.
func live(q query.Query) query.Query {
	tomb := bleve.NewTermQuery("T")
	tomb.SetField("deleted")
	b := bleve.NewBooleanQuery()
	b.AddMust(q)
	b.AddMustNot(tomb)
	return b
}

func (g *gen) count(ctx context.Context) (int, error) {
	req := bleve.NewSearchRequestOptions(live(bleve.NewMatchAllQuery()), 0, 0, false)
	res, err := g.idx.SearchInContext(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("bleve count: %w", err)
	}
	return int(res.Total), nil
}

func (g *gen) search(ctx context.Context, q search.Query) (search.Result, error) {
	q, err := q.Normalize()
	if err != nil {
		return search.Result{}, err
	}
	req := bleve.NewSearchRequestOptions(live(buildQuery(q)), q.Size, q.From(), false)
	req.SortBy([]string{"-_score", "-popularity", "_id"})
	req.Fields = []string{"src"}
	res, err := g.idx.SearchInContext(ctx, req)
	if err != nil {
		return search.Result{}, fmt.Errorf("bleve search: %w", err)
	}
	out := search.Result{Total: int(res.Total), Hits: make([]search.Hit, 0, len(res.Hits))}
	for _, h := range res.Hits {
		t, err := decode(h.Fields["src"])
		if err != nil {
			return search.Result{}, fmt.Errorf("bleve search: hit %s: %w", h.ID, err)
		}
		out.Hits = append(out.Hits, search.Hit{Track: t, Score: h.Score})
	}
	return out, nil
}

func (g *gen) genres(ctx context.Context) ([]search.GenreCount, error) {
	req := bleve.NewSearchRequestOptions(live(bleve.NewMatchAllQuery()), 0, 0, false)
	req.AddFacet("genre", bleve.NewFacetRequest("genre", search.MaxGenres))
	res, err := g.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("bleve genres: %w", err)
	}
	out := []search.GenreCount{}
	f := res.Facets["genre"]
	if f == nil || f.Terms == nil {
		return out, nil
	}
	for _, term := range f.Terms.Terms() {
		one, err := g.search(ctx, search.Query{Genre: term.Term, Size: 1})
		if err != nil {
			return nil, fmt.Errorf("bleve genres: name of %s: %w", term.Term, err)
		}
		if len(one.Hits) == 0 || one.Hits[0].Genre == nil {
			continue // not live any more: the facet and the search saw one snapshot each
		}
		out = append(out, search.GenreCount{Genre: *one.Hits[0].Genre, Tracks: term.Count})
	}
	search.SortGenres(out)
	return out, nil
}

func (g *gen) get(ctx context.Context, ids []string) (map[string]search.Track, error) {
	out := make(map[string]search.Track, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	req := bleve.NewSearchRequestOptions(live(bleve.NewDocIDQuery(ids)), len(ids), 0, false)
	req.Fields = []string{"src"}
	res, err := g.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("bleve get: %w", err)
	}
	for _, h := range res.Hits {
		if _, ok := h.Fields["src"]; !ok {
			// Only tombstones lack the stored document; the must-not clause
			// of live does not always exclude a tombstone fetched by id, so
			// treat it here as what it is: no document.
			continue
		}
		t, err := decode(h.Fields["src"])
		if err != nil {
			return nil, fmt.Errorf("bleve get %s: %w", h.ID, err)
		}
		out[h.ID] = t
	}
	return out, nil
}

func decode(v any) (search.Track, error) {
	s, ok := v.(string)
	if !ok {
		return search.Track{}, errors.New("stored document missing")
	}
	var t search.Track
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return search.Track{}, fmt.Errorf("stored document: %w", err)
	}
	return t, nil
}
