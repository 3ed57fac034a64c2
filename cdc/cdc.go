// Package cdc is Overture's one durable relay from the write side to the event
// side: it reads the PostgreSQL WAL through logical replication (pgoutput,
// github.com/jackc/pglogrepl) and publishes into the broker
//
//   - a change event in Debezium's envelope (eventtype.ChangeData) for every
//     insert, update and delete of a catalog table, including changes made
//     directly in SQL that no service announced, and
//   - for every outbox insert, the CloudEvent stored in the row, as itself:
//     this replaces the polling outbox relay.
//
// The slot's confirmed position is the relay's only state: CDC confirms an LSN
// only after the broker acknowledged every event of every transaction up to it,
// so a crash at any point loses nothing and replays at most the unconfirmed
// tail (consumers are idempotent). On first start it creates the publication
// and the slot and publishes an initial snapshot taken from the slot's
// exported snapshot, so snapshot and stream meet exactly. docs/cdc.md has the
// design, the envelope and the failure modes.
package cdc

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
)

// Defaults of Config.
const (
	DefaultSlot           = "overture_cdc"
	DefaultPublication    = "overture_cdc"
	DefaultBatchSize      = 1000
	DefaultFlushDelay     = 5 * time.Millisecond
	DefaultStatusInterval = time.Second
	DefaultPruneInterval  = 2 * time.Second
	DefaultProgressEvery  = 20 * time.Millisecond
)

// Config configures Run. Only DatabaseURL and Publisher are required.
type Config struct {
	// DatabaseURL is a normal connection URL; Run adds replication=database for
	// the replication connection. The role needs REPLICATION (or superuser).
	DatabaseURL string
	// Slot and Publication default to "overture_cdc".
	Slot, Publication string
	// Publisher is the broker ingress (in process, or HTTP to K_SINK). Publish
	// returning nil is the acknowledgement CDC confirms on.
	Publisher  function.Publisher
	Log        *slog.Logger
	Registerer prometheus.Registerer // may be nil

	// BatchSize is the most events per Publish call (default 1000); a batch
	// holds whole transactions unless one transaction alone is larger.
	BatchSize int
	// FlushDelay is how long a partial batch waits for more transactions
	// (default 5 ms).
	FlushDelay time.Duration
	// StatusInterval is how often a standby status update is sent even when
	// nothing changed (default 1 s; PostgreSQL's wal_sender_timeout is 60 s).
	StatusInterval time.Duration
	// PruneInterval is how often confirmed outbox rows are deleted (default 2 s).
	PruneInterval time.Duration
	// ProgressEvery is the most often a progress report (CDCProgress) is
	// published while changes stream (default 20 ms); a report is also sent
	// at once for a watermark request. The slot is confirmed up to the last
	// reported position.
	ProgressEvery time.Duration
}

// Configuration keys of a standalone relay (`overture cdc`).
const (
	KeyDatabaseURL = "DATABASE_URL"
	KeySlot        = "CDC_SLOT"        // default overture_cdc
	KeyPublication = "CDC_PUBLICATION" // default overture_cdc
)

// ReadConfig reads the settings a host takes from its cfg map (DATABASE_URL
// required; CDC_SLOT and CDC_PUBLICATION optional) from r, recording every
// problem on r. The host adds the publisher, logger and registry.
func ReadConfig(r *config.Reader) Config {
	c := Config{
		DatabaseURL: r.String(KeyDatabaseURL),
		Slot:        r.StringOr(KeySlot, ""),
		Publication: r.StringOr(KeyPublication, ""),
	}
	for key, v := range map[string]string{KeySlot: c.Slot, KeyPublication: c.Publication} {
		if v != "" && !identRE.MatchString(v) {
			r.Fail(key, "%q: want a lower-case SQL identifier", v)
		}
	}
	return c
}

// Keys lists the settings ReadConfig reads.
func Keys() []config.Key { return config.KeysOf(func(r *config.Reader) { ReadConfig(r) }) }

// ErrConfig marks a configuration Run cannot work with (it returns instead of
// retrying).
var ErrConfig = errors.New("cdc: unusable configuration")

//go:embed migrations/*.sql
var migrations embed.FS

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Tables are the tables CDC publishes: the catalog and the outbox.
func Tables() []string { return append(append([]string(nil), catalog.Tables...), "outbox") }

// Run relays until ctx ends. It survives lost connections and broker outages
// by reconnecting and resuming from the slot's confirmed position; it returns
// an error only for a configuration it cannot work with.
func Run(ctx context.Context, cfg Config) error {
	cfg.Slot = cmp.Or(cfg.Slot, DefaultSlot)
	cfg.Publication = cmp.Or(cfg.Publication, DefaultPublication)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, DefaultBatchSize)
	cfg.FlushDelay = cmp.Or(cfg.FlushDelay, DefaultFlushDelay)
	cfg.StatusInterval = cmp.Or(cfg.StatusInterval, DefaultStatusInterval)
	cfg.PruneInterval = cmp.Or(cfg.PruneInterval, DefaultPruneInterval)
	cfg.ProgressEvery = cmp.Or(cfg.ProgressEvery, DefaultProgressEvery)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Publisher == nil {
		return errors.New("cdc: no publisher")
	}
	if !identRE.MatchString(cfg.Slot) || !identRE.MatchString(cfg.Publication) {
		return fmt.Errorf("cdc: slot %q and publication %q must be lower-case SQL identifiers", cfg.Slot, cfg.Publication)
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("cdc: %w", err)
	}
	defer pool.Close()
	if err := setup(ctx, pool.Pool, cfg.Publication); err != nil {
		return err
	}
	r := &relay{cfg: cfg, pool: pool.Pool, log: cfg.Log.With("component", "cdc", "slot", cfg.Slot), m: newMetrics(cfg.Registerer)}
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrConfig) {
			return err
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		r.m.restarts.Inc()
		r.log.Warn("cdc session ended; reconnecting", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// setup migrates the tables CDC reads and its own state, and makes sure the
// publication covers every table in Tables.
func setup(ctx context.Context, pool *pgxpool.Pool, publication string) error {
	if err := outbox.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("cdc: %w", err)
	}
	if err := catalog.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("cdc: %w", err)
	}
	if err := postgres.MigrateOwner(ctx, pool, "cdc", migrations); err != nil {
		return fmt.Errorf("cdc: %w", err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, publication).Scan(&exists); err != nil {
		return fmt.Errorf("cdc: look up publication: %w", err)
	}
	if !exists {
		_, err := pool.Exec(ctx, "CREATE PUBLICATION "+publication+" FOR TABLE "+joinTables(Tables()))
		if err != nil && !isDuplicate(err) {
			return fmt.Errorf("cdc: create publication %s: %w", publication, err)
		}
		return nil
	}
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'public'`, publication)
	if err != nil {
		return fmt.Errorf("cdc: list publication tables: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return fmt.Errorf("cdc: list publication tables: %w", err)
		}
		have[t] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cdc: list publication tables: %w", err)
	}
	var missing []string
	for _, t := range Tables() {
		if !have[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		if _, err := pool.Exec(ctx, "ALTER PUBLICATION "+publication+" ADD TABLE "+joinTables(missing)); err != nil {
			return fmt.Errorf("cdc: add %v to publication %s: %w", missing, publication, err)
		}
	}
	return nil
}

func joinTables(ts []string) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += "public." + t
	}
	return s
}
