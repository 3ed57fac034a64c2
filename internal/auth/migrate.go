package auth

import (
	"embed"
	"io/fs"
)

//go:embed migrations/*.sql
var migrations embed.FS

func migrationFS() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}
