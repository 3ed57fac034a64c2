package catalog

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the catalog tables (owner "catalog").
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "catalog", migrations)
}

// Tables are the catalog tables, parents first (the order a snapshot reads them).
var Tables = []string{"genre", "artist", "album", "track", "track_artist", "track_rendition"}
