// Package searchindexer is the `search-indexer` function: it keeps the search
// read model in step with the catalog's write model by consuming the CDC change
// events of the catalog tables.
//
// Fetch on change: an event says only which row changed; the indexer reads the
// current rows of every track that row is part of (a track change → that
// track; a track_artist or track_rendition change → its track; an album,
// artist or genre change → all their tracks) and writes their whole
// denormalized documents, or a delete when a track is missing or not
// published. Every write carries the change's commit LSN as its version, and
// the store refuses writes not newer than what it holds, so duplicates,
// replays and reordering are harmless: no inbox is needed.
//
// Concurrent events are grouped: Handle queues its change and waits while
// Workers loops load, write and acknowledge whole batches (one SQL query, one
// bulk write, one cache bump, one watermark update per batch; several batches
// in flight hide the search backend's refresh wait). Only after the write is
// searchable does it bump the hot-cache counters and record the changes as
// applied; with CDC's progress reports (progress.go) that moves the exact
// watermark read-your-writes waits on.
package searchindexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/backend"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/search/reindex"
	"github.com/overture-music/overture/internal/search/writemodel"
)

// Name is the function's name (func.yaml, Knative Service, trigger refs).
const Name = "search-indexer"

const cdcPrefix = "music.overture.cdc."

// Function is the search indexer.
type Function struct {
	lifecycle.Base
	pool  *postgres.Pool
	store search.Store
	cache *hotcache.Cache

	// MaxBatch and Linger bound a batch: at most MaxBatch changes, collected
	// for at most Linger after the first. Workers batches are applied at once.
	MaxBatch int
	Linger   time.Duration
	Workers  int
	// PurgeEvery is how often tombstones below the watermark are purged.
	PurgeEvery time.Duration

	reqs     chan *request
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// Rebuilds after a new CDC snapshot (see rebuildLoop).
	rebuildCh    chan struct{}
	rebuildDone  chan struct{}
	purgeDone    chan struct{}
	cancel       context.CancelFunc
	lastSnapshot atomic.Uint64 // highest snapshot LSN recorded
}

type change struct {
	table    string
	key      string // the row's id (for track_artist/track_rendition: its track_id)
	version  uint64
	index    int    // the txindex extension: its place in the transaction (-1: none)
	xid      uint32 // the transaction's id (source.txId; 0 for snapshot rows)
	snapshot bool   // a row read by a CDC snapshot (op r)
	truncate bool   // the table was truncated (op t): the read model is rebuilt
}

type request struct {
	change
	result chan error
}

// New returns the function; Start connects it.
func New() *Function {
	return &Function{MaxBatch: 1000, Linger: 2 * time.Millisecond, Workers: 3, PurgeEvery: 5 * time.Minute}
}

// ErrBadEvent marks an event that cannot be a catalog change event; retrying
// it will not help.
var ErrBadEvent = errors.New("search-indexer: not a valid change event")

