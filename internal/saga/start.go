package saga

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
)

// Open is how every saga participant starts: the mode from cfg, the
// process-shared pool for DATABASE_URL, and its own migrations run on it.
// name prefixes the errors. The caller closes the pool in Stop.
func Open(ctx context.Context, cfg map[string]string, name string, migrate func(context.Context, *pgxpool.Pool) error) (Mode, *postgres.Pool, error) {
	mode, err := ParseMode(cfg)
	if err != nil {
		return "", nil, err
	}
	pool, err := postgres.Open(ctx, cfg["DATABASE_URL"])
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := migrate(ctx, pool.Pool); err != nil {
		pool.Close()
		return "", nil, fmt.Errorf("%s: %w", name, err)
	}
	return mode, pool, nil
}
