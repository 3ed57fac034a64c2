// Package statswriter is the stats-writer function: it stores each batch of
// listens the listens service announces (ListensSubmitted) in the
// statistics store, exactly once per listen on at-least-once delivery (the
// store skips listen ids it has), and on the stats-rollup PingSource
// recomputes the global charts of the current and the previous day and week.
// See docs/stats.md.
package statswriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/stats"
)

// Name is the function's name (func.yaml, Triggers).
const Name = "stats-writer"

// RollupSource is the CloudEvents source of the stats-rollup PingSource.
const RollupSource = "/apis/v1/namespaces/overture/pingsources/stats-rollup"

// Writer is the function.
type Writer struct {
	// Store and Log may be set before Start (tests).
	Store stats.Store
	Log   *slog.Logger
	// Now is the clock of the rollup (tests); nil is time.Now.
	Now func() time.Time

	opened *stats.Opened
}

// New returns an unstarted writer.
func New() *Writer { return &Writer{} }

// Start opens the statistics store (stats.Open: STATS_BACKEND, postgres
// at DATABASE_URL or ClickHouse), creating or migrating its tables.
func (w *Writer) Start(ctx context.Context, cfg map[string]string) error {
	if w.Log == nil {
		w.Log = slog.Default()
	}
	w.Log = w.Log.With("function", Name)
	if w.Store != nil {
		return nil
	}
	o, err := stats.Open(ctx, cfg, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	w.opened, w.Store = o, o
	return nil
}

// Stop closes what Start opened.
func (w *Writer) Stop(context.Context) error {
	if w.opened != nil {
		w.opened.Close()
	}
	return nil
}

// Ready reports whether the store answers.
func (w *Writer) Ready(ctx context.Context) (bool, error) {
	if w.Store == nil {
		return false, errors.New(Name + ": not started")
	}
	if w.opened != nil {
		return w.opened.Ready(ctx)
	}
	return true, nil
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
	n, err := w.Store.Write(ctx, rows)
	if err != nil {
		return fmt.Errorf("%s: batch %s: %w", Name, e.ID(), err)
	}
	w.Log.DebugContext(ctx, "listens stored", "batch", e.ID(), "listens", len(rows), "new", n)
	return nil
}
