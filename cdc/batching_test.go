package cdc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/testenv"
)

// gated is a publisher that holds every Publish while closed, and counts
// the calls that carried change events.
type gated struct {
	next    *recorder
	mu      sync.Mutex
	open    chan struct{} // closed while publishes pass
	waiting atomic.Int32  // publishes held now
	calls   atomic.Int32  // publishes with change events
}

func (g *gated) gate() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

func (g *gated) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		close(g.open)
	} else {
		g.open = make(chan struct{})
	}
}

func (g *gated) Publish(ctx context.Context, events ...event.Event) error {
	g.waiting.Add(1)
	select {
	case <-g.gate():
	case <-ctx.Done():
	}
	g.waiting.Add(-1)
	for _, e := range events {
		if e.Type() != eventtype.CDCProgress {
			g.calls.Add(1)
			break
		}
	}
	return g.next.Publish(ctx, events...)
}

// receivedLSN reads the relay's cdc_received_lsn gauge.
func receivedLSN(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "cdc_received_lsn" && len(mf.GetMetric()) > 0 {
			return uint64(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return 0
}

// TestBusyPublisherGetsFullBatches: while the broker holds a publish, the
// receiver keeps reading and gathers the transactions that arrive into one
// batch, instead of waiting with a batch of FlushDelay's worth of changes
// and publishing the backlog a few transactions at a time. With a
// FlushDelay of a microsecond every transaction is due at once, so the old
// behaviour published 200 transactions in about 200 calls.
func TestBusyPublisherGetsFullBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := &gated{next: b.rec, open: make(chan struct{})}
	close(g.open)
	reg := prometheus.NewRegistry()
	b.run(t, func(c *cdc.Config) {
		c.Publisher, c.Registerer = g, reg
		c.FlushDelay, c.BatchSize = time.Microsecond, 1000
	})
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('g0', 'G0')`)
	b.rec.waitFor(t, "g0", func(evs []event.Event) bool { return len(changes(evs, "genre")) == 1 })

	// The broker stalls on the next publish.
	g.set(false)
	b.exec(t, `INSERT INTO genre (id, name) VALUES ('g1', 'G1')`)
	testenv.WaitFor(t, time.Minute, "CDC to publish g1", func() bool { return g.waiting.Load() > 0 })
	before := g.calls.Load()
	var last uint64
	for i := 2; i <= 201; i++ {
		if i == 201 {
			var s string
			require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&s))
			var err error
			last, err = lsn.ParseToken(s)
			require.NoError(t, err)
		}
		b.exec(t, `INSERT INTO genre (id, name) VALUES ($1, 'G')`, fmt.Sprintf("g%d", i))
	}
	// The receiver reads on while the publisher is held.
	testenv.WaitFor(t, 2*time.Minute, "CDC to receive the last insert while the broker stalls", func() bool {
		return receivedLSN(t, reg) >= last
	})
	g.set(true)
	b.rec.waitFor(t, "all 202", func(evs []event.Event) bool { return len(changes(evs, "genre")) == 202 })
	// g1's publish, the few batches queued before the receiver began to
	// gather, and the gathered rest.
	calls := g.calls.Load() - before
	require.LessOrEqual(t, calls, int32(8), "publishes for the 201 transactions made while the broker stalled")
	t.Logf("201 transactions made while the broker stalled went out in %d publishes", calls)
}
