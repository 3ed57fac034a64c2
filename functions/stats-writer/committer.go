package statswriter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/overture-music/overture/internal/stats"
)

// committer is the writer's group commit: concurrent Handles add their
// listens to the open group and wait; the group is written as one
// Store.Write when it holds BatchListens listens, its Linger has passed,
// or no event joined it for Idle, whichever comes first, and every
// Handle in it gets that write's outcome.
// One group is written at a time; the next one fills meanwhile, so under
// load the groups grow by themselves.
//
// A Handle returns only when the write holding its listens committed (an
// acknowledged event is durable) or failed (every Handle of the group fails
// and the broker redelivers their events; the store's dedupe by listen id
// keeps the counts exactly once). A Handle whose context ends leaves with
// its context's error; its listens stay in their group, whose write is not
// bound to any one Handle's context, so the others' write goes on whole —
// the cancelled event is redelivered and its listens, written or not, are
// counted once.
//
// Memory is bounded: at most MaxPending listens wait unwritten; a Handle
// beyond that waits for room (or its context) before it joins a group.
type committer struct {
	store stats.Store
	cfg   Config
	log   *slog.Logger

	writing sync.Mutex // held by the one group being written

	mu      sync.Mutex
	open    *group        // the group new listens join; nil: none yet
	pending int           // listens added and not yet written
	room    chan struct{} // closed (and replaced) when pending drops
}

// group is one Store.Write of several events' listens.
type group struct {
	rows   []stats.Row
	events int
	ends   []int         // ends[i]: where event i's rows end in rows
	errs   []error       // after a failed group write: each event's own outcome
	full   chan struct{} // closed when the group reached BatchListens
	joined chan struct{} // signalled when an event joins
	done   chan struct{} // closed when the write ended; then n and err are set
	n      int
	err    error
}

func newCommitter(store stats.Store, cfg Config, log *slog.Logger) *committer {
	return &committer{store: store, cfg: cfg, log: log, room: make(chan struct{})}
}

// commit adds rows to the open group and waits for its write.
func (c *committer) commit(ctx context.Context, rows []stats.Row) error {
	g, i, err := c.add(ctx, rows)
	if err != nil {
		return err
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		select {
		case <-g.done: // both ready: the write's outcome is the answer
		default:
			return fmt.Errorf("waiting for the grouped write: %w", context.Cause(ctx))
		}
	}
	if g.err == nil {
		return nil
	}
	if g.errs != nil && g.errs[i] == nil {
		return nil // the group failed, this event's listens alone were stored
	}
	if g.errs != nil {
		return fmt.Errorf("write of %d listens after the grouped write of %d events failed (%v): %w", len(rows), g.events, g.err, g.errs[i])
	}
	return fmt.Errorf("grouped write of %d listens from %d events: %w", len(g.rows), g.events, g.err)
}

// add puts rows into the open group, opening one (and its flush) if
// needed, once there is room for them among the pending listens.
func (c *committer) add(ctx context.Context, rows []stats.Row) (*group, int, error) {
	c.mu.Lock()
	// An event larger than MaxPending is admitted alone, so it never waits
	// forever.
	for c.pending > 0 && c.pending+len(rows) > c.cfg.MaxPending {
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("waiting for room among %d pending listens: %w", c.cfg.MaxPending, context.Cause(ctx))
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if c.open != nil && len(c.open.rows)+len(rows) > c.cfg.BatchListens {
		c.seal() // these rows would overfill it: they start the next group
	}
	if c.open == nil {
		c.open = &group{full: make(chan struct{}), joined: make(chan struct{}, 1), done: make(chan struct{})}
		// The write carries the first event's context values (its trace)
		// but none of its cancellation.
		go c.flush(context.WithoutCancel(ctx), c.open)
	}
	g := c.open
	g.rows = append(g.rows, rows...)
	g.ends = append(g.ends, len(g.rows))
	i := g.events
	g.events++
	c.pending += len(rows)
	select {
	case g.joined <- struct{}{}:
	default: // already signalled
	}
	if len(g.rows) >= c.cfg.BatchListens {
		c.seal()
	}
	return g, i, nil
}

// seal closes the open group to new listens because it is full. c.mu is
// held.
func (c *committer) seal() {
	close(c.open.full)
	c.open = nil
}

// flush writes g when it is full, its linger has passed or no event joined
// it for Idle, after the group before it was written.
func (c *committer) flush(ctx context.Context, g *group) {
	linger := time.NewTimer(c.cfg.Linger)
	defer linger.Stop()
	idle := time.NewTimer(min(c.cfg.Idle, c.cfg.Linger))
	defer idle.Stop()
wait:
	for {
		select {
		case <-g.full:
			break wait
		case <-linger.C:
			break wait
		case <-idle.C:
			break wait
		case <-g.joined:
			idle.Reset(min(c.cfg.Idle, c.cfg.Linger))
		}
	}
	c.writing.Lock()
	c.mu.Lock()
	if c.open == g {
		c.open = nil // listens from now on go to the next group
	}
	c.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	start := time.Now()
	g.n, g.err = c.store.Write(wctx, g.rows)
	cancel()
	if g.err != nil && g.events > 1 {
		// One refused event must not fail its companions again and again
		// (they could exhaust their retries beside it): each event's
		// listens are written on their own, and each Handle gets its own
		// outcome. When the store itself is down, every one fails.
		g.errs = make([]error, g.events)
		from, failed := 0, 0
		for i, end := range g.ends {
			wctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			_, g.errs[i] = c.store.Write(wctx, g.rows[from:end])
			cancel()
			if g.errs[i] != nil {
				failed++
			}
			from = end
		}
		c.log.WarnContext(ctx, "grouped write failed; its events were written one by one", "events", g.events, "failed", failed, "error", g.err)
	}
	c.writing.Unlock()
	if g.err == nil {
		c.log.DebugContext(ctx, "listens stored", "events", g.events, "listens", len(g.rows), "new", g.n, "took", time.Since(start))
	} else if g.errs == nil {
		c.log.WarnContext(ctx, "grouped write failed; its events will be redelivered", "events", g.events, "listens", len(g.rows), "error", g.err)
	}
	close(g.done)
	c.mu.Lock()
	c.pending -= len(g.rows)
	close(c.room)
	c.room = make(chan struct{})
	c.mu.Unlock()
}
