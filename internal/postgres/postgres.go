// Package postgres opens Overture's PostgreSQL pools and runs each owner's
// migrations.
//
// Every function owns its tables and their migrations (an embed.FS of goose SQL
// files); Migrate keeps one goose version table per owner, so owners migrate
// independently and in any order, in one database or in separate ones.
//
// In the embedded platform many functions share one process; Open hands them
// one pool per URL so they do not multiply connections.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
const DefaultMaxConns = 32

var (
	poolsMu sync.Mutex
	pools   = map[string]*shared{}
)

type shared struct {
	pool *pgxpool.Pool
	refs int
}

// Pool is a shared connection pool; Close releases this holder's reference.
type Pool struct {
	*pgxpool.Pool
	url  string
	once sync.Once
}

// Open returns a pool for url, shared with every other holder in the process.
func Open(ctx context.Context, url string) (*Pool, error) {
	if url == "" {
		return nil, errors.New("postgres: empty database URL (set DATABASE_URL)")
	}
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if s, ok := pools[url]; ok {
		s.refs++
		return &Pool{Pool: s.pool, url: url}, nil
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database URL: %w", redact(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		// One pool serves every function of the process (the embedded platform
		// hosts them all), so pgx's default of max(4, cores) would queue them
		// behind each other. A URL's pool_max_conns still wins.
		cfg.MaxConns = DefaultMaxConns
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("postgres: ping %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	pools[url] = &shared{pool: p, refs: 1}
	return &Pool{Pool: p, url: url}, nil
}

// Close releases the reference; the last holder closes the pool. Closing a
// nil Pool (a function stopped before it started) does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		poolsMu.Lock()
		defer poolsMu.Unlock()
		s, ok := pools[p.url]
		if !ok {
			return
		}
		s.refs--
		if s.refs == 0 {
			delete(pools, p.url)
			s.pool.Close()
		}
	})
}

// Ready reports whether the database answers; a nil Pool (not started yet)
// is not ready. It is the readiness of a function whose only dependency that
// must be up is its database.
func (p *Pool) Ready(ctx context.Context) (bool, error) {
	if p == nil {
		return false, errors.New("postgres: not started")
	}
	if err := p.Ping(ctx); err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	return true, nil
}

// Migrator creates or updates the tables of one owner on pool; an owner's
// exported Migrate has this type.
type Migrator func(ctx context.Context, pool *pgxpool.Pool) error

// OpenMigrated is how a function that owns tables starts: the shared pool for
// url (see Open), then migrate run on it. When migrate fails the pool is
// released, so a function whose Start failed holds no connection.
func OpenMigrated(ctx context.Context, url string, migrate Migrator) (*Pool, error) {
	pool, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool.Pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New(pe.Error()) // ParseConfigError already redacts the password
	}
	return err
}

// Migrate applies the owner's goose SQL migrations found at the root of fsys
// (use fs.Sub for a subdirectory), recording them in the table goose_<owner>.
// It is safe to call on every start and from several processes at once: a
// PostgreSQL session lock serializes migrators.
func Migrate(ctx context.Context, pool *pgxpool.Pool, owner string, fsys fs.FS) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrateDB(ctx, db, owner, fsys)
}

// MigrateOwner applies owner's migrations embedded, by the project's
// convention, as migrations/*.sql in fsys (see Migrate), and then each of
// shared in order: the schemas of shared tables the owner also writes to,
// such as outbox.Migrate and inbox.Migrate. It stops at the first failure.
func MigrateOwner(ctx context.Context, pool *pgxpool.Pool, owner string, fsys fs.FS, shared ...Migrator) error {
	dir, err := fs.Sub(fsys, "migrations")
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", owner, err)
	}
	if err := Migrate(ctx, pool, owner, dir); err != nil {
		return err
	}
	for _, m := range shared {
		if err := m(ctx, pool); err != nil {
			return err
		}
	}
	return nil
}

func migrateDB(ctx context.Context, db *sql.DB, owner string, fsys fs.FS) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", owner, err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName("goose_"+owner),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
	)
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", owner, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations of %s: %w", owner, err)
	}
	return nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func InTx(ctx context.Context, pool interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}, fn func(pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
