package saga

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/overture-music/overture/internal/postgres"
)

// Open is how every saga participant starts: the mode from cfg, the
// process-shared pool for DATABASE_URL, and its own migrations run on it.
// name prefixes the errors. The caller closes the pool in Stop.
func Open(ctx context.Context, cfg map[string]string, name string, migrate postgres.Migrator) (Mode, *postgres.Pool, error) {
	mode, err := ParseMode(cfg)
	if err != nil {
		return "", nil, err
	}
	pool, err := postgres.OpenMigrated(ctx, cfg["DATABASE_URL"], migrate)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", name, err)
	}
	return mode, pool, nil
}

// Participant is what every saga function holds: its mode, its logger and
// the pool Open gave it. Embedding it gives the function Stop.
type Participant struct {
	Mode Mode
	Log  *slog.Logger
	Pool *postgres.Pool
}

// Join opens the participant named name (see Open) and names its logger
// unless one was set.
func (p *Participant) Join(ctx context.Context, cfg map[string]string, name string, migrate postgres.Migrator) error {
	if p.Log == nil {
		p.Log = slog.Default().With("function", name)
	}
	mode, pool, err := Open(ctx, cfg, name, migrate)
	if err != nil {
		return err
	}
	p.Mode, p.Pool = mode, pool
	return nil
}

// Stop releases the pool.
func (p *Participant) Stop(context.Context) error {
	if p.Pool != nil {
		p.Pool.Close()
	}
	return nil
}
