package catalog

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the catalog tables (owner "catalog").
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, _ := fs.Sub(migrations, "migrations")
	return postgres.Migrate(ctx, pool, "catalog", sub)
}

// Tables are the catalog tables, parents first (the order a snapshot reads them).
var Tables = []string{"genre", "artist", "album", "track", "track_artist", "track_rendition"}
