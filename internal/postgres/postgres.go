// Package postgres opens Overture's PostgreSQL pools and runs each owner's
// migrations.
//
// Every function owns its tables and their migrations (an embed.FS of goose SQL
// files); Migrate keeps one goose version table per owner, so owners migrate
// independently and in any order, in one database or in separate ones.
//
// Pools are owned by whoever hosts the components, never by the process: a
// host (the embedded platform, a standalone function or service) makes one
// [Pools] and hands it to every component it starts (internal/lifecycle), so
// the many functions `make run` hosts share one pool per database URL instead
// of multiplying connections, and the host closes them all when it stops. A
// command that needs one connection pool for itself calls [Open].
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

// KeyDatabaseURL is the cfg key of a component's database.
const KeyDatabaseURL = "DATABASE_URL"

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
const DefaultMaxConns = 32

// Pools is a host's set of pools, one per database URL, shared by the
// components it starts. The zero value is ready to use.
type Pools struct {
	mu     sync.Mutex
	m      map[string]*shared
	closed bool
}

type shared struct {
	pool *pgxpool.Pool
	refs int
}

// Pool is a connection pool; Close releases this holder's reference (the
// last holder of a shared pool closes it).
type Pool struct {
	*pgxpool.Pool
	once    sync.Once
	release func()
}

// Open returns a pool for url of the holder's own, closed by its Close.
func Open(ctx context.Context, url string) (*Pool, error) {
	p, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	return &Pool{Pool: p, release: p.Close}, nil
}

// Open returns the pool for url shared with every other holder of s,
// connecting on first use.
func (s *Pools) Open(ctx context.Context, url string) (*Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("postgres: the host's pools are closed")
	}
	sh, ok := s.m[url]
	if !ok {
		p, err := connect(ctx, url)
		if err != nil {
			return nil, err
		}
		if s.m == nil {
			s.m = map[string]*shared{}
		}
		sh = &shared{pool: p}
		s.m[url] = sh
	}
	sh.refs++
	return &Pool{Pool: sh.pool, release: func() { s.release(url, sh) }}, nil
}

func (s *Pools) release(url string, sh *shared) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh.refs--
	if sh.refs == 0 && s.m[url] == sh {
		delete(s.m, url)
		sh.pool.Close()
	}
}

// Held reports how many pools s has open (each shared by its holders).
func (s *Pools) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Close closes every pool of s, whoever still holds it; later Opens fail.
// The host calls it after every component stopped.
func (s *Pools) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for url, sh := range s.m {
		sh.pool.Close()
		delete(s.m, url)
	}
}

func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("postgres: empty database URL (set DATABASE_URL)")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database URL: %w", redact(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		// One pool serves every function of a host (the embedded platform
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
	return p, nil
}

// Close releases the reference. Closing a nil Pool (a function stopped
// before it started) does nothing.
func (p *Pool) Close() {
	if p == nil || p.release == nil {
		return
	}
	p.once.Do(p.release)
}

// Ready reports whether the database answers; a nil Pool (not started yet)
// is not ready.
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

// OpenMigrated opens a pool of the caller's own for url (see Open) and runs
// migrate on it. When migrate fails the pool is closed, so a failed start
// holds no connection.
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
