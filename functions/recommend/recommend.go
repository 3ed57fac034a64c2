// Package recommendfn is the recommend function: every deferred computation
// of recommendations (issue 14).
//
// The batch recompute: each tick of the recommend-recompute PingSource reads
// the listens of the training window from the statistics store (stats.Open:
// PostgreSQL or ClickHouse, as STATS_BACKEND says; Store.Scan streams them
// in time order, in bounded memory), folds them into the interaction matrix,
// trains track and artist co-occurrence and ALS (internal/recommend), stores
// what a single listener's refresh and the similar-items lists need
// (internal/recommend/artifact: the neighbour lists and the ALS track
// factors) and each listener's result (internal/recommend/result) for the
// feed service to serve as is.
//
// The refresh of one listener (RefreshRequested, a job of
// internal/recommend/job queued by the listener's POST or by their
// listening): their recent listens from the statistics store, folded into
// the stored models — nothing is trained — and stored like the batch's.
//
// The incremental refresh (ListensSubmitted, the event the stats-writer
// stores): counts each listener's new scrobbles since their result was made
// and, past RECOMMEND_REFRESH_SCROBBLES, queues their refresh job, at most
// once per RECOMMEND_REFRESH_DEBOUNCE.
//
// Idempotent and resumable: the models are deterministic for their input
// and seed, the result's time is the tick's (the event's time, not the
// clock's), and a stored result is only replaced by a later one — so a
// redelivered tick, or one re-run after the function was killed half-way,
// rewrites nothing it had already written and finishes the rest. A refresh
// job's redelivery finds it done and does nothing; one left running by a
// killed worker is run again. A listens batch is counted once (inbox).
// Memory is the matrix and the models: a peak of 782 MB at 10 million
// listens (the whole recompute in docs/bench/recommend.md); a refresh holds
// one copy of the track factors. It never touches the listener-facing
// path: the feed service only reads what this stored, and queues jobs.
package recommendfn

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/recommend"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
)

// Name is the function's name (func.yaml, Triggers).
const Name = "recommend"

// RecomputeSource is the CloudEvents source of the recommend-recompute
// PingSource.
const RecomputeSource = "/apis/v1/namespaces/overture/pingsources/recommend-recompute"

// Batch is how many listeners' results one statement stores.
const Batch = 1000

// Defaults of the recompute: the training window (the weights' half-life
// is 30 days), the goroutines that train and rank, the tracks per section.
const (
	Window  = 90 * 24 * time.Hour
	Workers = 2
	Size    = 50
)

// Defaults of the incremental refresh.
const (
	// RefreshScrobbles is how many new scrobbles since a listener's result
	// was made queue their refresh.
	RefreshScrobbles = 20
	// RefreshDebounce is the least time between two refreshes the
	// listening of one listener queues.
	RefreshDebounce = 10 * time.Minute
)

// Config is what the function reads from the cfg map.
type Config struct {
	// DatabaseURL is the database of the results (and of the statistics
	// on STATS_BACKEND=postgres).
	DatabaseURL string
	// Stats is the statistics store's settings (stats.Open reads them).
	Stats stats.Config
	// RefreshScrobbles (RECOMMEND_REFRESH_SCROBBLES, default 20) and
	// RefreshDebounce (RECOMMEND_REFRESH_DEBOUNCE, default 10m) tune the
	// incremental refresh (refresh.go).
	RefreshScrobbles int
	RefreshDebounce  time.Duration
}

func (c *Config) read(r *config.Reader) {
	c.DatabaseURL = r.String("DATABASE_URL")
	c.Stats.Read(r, false)
	c.RefreshScrobbles = int(r.Int64Or("RECOMMEND_REFRESH_SCROBBLES", RefreshScrobbles))
	if c.RefreshScrobbles < 1 || c.RefreshScrobbles > 1_000_000 {
		r.Fail("RECOMMEND_REFRESH_SCROBBLES", "%d is outside 1..1000000", c.RefreshScrobbles)
	}
	c.RefreshDebounce = r.DurationOr("RECOMMEND_REFRESH_DEBOUNCE", RefreshDebounce)
	if c.RefreshDebounce <= 0 {
		r.Fail("RECOMMEND_REFRESH_DEBOUNCE", "must be positive")
	}
}

