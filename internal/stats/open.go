package stats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/postgres"
)

// Backends (STATS_BACKEND).
const (
	Postgres   = "postgres"
	ClickHouse = "clickhouse"
)

// Settings of the statistics store, read here only: every component that
// opens the store (the stats-writer function, the listens service,
// `overture stats rebuild`) goes through Open.
const (
	KeyBackend            = "STATS_BACKEND"       // postgres (default) | clickhouse
	KeyClickHouseURL      = "CLICKHOUSE_URL"      // a ClickHouse server's HTTP interface; unset: the embedded chDB
	KeyClickHouseDatabase = "CLICKHOUSE_DATABASE" // the store's database (default overture)
	KeyCHDBLibPath        = "CHDB_LIB_PATH"       // embedded: libchdb.so (hack/deps/chdb.sh)
	KeyCHDBDataDir        = "CHDB_DATA_DIR"       // embedded: the session's data directory
)

// Config is the store's settings.
type Config struct {
	Backend string
	// PostgreSQL: DatabaseURL, unless the caller passes its pool.
	DatabaseURL string
	// ClickHouse: a server (URL) or the embedded engine (CHDBLib, CHDBDir).
	URL, Database, CHDBLib, CHDBDir string
}

// Read reads the settings; needPG: the caller has no pool of its own, so
// DATABASE_URL is required for the postgres backend.
func (c *Config) Read(r *config.Reader, needPG bool) {
	c.Backend = r.StringOr(KeyBackend, Postgres)
	switch c.Backend {
	case Postgres:
		if needPG {
			c.DatabaseURL = r.String("DATABASE_URL")
		}
	case ClickHouse:
		c.Database = r.StringOr(KeyClickHouseDatabase, "overture")
		if !dbName.MatchString(c.Database) {
			r.Fail(KeyClickHouseDatabase, "%q is not a ClickHouse database name (letters, digits, _)", c.Database)
		}
		if r.Has(KeyClickHouseURL) {
			c.URL = r.URL(KeyClickHouseURL)
		} else {
			c.CHDBLib, c.CHDBDir = r.String(KeyCHDBLibPath), r.String(KeyCHDBDataDir)
		}
	default:
		r.Fail(KeyBackend, "%q is not a statistics backend (postgres or clickhouse)", c.Backend)
	}
}

// Keys are the settings Open reads.
func Keys() []config.Key {
	return config.KeysOf(func(r *config.Reader) {
		var c Config
		c.Read(r, true)
		r.Has(KeyClickHouseURL)
		r.Has(KeyClickHouseDatabase)
		r.Has(KeyCHDBLibPath)
		r.Has(KeyCHDBDataDir)
	})
}

// Opened is an open store.
type Opened struct {
	Store
	// Backend is postgres or clickhouse.
	Backend string
	// Close releases what Open opened for this store: the pool it opened
	// (not a pool the caller passed), nothing for ClickHouse (the embedded
	// session lives as long as the process: others in it share it).
	Close func()
	// Ready reports whether the store answers.
	Ready func(ctx context.Context) (bool, error)
}

// Open opens the statistics store cfg names (STATS_BACKEND), creating or
// migrating its tables. For postgres it uses pool when not nil (the
// caller's), else a pool of its own on DATABASE_URL.
func Open(ctx context.Context, cfg map[string]string, pool *pgxpool.Pool) (*Opened, error) {
	var c Config
	r := config.NewReader(cfg)
	c.Read(r, pool == nil)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	switch c.Backend {
	case Postgres:
		if pool != nil {
			if err := Migrate(ctx, pool); err != nil {
				return nil, fmt.Errorf("stats: %w", err)
			}
			return &Opened{Store: NewPG(pool), Backend: Postgres, Close: func() {},
				Ready: func(ctx context.Context) (bool, error) { return pingPG(ctx, pool) }}, nil
		}
		p, err := postgres.OpenMigrated(ctx, c.DatabaseURL, Migrate)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		return &Opened{Store: NewPG(p.Pool), Backend: Postgres, Close: p.Close, Ready: p.Ready}, nil
	default:
		var x Executor = HTTPExecutor{URL: c.URL}
		if c.URL == "" {
			lib, err := filepath.Abs(c.CHDBLib)
			if err != nil {
				return nil, fmt.Errorf("stats: %s: %w", KeyCHDBLibPath, err)
			}
			dir, err := filepath.Abs(c.CHDBDir)
			if err != nil {
				return nil, fmt.Errorf("stats: %s: %w", KeyCHDBDataDir, err)
			}
			if x, err = Embedded(lib, dir); err != nil {
				return nil, err
			}
		}
		s, err := NewCH(ctx, x, c.Database)
		if err != nil {
			return nil, err
		}
		return &Opened{Store: s, Backend: ClickHouse, Close: func() {},
			Ready: func(ctx context.Context) (bool, error) {
				if _, err := x.Exec(ctx, "SELECT 1"); err != nil {
					return false, fmt.Errorf("stats: clickhouse: %w", err)
				}
				return true, nil
			}}, nil
	}
}

func pingPG(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	if err := pool.Ping(ctx); err != nil {
		return false, fmt.Errorf("stats: postgres: %w", err)
	}
	return true, nil
}

// Holder is what holds a component's dependencies for its lifetime
// (lifecycle.Base): it closes them on Stop and asks them on Ready.
type Holder interface {
	Hold(name string, close func() error, ready func(context.Context) error)
}

// OpenHeld opens the store as [Open] does and hands it to h, so the
// component's Stop closes it and its Ready asks it: the one way the
// components that read or write statistics acquire the store.
func OpenHeld(ctx context.Context, h Holder, cfg map[string]string, pool *pgxpool.Pool) (Store, error) {
	o, err := Open(ctx, cfg, pool)
	if err != nil {
		return nil, err
	}
	h.Hold("statistics store", func() error { o.Close(); return nil }, func(ctx context.Context) error {
		if ok, err := o.Ready(ctx); !ok {
			return cmp.Or(err, errors.New("not ready"))
		}
		return nil
	})
	return o, nil
}
