// Package statswriter is the stats-writer function: it stores each batch of
// listens the listens service announces (ListensSubmitted) in the
// statistics store, exactly once per listen on at-least-once delivery (the
// store skips listen ids it has), and on the stats-rollup PingSource
// recomputes the global charts of the current and the previous day and week.
//
// Batches are written in groups (group commit, committer.go): the broker
// delivers up to 16 events at once, and their listens go into the store as
// one Store.Write — ClickHouse wants few large inserts — once the group
// holds BatchListens listens or its Linger has passed. Each Handle returns
// after the write holding its listens committed, with that write's error.
// See docs/stats.md.
package statswriter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/stats"
)

// Name is the function's name (func.yaml, Triggers).
const Name = "stats-writer"

// RollupSource is the CloudEvents source of the stats-rollup PingSource.
const RollupSource = "/apis/v1/namespaces/overture/pingsources/stats-rollup"

// Writer is the function.
type Writer struct {
	lifecycle.Base
	// Store and Log may be set before Start (tests); Start acquires what is
	// missing through the Base.
	Store stats.Store
	// Now is the clock of the rollup (tests); nil is time.Now.
	Now func() time.Time

	// cfg is the grouping's settings (Start; the defaults before).
	cfg  Config
	once sync.Once
	c    *committer
}

// Config is the writer's own settings (the store's are stats.Open's):
//
//	STATS_WRITER_BATCH_LISTENS  listens that make a group full: written at once (default 10000)
//	STATS_WRITER_LINGER         longest a group waits for more listens (default 100ms)
//	STATS_WRITER_IDLE           a group no event joined for this long is written
//	                            (default 10ms): the broker hands its parallel
//	                            deliveries over in a burst, and the events in a
//	                            group hold its delivery slots, so once the burst
//	                            is in, waiting longer only adds latency
//	STATS_WRITER_MAX_PENDING    listens held in memory, unwritten, at most; a
//	                            Handle waits for room beyond (default 40000)
//	STATS_WRITER_TIMEOUT        longest one group's write may take (default 1m)
type Config struct {
	BatchListens int
	Linger       time.Duration
	Idle         time.Duration
	MaxPending   int
	Timeout      time.Duration
}

// Defaults of Config.
const (
	DefaultBatchListens = 10_000
	DefaultLinger       = 100 * time.Millisecond
	DefaultIdle         = 10 * time.Millisecond
	DefaultMaxPending   = 4 * DefaultBatchListens
	DefaultTimeout      = time.Minute
)

// Read implements config.Settings.
func (c *Config) Read(r *config.Reader) {
	c.BatchListens = int(r.Int64Or("STATS_WRITER_BATCH_LISTENS", DefaultBatchListens))
	c.Linger = r.DurationOr("STATS_WRITER_LINGER", DefaultLinger)
	c.Idle = r.DurationOr("STATS_WRITER_IDLE", DefaultIdle)
	c.MaxPending = int(r.Int64Or("STATS_WRITER_MAX_PENDING", DefaultMaxPending))
	c.Timeout = r.DurationOr("STATS_WRITER_TIMEOUT", DefaultTimeout)
	if c.BatchListens < 1 {
		r.Fail("STATS_WRITER_BATCH_LISTENS", "want at least 1")
	}
	if c.MaxPending < c.BatchListens {
		r.Fail("STATS_WRITER_MAX_PENDING", "want at least STATS_WRITER_BATCH_LISTENS (%d)", c.BatchListens)
	}
}

// New returns an unstarted writer.
func New() *Writer {
	return &Writer{cfg: Config{BatchListens: DefaultBatchListens, Linger: DefaultLinger, Idle: DefaultIdle,
		MaxPending: DefaultMaxPending, Timeout: DefaultTimeout}}
}

// ConfigKeys lists the settings the function reads.
func (w *Writer) ConfigKeys() []config.Key { return append(stats.Keys(), config.KeysFor[Config]()...) }

// Start reads the settings and opens the statistics store (stats.Open:
// STATS_BACKEND, postgres at DATABASE_URL or ClickHouse), creating or
// migrating its tables, unless Store is set. For postgres the pool comes
// from the host through the Base's OpenPool; the Base holds the store
// (Ready follows both; Stop releases them).
func (w *Writer) Start(ctx context.Context, cfg map[string]string) error {
	w.Begin()
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	w.cfg = c
	if w.Store != nil {
		return nil
	}
	// The postgres backend's database is the host's pool; a bad setting is
	// left for stats.Open to report, with every other.
	var pool *pgxpool.Pool
	var sc stats.Config
	r := config.NewReader(cfg)
	sc.Read(r, true)
	if r.Err() == nil && sc.Backend == stats.Postgres {
		p, err := w.OpenPool(ctx, sc.DatabaseURL)
		if err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
		pool = p.Pool
	}
	o, err := stats.OpenHeld(ctx, w, cfg, pool)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	w.Store = o
	return nil
}

// Handle stores a batch of listens or runs the rollup.
func (w *Writer) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	switch e.Type() {
	case eventtype.ListensSubmitted:
		return nil, w.write(ctx, e)
	case eventtype.Ping:
		now := time.Now()
		if w.Now != nil {
			now = w.Now()
		}
		// Yesterday and last week too: late listens (a scrobbler's cache,
		// an import) land in periods that already had their chart.
		if err := w.Store.Rollup(ctx, now.AddDate(0, 0, -7), now); err != nil {
			return nil, err
		}
		w.Log.InfoContext(ctx, "charts rolled up")
		return nil, nil
	default:
		return nil, fmt.Errorf("%s: unexpected event type %s", Name, e.Type())
	}
}

func (w *Writer) write(ctx context.Context, e event.Event) error {
	var d eventtype.ListensData
	if err := e.DataAs(&d); err != nil {
		return fmt.Errorf("%s: decode %s %s: %w", Name, e.Type(), e.ID(), err)
	}
	if d.UserID == "" {
		return fmt.Errorf("%s: batch %s has no user", Name, e.ID())
	}
	rows := make([]stats.Row, 0, len(d.Listens))
	for _, l := range d.Listens {
		if l.ID == "" {
			return fmt.Errorf("%s: batch %s has a listen without id", Name, e.ID())
		}
		rows = append(rows, stats.Row{UserID: d.UserID, Listen: l})
	}
	w.once.Do(func() {
		w.Begin() // a writer handed events without Start (tests) logs nowhere
		w.c = newCommitter(w.Store, w.cfg, w.Log)
	})
	if err := w.c.commit(ctx, rows); err != nil {
		return fmt.Errorf("%s: batch %s: %w", Name, e.ID(), err)
	}
	return nil
}
