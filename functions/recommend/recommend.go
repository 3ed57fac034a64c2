// Package recommendfn is the recommend function: the batch recompute of
// every listener's recommendations (issue 14). Each tick of the
// recommend-recompute PingSource reads the listens of the training window
// from the statistics store (stats.Open: PostgreSQL or ClickHouse, as
// STATS_BACKEND says; Store.Scan streams them in time order, in bounded
// memory), folds them into the interaction matrix, trains track
// co-occurrence and ALS (internal/recommend) and stores each listener's
// result (internal/recommend/result) for the feed service to serve as is.
//
// Idempotent and resumable: the models are deterministic for their input
// and seed, the result's time is the tick's (the event's time, not the
// clock's), and a stored result is only replaced by a later one — so a
// redelivered tick, or one re-run after the function was killed half-way,
// rewrites nothing it had already written and finishes the rest. Memory is
// the matrix and the models: under 500 MB at 10 million listens
// (docs/bench/recommend.md). It never touches the listener-facing path: the
// feed service only reads what this stored.
package recommendfn

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/recommend"
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

// Config is what the function reads from the cfg map.
type Config struct {
	// DatabaseURL is the database of the results (and of the statistics
	// on STATS_BACKEND=postgres).
	DatabaseURL string
	// Stats is the statistics store's settings (stats.Open reads them).
	Stats stats.Config
}

func (c *Config) read(r *config.Reader) {
	c.DatabaseURL = r.String("DATABASE_URL")
	c.Stats.Read(r, false)
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
	return nil
}

// Handle runs the recompute for a tick.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() != eventtype.Ping {
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
	Took      time.Duration
}

// Recompute trains on the window ending at `at` and stores every listener's
// result made at `at`.
func (f *Function) Recompute(ctx context.Context, at time.Time) (Run, error) {
	start := time.Now()
	run := Run{Version: "recompute-" + at.Format("20060102T150405Z")}
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
	d := b.Build()
	als, err := recommend.TrainALS(ctx, d.R, recommend.DefaultALS(f.Workers))
	if err != nil {
		return run, fmt.Errorf("%s: %w", Name, err)
	}
	m := result.Models{Data: d, Tracks: recommend.TrainCooccurrence(d.R, recommend.DefaultCooccurrence(f.Workers)), ALS: als}
	out := make(chan result.Result, Batch)
	stored := make(chan error, 1)
	go func() {
		batch := make([]result.Result, 0, Batch)
		var err error
		flush := func() {
			if err == nil && len(batch) > 0 {
				var n int64
				n, err = result.Store{Pool: f.Pool}.Put(ctx, batch)
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
	for u := 0; u < d.R.Rows; u++ {
		if d.R.Ptr[u+1] > d.R.Ptr[u] {
			run.Listeners++
		}
	}
	run.Took = time.Since(start)
	f.Log.InfoContext(ctx, "recommendations recomputed", "version", run.Version, "listens", run.Listens, "listeners", run.Listeners, "stored", run.Stored, "took", run.Took)
	return run, nil
}