// ReadConfig reads DATABASE_URL and the statistics store's settings
// (STATS_BACKEND and, for clickhouse, CLICKHOUSE_URL or the embedded
// chDB's), so that a bad setting fails the start before anything opens.
func ReadConfig(cfg map[string]string) (Config, error) {
	var c Config
	r := config.NewReader(cfg)
	c.read(r)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("%s: %w", Name, err)
	}
	return c, nil
}

// Function is the recommend function.
type Function struct {
	lifecycle.Base
	// Pool, Stats and Log may be set before Start (tests); Start acquires
	// what is missing through the Base. Pool holds the results; Stats is the
	// statistics store the listens are read from (nil: stats.Open, on Pool
	// for STATS_BACKEND=postgres).
	Pool  *pgxpool.Pool
	Stats stats.Store
	// Window, Workers and Size default to the constants of the same name.
	Window  time.Duration
	Workers int
	Size    int
	// Clock is the time of refresh results and of the debounce (nil: the
	// real clock; tests pass a fake one).
	Clock clockwork.Clock

	cfg       Config
	artifacts *artifact.Store
	// afterBegin, when set (tests), runs once a refresh job is begun.
	afterBegin func()
}

// New returns an unstarted function.
func New() *Function { return &Function{} }

// ConfigKeys lists the keys ReadConfig and stats.Open read.
func (f *Function) ConfigKeys() []config.Key {
	keys := config.KeysOf(new(Config).read)
	for _, k := range stats.Keys() {
		if !slices.ContainsFunc(keys, func(h config.Key) bool { return h.Name == k.Name }) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Start reads the configuration, opens the database (migrating the results
// table) and the statistics store (stats.Open: STATS_BACKEND's backend)
// through the Base (Ready follows both; Stop releases them).
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	f.Begin()
	c, err := ReadConfig(cfg)
	if err != nil {
		return err
	}
	f.cfg = c
	if f.Clock == nil {
		f.Clock = clockwork.NewRealClock()
	}
	f.Window = cmp.Or(f.Window, Window)
	f.Workers = cmp.Or(f.Workers, Workers)
	f.Size = cmp.Or(f.Size, Size)
	if f.Pool, err = f.UsePool(ctx, f.Pool, c.DatabaseURL, result.Migrate); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if f.Stats == nil {
		o, err := stats.OpenHeld(ctx, f, cfg, f.Pool)
		if err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		f.Stats = o
	}
	f.artifacts = &artifact.Store{Pool: f.Pool}
	return nil
}

// Handle runs the recompute for a tick, a refresh job, or counts a batch of
// listens toward the listener's refresh.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	switch e.Type() {
	case eventtype.Ping:
	case eventtype.RefreshRequested:
		return nil, f.refresh(ctx, e)
	case eventtype.ListensSubmitted:
		return nil, f.listens(ctx, e)
	default:
		return nil, fmt.Errorf("%s: unexpected event type %s", Name, e.Type())
	}
	at := e.Time().UTC()
	if at.IsZero() {
		return nil, fmt.Errorf("%s: tick %s has no time", Name, e.ID())
	}
	_, err := f.Recompute(ctx, at)
	return nil, err
}

// Run is what one recompute did.
type Run struct {
	Version   string
	Listens   int
	Listeners int
	Stored    int64
	// Similar is how many similar-items rows were written.
	Similar int64
	Took    time.Duration
	// Phases is how long each part of the run took, in order (the log
	// line and the benchmark show them); PutResults is the part of the
	// last phase spent in result.Store.Put, which overlaps the ranking.
	Phases     []Phase
	PutResults time.Duration
}

// Phase is one part of a recompute and how long it took.
type Phase struct {
	Name string
	Took time.Duration
}

