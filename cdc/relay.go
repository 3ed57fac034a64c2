package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
)

// relay is one Run: its sessions share the pool and the metrics.
type relay struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger
	m    *metrics

	db     string
	source string
	pks    map[string][]string
}

// batch is whole transactions handed to the publisher, covering the WAL
// span (start, end]; end is the position to confirm once it is acknowledged
// and reported. A batch without changes only moves the reported position
// (WAL without catalog changes, or a watermark request).
type batch struct {
	changes []Change
	start   uint64
	end     uint64
	resume  bool // the first batch of a session that resumed a slot
}

var snapshotNameRE = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)

// replicationConfig is the replication connection's config: the database URL
// plus replication=database, and session settings that make value output
// predictable (UTC, ISO timestamps).
func replicationConfig(url string) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("cdc: parse database URL: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "overture-cdc"
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["DateStyle"] = "ISO, MDY"
	return cfg, nil
}

// session connects, prepares the slot (snapshotting when it is new) and
// streams until ctx ends or the connection fails.
func (r *relay) session(ctx context.Context) error {
	pcfg, err := replicationConfig(r.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	conn, err := pgconn.ConnectConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("replication connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r.db = pcfg.Database
	r.source = "/overture/cdc/" + r.cfg.Slot
	if r.pks, err = primaryKeys(ctx, r.pool); err != nil {
		return err
	}
	start, resumed, err := r.prepareSlot(ctx, conn)
	if err != nil {
		return err
	}
	return r.stream(ctx, conn, start, resumed)
}

// primaryKeys reads the primary key columns of the catalog tables.
func primaryKeys(ctx context.Context, pool *pgxpool.Pool) (map[string][]string, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.relname, a.attname
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
		WHERE i.indisprimary AND n.nspname = 'public' AND c.relname = ANY($1)
		ORDER BY c.relname, k.ord`, Tables())
	if err != nil {
		return nil, fmt.Errorf("cdc: read primary keys: %w", err)
	}
	pks := map[string][]string{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, fmt.Errorf("cdc: read primary keys: %w", err)
		}
		pks[t] = append(pks[t], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cdc: read primary keys: %w", err)
	}
	delete(pks, "outbox")
	return pks, nil
}

// prepareSlot returns the position to stream from and whether it resumes an
// existing slot. A slot whose snapshot was published resumes from its
// confirmed position; a missing slot, or one whose snapshot never finished,
// is (re)created and snapshotted first.
func (r *relay) prepareSlot(ctx context.Context, conn *pgconn.PgConn) (uint64, bool, error) {
	var (
		confirmed *string
		activePID *int32
		done      bool
		found     bool
		slotDB    *string
		plugin    string
		here      string
	)
	err := r.pool.QueryRow(ctx, `
		SELECT s.confirmed_flush_lsn::text, s.active_pid, c.slot IS NOT NULL, s.database, coalesce(s.plugin, ''), current_database()
		FROM pg_replication_slots s LEFT JOIN cdc_slot c ON c.slot = s.slot_name
		WHERE s.slot_name = $1`, r.cfg.Slot).Scan(&confirmed, &activePID, &done, &slotDB, &plugin, &here)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return 0, false, fmt.Errorf("look up slot %s: %w", r.cfg.Slot, err)
	default:
		found = true
	}
	// Slot names are cluster-wide: one belonging to another database or
	// plugin is not ours to use or drop.
	if found && (slotDB == nil || *slotDB != here || plugin != "pgoutput") {
		db := "none (a physical slot)"
		if slotDB != nil {
			db = *slotDB
		}
		return 0, false, fmt.Errorf("%w: replication slot %s belongs to database %s (plugin %q), not %s; choose another slot name (CDC_SLOT)",
			ErrConfig, r.cfg.Slot, db, plugin, here)
	}
	if found && activePID != nil {
		return 0, false, fmt.Errorf("slot %s is in use by backend %d (another CDC instance, or one that just died)", r.cfg.Slot, *activePID)
	}
	if found && done && confirmed != nil {
		pos, err := lsn.ParseToken(*confirmed)
		if err != nil {
			return 0, false, fmt.Errorf("slot %s: %w", r.cfg.Slot, err)
		}
		r.log.Info("resuming from the slot's confirmed position", "lsn", *confirmed)
		return pos, true, nil
	}
	if found {
		r.log.Warn("slot exists but its initial snapshot never finished; recreating it", "slot", r.cfg.Slot)
		if err := pglogrepl.DropReplicationSlot(ctx, conn, r.cfg.Slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			return 0, false, fmt.Errorf("drop unfinished slot %s: %w", r.cfg.Slot, err)
		}
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, r.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return 0, false, fmt.Errorf("create slot %s: %w", r.cfg.Slot, err)
	}
	cp, err := lsn.ParseToken(res.ConsistentPoint)
	if err != nil {
		return 0, false, fmt.Errorf("slot %s consistent point: %w", r.cfg.Slot, err)
	}
	r.log.Info("created slot; publishing the initial snapshot", "consistent_point", res.ConsistentPoint)
	n, err := r.snapshot(ctx, res.SnapshotName, cp)
	if err != nil {
		return 0, false, fmt.Errorf("initial snapshot: %w", err)
	}
	if _, err := r.pool.Exec(ctx, `
		INSERT INTO cdc_slot (slot, snapshot_lsn) VALUES ($1, $2::pg_lsn)
		ON CONFLICT (slot) DO UPDATE SET snapshot_lsn = EXCLUDED.snapshot_lsn, snapshot_at = now()`,
		r.cfg.Slot, res.ConsistentPoint); err != nil {
		return 0, false, fmt.Errorf("record snapshot of slot %s: %w", r.cfg.Slot, err)
	}
	r.log.Info("initial snapshot published", "rows", n)
	return cp, false, nil
}

// snapshot publishes every row of the published tables as seen by the slot's
// exported snapshot, so that streaming from the consistent point continues
// exactly where the snapshot ends. Outbox rows are published as their events
// and then pruned.
func (r *relay) snapshot(ctx context.Context, name string, cp uint64) (int, error) {
	if !snapshotNameRE.MatchString(name) {
		return 0, fmt.Errorf("unexpected snapshot name %q", name)
	}
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("acquire: %w", err)
	}
	defer pc.Release()
	tx, err := pc.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, q := range []string{"SET TRANSACTION SNAPSHOT '" + name + "'", "SET LOCAL TimeZone = 'UTC'", "SET LOCAL DateStyle = 'ISO, MDY'"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("%s: %w", q, err)
		}
	}
	now := time.Now()
	var (
		pending []Change
		outIDs  []int64
		total   int
		rows    int
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := r.publish(ctx, pending); err != nil {
			return err
		}
		total += len(pending)
		pending = pending[:0]
		return nil
	}
	for _, table := range Tables() {
		rr := tx.Conn().PgConn().ExecParams(ctx, "SELECT * FROM public."+table, nil, nil, nil, nil)
		fds := rr.FieldDescriptions()
		pk := map[string]int{}
		for i, name := range r.pks[table] {
			pk[name] = i
		}
		var idCol, evCol = -1, -1
		for i, fd := range fds {
			switch fd.Name {
			case "id":
				idCol = i
			case "event":
				evCol = i
			}
		}
		for rr.NextRow() {
			vals := rr.Values()
			c := Change{Table: table, Op: eventtype.OpSnapshot, LSN: cp, CommitLSN: cp, Commit: now, Snapshot: true}
			if table != "outbox" {
				rows++
			}
			if table == "outbox" {
				if evCol < 0 || idCol < 0 {
					return total, errors.New("outbox table has no id or event column")
				}
				c.Outbox = append([]byte(nil), vals[evCol]...)
				c.OutboxID, _ = textValue(oidInt8, vals[idCol]).(int64)
				outIDs = append(outIDs, c.OutboxID)
			} else {
				c.After = make(Row, 0, len(fds))
				c.Key = make([]string, len(r.pks[table]))
				for i, fd := range fds {
					if vals[i] == nil {
						c.After = append(c.After, Col{fd.Name, nil})
						continue
					}
					c.After = append(c.After, Col{fd.Name, textValue(fd.DataTypeOID, vals[i])})
					if k, ok := pk[fd.Name]; ok {
						c.Key[k] = string(vals[i])
					}
				}
			}
			pending = append(pending, c)
			if len(pending) >= r.cfg.BatchSize {
				if err := flush(); err != nil {
					rr.Close() //nolint:errcheck
					return total, err
				}
			}
		}
		if _, err := rr.Close(); err != nil {
			return total, fmt.Errorf("read %s: %w", table, err)
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	// The snapshot's progress report: the span (0, cp] and its rows.
	rep, err := progressEvent(&span{to: cp, snapshot: true, rows: rows}, r.source, r.cfg.Slot)
	if err != nil {
		return total, fmt.Errorf("snapshot progress report: %w", err)
	}
	if err := r.publishEvents(ctx, []event.Event{rep}); err != nil {
		return total, err
	}
	if err := tx.Commit(ctx); err != nil {
		return total, fmt.Errorf("end snapshot transaction: %w", err)
	}
	if len(outIDs) > 0 {
		if _, err := r.pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, outIDs); err != nil {
			r.log.Warn("prune snapshot outbox rows", "error", err)
		} else {
			r.m.pruned.Add(float64(len(outIDs)))
		}
	}
	return total, nil
}

// publish turns changes into events and publishes them in BatchSize chunks,
// followed by the trailer events (a progress report) in the last chunk,
// retrying each chunk until the broker accepts it or ctx ends.
func (r *relay) publish(ctx context.Context, changes []Change, trailer ...event.Event) error {
	now := time.Now()
	events := make([]event.Event, 0, min(len(changes), r.cfg.BatchSize)+len(trailer))
	for start := 0; start < len(changes) || (start == 0 && len(trailer) > 0); start += r.cfg.BatchSize {
		events = events[:0]
		for i := start; i < min(start+r.cfg.BatchSize, len(changes)); i++ {
			e, err := toEvent(&changes[i], r.source, r.db, now)
			if err != nil {
				// A row that cannot become an event (a corrupt outbox row) would
				// block the relay forever; it is logged, counted and skipped.
				r.m.poison.Inc()
				r.log.Error("skipping a change that cannot be encoded", "table", changes[i].Table, "lsn", changes[i].LSN, "error", err)
				continue
			}
			events = append(events, e)
		}
		if start+r.cfg.BatchSize >= len(changes) {
			events = append(events, trailer...)
		}
		if err := r.publishEvents(ctx, events); err != nil {
			return err
		}
		r.m.published.Add(float64(len(events)))
	}
	return nil
}

// publishEvents publishes events in one call, retrying until the broker
// accepts them or ctx ends.
func (r *relay) publishEvents(ctx context.Context, events []event.Event) error {
	backoff := 50 * time.Millisecond
	for {
		err := r.cfg.Publisher.Publish(ctx, events...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.m.failures.Inc()
		r.log.Warn("broker did not accept a batch; retrying", "events", len(events), "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// pipeline is the streaming state shared by the receiving loop and the
// publisher goroutine.
type pipeline struct {
	acked atomic.Uint64 // everything up to here is acknowledged and reported

	mu       sync.Mutex
	outboxes []int64 // outbox ids whose insert is acknowledged, not yet pruned
}

func (p *pipeline) advance(pos uint64) {
	for {
		cur := p.acked.Load()
		if pos <= cur || p.acked.CompareAndSwap(cur, pos) {
			return
		}
	}
}

// stream runs START_REPLICATION from start and relays until ctx ends or the
// connection fails.
func (r *relay) stream(ctx context.Context, conn *pgconn.PgConn, start uint64, resumed bool) error {
	err := pglogrepl.StartReplication(ctx, conn, r.cfg.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + r.cfg.Publication + "'", "messages 'true'"},
	})
	if err != nil {
		return fmt.Errorf("start replication at %s: %w", lsn.String(start), err)
	}
	r.log.Info("streaming", "from", lsn.String(start))
	p := &pipeline{}
	p.acked.Store(start)
	r.m.confirmed.Set(float64(start))

	pctx, cancel := context.WithCancel(ctx)
	batches := make(chan *batch, 4)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.publishLoop(pctx, p, batches) }()
	go func() { defer wg.Done(); r.pruneLoop(pctx, p) }()
	defer func() {
		cancel()
		wg.Wait()
		// Tell the server how far we got; best effort (the position is also
		// safe if this never arrives: we resume from the last one it received).
		_ = pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(p.acked.Load())})
	}()

	// Cancelling ctx interrupts a read waiting for the next message.
	stopRead := context.AfterFunc(ctx, func() { _ = conn.Conn().SetReadDeadline(time.Now()) })
	defer stopRead()

	dec := newDecoder(r.pks)
	var (
		cur        *batch
		curSince   time.Time
		nextStatus time.Time
		nextIdle   time.Time
		lastTrunc  int
		lastWM     uint64
		// covered is the end of the last batch handed over: the next batch
		// starts there, so the batches tile the WAL from start onward.
		covered = start
		// idleTo is the furthest position known to hold no catalog change
		// beyond covered (keepalives, transactions without catalog changes).
		idleTo   uint64
		firstRep = resumed
	)
	nextIdle = time.Now().Add(r.cfg.StatusInterval)
	open := func(now time.Time) {
		cur = &batch{start: covered, end: covered, resume: firstRep}
		firstRep = false
		curSince = now
	}
	sendStatus := func() error {
		pos := p.acked.Load()
		// Write, flush and apply are all the acknowledged position: reporting a
		// write position ahead of it would let PostgreSQL advance
		// confirmed_flush_lsn past events the broker never took.
		if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: pglogrepl.LSN(pos), WALFlushPosition: pglogrepl.LSN(pos), WALApplyPosition: pglogrepl.LSN(pos),
		}); err != nil {
			return fmt.Errorf("send standby status: %w", err)
		}
		r.m.confirmed.Set(float64(pos))
		nextStatus = time.Now().Add(r.cfg.StatusInterval)
		return nil
	}
	handOver := func() error {
		t := time.NewTimer(r.cfg.StatusInterval)
		defer t.Stop()
		for {
			select {
			case batches <- cur:
				covered = cur.end
				cur = nil
				return nil
			case <-ctx.Done():
				return nil
			case <-t.C:
				// The broker is slow or down: stop reading, but keep the
				// connection alive with status updates.
				if err := sendStatus(); err != nil {
					return err
				}
				t.Reset(r.cfg.StatusInterval)
			}
		}
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		// WAL without catalog changes is reported (and so confirmed) at most
		// once per status interval: this keeps WAL from piling up while the
		// catalog is idle and other tables are written.
		if cur == nil && !dec.inTx && idleTo > covered && !now.Before(nextIdle) {
			open(now)
			cur.end = idleTo
			nextIdle = now.Add(r.cfg.StatusInterval)
		}
		if cur != nil && len(cur.changes) >= r.cfg.BatchSize {
			if err := handOver(); err != nil {
				return err
			}
			continue
		}
		if cur != nil && now.Sub(curSince) >= r.cfg.FlushDelay {
			// Due, but handed over only if the publisher can take it now.
			// When the broker is the bottleneck (catching up on a backlog),
			// the batch keeps growing until the publisher is free or the
			// batch is full: waiting with a batch of FlushDelay's worth of
			// changes made each publish — and each of its round trips to
			// the consumers — carry a fraction of BatchSize.
			select {
			case batches <- cur:
				covered = cur.end
				cur = nil
				continue
			default:
			}
		}
		if !now.Before(nextStatus) {
			if err := sendStatus(); err != nil {
				return err
			}
		}
		deadline := nextStatus
		if cur != nil {
			// A due batch the publisher could not take is offered again
			// after another FlushDelay.
			flushAt := curSince.Add(r.cfg.FlushDelay)
			if !flushAt.After(now) {
				flushAt = now.Add(r.cfg.FlushDelay)
			}
			if flushAt.Before(deadline) {
				deadline = flushAt
			}
		}
		if cur == nil && idleTo > covered && nextIdle.Before(deadline) {
			deadline = nextIdle
		}
		_ = conn.Conn().SetReadDeadline(deadline)
		if ctx.Err() != nil {
			return nil
		}
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return errors.New("server ended the replication stream")
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parse keepalive: %w", err)
				}
				// Every transaction that committed before ServerWALEnd has
				// been sent: the WAL up to there holds nothing more for us.
				if !dec.inTx {
					idleTo = max(idleTo, uint64(ka.ServerWALEnd))
				}
				if ka.ReplyRequested {
					if err := sendStatus(); err != nil {
						return err
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parse XLogData: %w", err)
				}
				r.m.received.Set(float64(xld.WALStart))
				tx, err := dec.handle(uint64(xld.WALStart), xld.WALData)
				if err != nil {
					return fmt.Errorf("decode at %s: %w", lsn.String(uint64(xld.WALStart)), err)
				}
				if dec.truncates != lastTrunc {
					lastTrunc = dec.truncates
					r.log.Warn("a catalog table was truncated; consumers get op \"t\" and should rebuild (overture reindex)")
				}
				if dec.watermark > lastWM {
					// A reader waits for the watermark: report up to the
					// request's position with the next batch, now.
					lastWM = dec.watermark
					if cur == nil {
						open(now)
					}
					cur.end = max(cur.end, lastWM)
					curSince = now.Add(-r.cfg.FlushDelay)
				}
				if tx == nil {
					continue
				}
				r.m.transactions.Inc()
				if len(tx.changes) == 0 {
					if cur != nil {
						cur.end = max(cur.end, tx.end)
					} else {
						idleTo = max(idleTo, tx.end)
					}
					continue
				}
				if cur == nil {
					open(now)
				}
				cur.changes = append(cur.changes, tx.changes...)
				cur.end = max(cur.end, tx.end)
			}
		}
	}
}

// publishLoop publishes handed-over batches in order. Their spans are
// reported (a CDCProgress event published after the changes, in the same
// call) at most every ProgressEvery, at once for a batch without changes;
// the acknowledged position — the one confirmed to the slot — advances only
// to the end of what was reported, so that a restarted CDC's first report
// continues the tiling.
func (r *relay) publishLoop(ctx context.Context, p *pipeline, batches <-chan *batch) {
	var (
		pend span
		last time.Time
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	report := func() ([]event.Event, error) {
		e, err := progressEvent(&pend, r.source, r.cfg.Slot)
		if err != nil {
			return nil, fmt.Errorf("progress report: %w", err)
		}
		return []event.Event{e}, nil
	}
	reported := func() {
		p.advance(pend.to)
		pend = span{}
		last = time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if !pend.open {
				continue
			}
			rep, err := report()
			if err == nil {
				err = r.publishEvents(ctx, rep)
			}
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("publish progress report", "error", err)
				}
				return // the session ends; the next one reports the span again
			}
			reported()
		case b := <-batches:
			pend.add(b)
			var rep []event.Event
			if len(b.changes) == 0 || time.Since(last) >= r.cfg.ProgressEvery || len(pend.txns) >= 10*r.cfg.BatchSize {
				var err error
				if rep, err = report(); err != nil {
					r.log.Error("encode progress report", "error", err)
					return
				}
			}
			if err := r.publish(ctx, b.changes, rep...); err != nil {
				return // ctx ended: the batch is replayed by the next session
			}
			var ids []int64
			for i := range b.changes {
				if b.changes[i].Outbox != nil {
					ids = append(ids, b.changes[i].OutboxID)
				}
			}
			if len(ids) > 0 {
				p.mu.Lock()
				p.outboxes = append(p.outboxes, ids...)
				p.mu.Unlock()
			}
			if rep != nil {
				reported()
				timer.Stop()
			} else {
				timer.Reset(r.cfg.ProgressEvery)
			}
		}
	}
}

// pruneLoop deletes outbox rows whose insert the broker acknowledged. Rows
// left behind by a crash (acknowledged, but the process died before pruning)
// are found at session start: every row visible then committed before the
// current WAL insert position, so once that position is acknowledged they have
// all been published and can go.
func (r *relay) pruneLoop(ctx context.Context, p *pipeline) {
	var (
		sweep    []int64
		sweepLSN uint64
	)
	var pos string
	err := r.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), pg_current_wal_insert_lsn()::text FROM (SELECT id FROM outbox ORDER BY id LIMIT 100000) o`).Scan(&sweep, &pos)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("read outbox for the startup sweep", "error", err)
		}
	} else if sweepLSN, err = lsn.ParseToken(pos); err != nil {
		sweep = nil
	}
	t := time.NewTicker(r.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		p.mu.Lock()
		ids := p.outboxes
		p.outboxes = nil
		p.mu.Unlock()
		if len(sweep) > 0 && p.acked.Load() >= sweepLSN {
			ids = append(ids, sweep...)
			sweep = nil
		}
		if len(ids) > 0 {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			tag, err := r.pool.Exec(dctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids)
			cancel()
			if err != nil {
				r.log.Warn("prune outbox", "rows", len(ids), "error", err)
			} else {
				r.m.pruned.Add(float64(tag.RowsAffected()))
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// isDuplicate reports a duplicate_object error (a concurrent creator won).
func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42710"
}