// Config is the indexer's settings: DATABASE_URL, the search store
// (backend.Config: SEARCH_BACKEND, SEARCH_DIR, OPENSEARCH_URL,
// OPENSEARCH_INDEX) and REDIS_URL, the hot cache it invalidates (optional).
type Config struct {
	DatabaseURL string
	Search      backend.Config
	RedisURL    string
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.DatabaseURL = r.String(postgres.KeyDatabaseURL)
	c.Search.Read(r)
	c.RedisURL = r.StringOr("REDIS_URL", "")
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key { return config.KeysFor[Config]() }

// Start reads Config, opens the database, the search store and, when
// REDIS_URL is set, the hot cache, and starts the apply, rebuild and purge
// loops (stopped by Stop before what they use is released).
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	pool, err := f.OpenPool(ctx, c.DatabaseURL, applied.Migrate)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	store, err := c.Search.Open(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	f.Hold("search store", store.Close, func(ctx context.Context) error { _, err := store.Count(ctx); return err })
	if c.RedisURL != "" {
		if f.cache, err = hotcache.Open(ctx, c.RedisURL); err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		f.Hold("hot cache", f.cache.Close, nil)
	}
	f.pool, f.store = pool, store
	f.reqs = make(chan *request, 4*f.MaxBatch)
	f.stop = make(chan struct{})
	f.done = make(chan struct{})
	f.rebuildCh = make(chan struct{}, 1)
	f.rebuildDone = make(chan struct{})
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	var loops sync.WaitGroup
	for range max(f.Workers, 1) {
		loops.Go(func() { f.loop(bg) })
	}
	go func() { loops.Wait(); close(f.done) }()
	go f.rebuildLoop(bg)
	f.purgeDone = make(chan struct{})
	go f.purgeLoop(bg)
	// A rebuild asked for before a crash or stop is still owed, and a store
	// that found its index in an older format serves nothing until one ran.
	if r, ok := store.(interface{ NeedsRebuild() bool }); ok && r.NeedsRebuild() {
		if err := applied.RequestRebuild(ctx, pool.Pool); err != nil {
			f.Log.Error("record the rebuild a stale index needs", "error", err)
		}
		f.Log.Warn("the search index was replaced (older format): rebuilding it from the write model")
	}
	if needed, _, err := applied.RebuildNeeded(ctx, pool.Pool); err == nil && needed {
		f.requestRebuild()
	}
	return nil
}

// rebuildLoop rebuilds the read model whenever a new CDC snapshot starts.
// A snapshot re-reads the rows that exist; it says nothing about rows
// deleted while no stream was running (CDC re-creates its slot when it died
// during its first snapshot, or when the slot was lost), so documents of
// such rows would stay searchable forever. Rebuilding from the write model —
// into a new index while this indexer keeps writing changes to both, then
// swapping — removes them. A snapshot arriving during a rebuild queues one
// more.
func (f *Function) rebuildLoop(ctx context.Context) {
	defer close(f.rebuildDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.rebuildCh:
		}
		needed, snap, err := applied.RebuildNeeded(ctx, f.pool.Pool)
		if err != nil || !needed {
			if err != nil && ctx.Err() == nil {
				f.Log.Error("read rebuild request", "error", err)
			}
			continue
		}
		st, err := reindex.Run(ctx, f.pool.Pool, f.store, f.Log)
		if err == nil {
			err = applied.Rebuilt(ctx, f.pool.Pool, snap)
		}
		if err == nil {
			// The snapshot's span of the watermark completes with the rebuild.
			_, err = applied.Advance(ctx, f.pool.Pool)
		}
		if err != nil {
			if ctx.Err() == nil {
				// The request stays recorded: the next start (or snapshot)
				// tries again.
				f.Log.Error("rebuild after a CDC snapshot failed; run `overture reindex`", "error", err)
			}
			continue
		}
		f.Log.Info("rebuilt the read model after a CDC snapshot", "index", st.Index, "documents", st.Live, "duration", st.Duration.String())
	}
}

// requestRebuild queues a rebuild unless one is queued already.
func (f *Function) requestRebuild() {
	select {
	case f.rebuildCh <- struct{}{}:
	default: // one is queued already
	}
}

// Stop finishes the batch in progress and releases the store, cache and
// pool. Changes still queued fail (the broker redelivers them). Calling it
// again does nothing.
func (f *Function) Stop(ctx context.Context) error {
	if f.stop != nil {
		f.stopOnce.Do(func() {
			close(f.stop)
			<-f.done
			f.cancel()
			<-f.rebuildDone
			<-f.purgeDone
		})
	}
	return f.Base.Stop(ctx)
}

// Handle applies one change event; it returns once the change is searchable
// (or an error, and the broker retries).
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() == eventtype.CDCProgress {
		return nil, f.progress(ctx, e)
	}
	if !strings.HasPrefix(e.Type(), cdcPrefix) {
		return nil, nil // not for us: the trigger filters should not send it
	}
	c, err := parse(e)
	if err != nil {
		f.skip(ctx, e, err)
		return nil, err
	}
	r := &request{change: c, result: make(chan error, 1)}
	select {
	case f.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.stop:
		return nil, errors.New("search-indexer: stopping")
	}
	select {
	case err := <-r.result:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.done:
		select {
		case err := <-r.result:
			return nil, err
		default:
			return nil, errors.New("search-indexer: stopped before applying the change")
		}
	}
}

// parse reads the table, row key and commit LSN of a change event.
func parse(e event.Event) (change, error) {
	table := strings.TrimSuffix(strings.TrimPrefix(e.Type(), cdcPrefix), ".changed.v1")
	var d eventtype.ChangeData
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		return change{}, fmt.Errorf("%w: %s %s: data: %v", ErrBadEvent, e.Type(), e.ID(), err)
	}
	ext, ok := e.Extensions()[extCommitLSN]
	if !ok {
		return change{}, fmt.Errorf("%w: %s %s: no commitlsn extension", ErrBadEvent, e.Type(), e.ID())
	}
	v, err := lsn.ParseToken(fmt.Sprint(ext))
	if err != nil || v == 0 {
		return change{}, fmt.Errorf("%w: %s %s: commitlsn %v", ErrBadEvent, e.Type(), e.ID(), ext)
	}
	index, err := txIndex(e)
	if err != nil {
		return change{}, err
	}
	if d.Op == opTruncate {
		return change{table: table, version: v, index: index, truncate: true}, nil
	}
	row := d.After
	if row == nil {
		row = d.Before
	}
	col := "id"
	switch table {
	case "track_artist", "track_rendition":
		col = "track_id"
	case "track", "album", "artist", "genre":
	default:
		return change{}, fmt.Errorf("%w: %s: unknown table %q", ErrBadEvent, e.ID(), table)
	}
	key, ok := row[col].(string)
	if !ok || key == "" {
		return change{}, fmt.Errorf("%w: %s %s: row has no %s", ErrBadEvent, e.Type(), e.ID(), col)
	}
	return change{table: table, key: key, version: v, index: index, xid: d.Source.TxID, snapshot: d.Op == eventtype.OpSnapshot || d.Source.Snapshot}, nil
}