// Recompute trains on the window ending at `at` and stores every listener's
// result made at `at`.
func (f *Function) Recompute(ctx context.Context, at time.Time) (Run, error) {
	start := time.Now()
	run := Run{Version: "recompute-" + at.Format("20060102T150405Z")}
	last := start
	phase := func(name string) {
		now := time.Now()
		run.Phases = append(run.Phases, Phase{Name: name, Took: now.Sub(last)})
		last = now
	}
	b := recommend.NewBuilder(recommend.DefaultWeighting(at))
	// The window's listens of Overture tracks that count (a scrobble or a
	// skip), in the store's time order, so both backends build the same
	// matrix.
	err := f.Stats.Scan(ctx, at.Add(-f.Window), at, func(r stats.Row) error {
		if r.TrackID != "" && (r.Scrobble || r.Skipped) {
			b.Add(recommend.Listen{User: r.UserID, Track: r.TrackID, Artist: r.ArtistName,
				At: time.Unix(r.ListenedAt, 0).UTC(), Scrobble: r.Scrobble, Skipped: r.Skipped})
		}
		return nil
	})
	if err != nil {
		return run, fmt.Errorf("%s: reading listens: %w", Name, err)
	}
	run.Listens = b.Listens()
	phase("read listens")
	d := b.Build()
	phase("build matrix")
	als, err := recommend.TrainALS(ctx, d.R, recommend.DefaultALS(f.Workers))
	if err != nil {
		return run, fmt.Errorf("%s: %w", Name, err)
	}
	phase("ALS")
	m := result.Models{Data: d, Tracks: recommend.TrainCooccurrence(d.R, recommend.DefaultCooccurrence(f.Workers)), ALS: als}
	phase("track co-occurrence")
	artists := recommend.TrainArtistCooccurrence(d, recommend.DefaultCooccurrence(f.Workers))
	phase("artist co-occurrence")
	// What one listener's refresh and the similar-items lists need, before
	// the results: a refresh that reads them then makes results of this
	// run's models.
	run.Similar, err = f.artifacts.Put(ctx, artifact.Trained{Version: run.Version, MadeAt: at, Data: d, Tracks: m.Tracks,
		Artists: artists, ALS: als, ALSConfig: recommend.DefaultALS(f.Workers)})
	if err != nil {
		return run, fmt.Errorf("%s: %w", Name, err)
	}
	phase("store models")
	out := make(chan result.Result, Batch)
	stored := make(chan error, 1)
	go func() {
		batch := make([]result.Result, 0, Batch)
		var err error
		flush := func() {
			if err == nil && len(batch) > 0 {
				var n int64
				t := time.Now()
				n, err = result.Store{Pool: f.Pool}.Put(ctx, batch)
				run.PutResults += time.Since(t)
				run.Stored += n
			}
			batch = batch[:0]
		}
		for r := range out {
			batch = append(batch, r)
			if len(batch) == Batch {
				flush()
			}
		}
		flush()
		stored <- err
	}()
	err = result.Make(ctx, m, run.Version, at, f.Size, f.Workers, func(r result.Result) error {
		select {
		case out <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(out)
	if serr := <-stored; err == nil {
		err = serr
	}
	if err != nil {
		return run, fmt.Errorf("%s: %w", Name, err)
	}
	phase("rank and store results")
	for u := 0; u < d.R.Rows; u++ {
		if d.R.Ptr[u+1] > d.R.Ptr[u] {
			run.Listeners++
		}
	}
	run.Took = time.Since(start)
	took := make([]any, 0, 2*len(run.Phases))
	for _, p := range run.Phases {
		took = append(took, p.Name, p.Took)
	}
	f.Log.InfoContext(ctx, "recommendations recomputed", "version", run.Version, "listens", run.Listens, "listeners", run.Listeners, "stored", run.Stored, "similar", run.Similar, "took", run.Took,
		slog.Group("phases", took...), "put_results", run.PutResults)
	return run, nil
}