func (f *Function) loop(ctx context.Context) {
	for {
		var batch []*request
		select {
		case r := <-f.reqs:
			batch = append(batch, r)
		case <-f.stop:
			return
		}
		timer := time.NewTimer(f.Linger)
	collect:
		for len(batch) < f.MaxBatch {
			select {
			case r := <-f.reqs:
				batch = append(batch, r)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		changes := make([]change, len(batch))
		for i, r := range batch {
			changes[i] = r.change
		}
		err := f.Apply(ctx, changes)
		if err != nil {
			f.Log.Error("apply changes", "changes", len(batch), "error", err)
		}
		for _, r := range batch {
			r.result <- err
		}
	}
}

const chunk = 500

// Apply makes changes searchable: loads the affected tracks, writes them in
// bulk at their change's version, bumps the cache counters and advances the
// watermark.
func (f *Function) Apply(ctx context.Context, changes []change) error {
	versions := map[string]uint64{}
	touch := func(id string, v uint64) {
		if v > versions[id] {
			versions[id] = v
		}
	}
	var bumps []string
	var done []applied.Change
	if err := f.waitVisible(ctx, changes); err != nil {
		return err
	}
	for _, c := range changes {
		if c.index >= 0 && !c.snapshot {
			done = append(done, applied.Change{CommitLSN: c.version, Index: c.index})
		}
		if c.truncate {
			if err := f.truncated(ctx, c); err != nil {
				return err
			}
			continue
		}
		if c.snapshot && f.newSnapshot(c.version) {
			isNew, err := applied.NewSnapshot(ctx, f.pool.Pool, c.version)
			if err != nil {
				return err
			}
			if isNew {
				f.Log.Warn("a new CDC snapshot started: the read model will be rebuilt", "snapshot_lsn", c.version)
				f.requestRebuild()
			}
		}
		switch c.table {
		case "track", "track_artist", "track_rendition":
			touch(c.key, c.version)
		default:
			ids, err := writemodel.TracksOf(ctx, f.pool, c.table, c.key)
			if err != nil {
				return err
			}
			for _, id := range ids {
				touch(id, c.version)
			}
			bumps = append(bumps, c.table+":"+c.key)
		}
	}
	ids := slices.Sorted(maps.Keys(versions))
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		docs, err := writemodel.Load(ctx, f.pool, part)
		if err != nil {
			return err
		}
		var old map[string]search.Track
		if f.cache != nil {
			if old, err = f.store.Get(ctx, part...); err != nil {
				return fmt.Errorf("read current documents: %w", err)
			}
		}
		ops := make([]search.Op, 0, len(part))
		for _, id := range part {
			if d, ok := docs[id]; ok {
				ops = append(ops, search.Upsert(d, versions[id]))
			} else {
				ops = append(ops, search.Delete(id, versions[id]))
			}
		}
		if err := f.store.Apply(ctx, ops); err != nil {
			return fmt.Errorf("write %d documents: %w", len(ops), err)
		}
		if f.cache != nil {
			for _, id := range part {
				bumps = append(bumps, hotcache.Track(id))
				for _, d := range []search.Track{old[id], docs[id]} {
					bumps = append(bumps, related(d)...)
				}
			}
		}
	}
	if f.cache != nil {
		bumps = append(bumps, hotcache.Search)
		slices.Sort(bumps)
		if err := f.cache.Bump(ctx, slices.Compact(bumps)...); err != nil {
			// Retried by the broker: the rewrite is a no-op, the bump is not.
			return err
		}
	}
	return f.applied(ctx, done)
}

// related lists the cache entities a document is part of.
func related(d search.Track) []string {
	var out []string
	if d.Album != nil {
		out = append(out, hotcache.Album(d.Album.ID))
	}
	for _, a := range d.Artists {
		out = append(out, hotcache.Artist(a.ID))
	}
	if d.Genre != nil {
		out = append(out, hotcache.Genre(d.Genre.ID))
	}
	return out
}
