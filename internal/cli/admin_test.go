package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/testenv"
)

func TestAdminCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.Postgres(t)
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return db
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if err := admin(ctx, []string{"create", "--email", "root@example.com"}, strings.NewReader(""), &out, &errOut, env); err == nil {
		t.Fatal("a new admin without a password was created")
	}
	err := admin(ctx, []string{"create", "--email", "root@example.com", "--password-stdin"}, strings.NewReader("admin password 1\n"), &out, &errOut, env)
	if err != nil || !strings.Contains(out.String(), "created admin") {
		t.Fatalf("create: %v %s %s", err, out.String(), errOut.String())
	}
	// Running it again promotes (idempotent) instead of failing.
	out.Reset()
	if err := admin(ctx, []string{"create", "--email", "ROOT@example.com"}, strings.NewReader(""), &out, &errOut, env); err != nil || !strings.Contains(out.String(), "promoted") {
		t.Fatalf("second run: %v %s", err, out.String())
	}
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var roles []string
	var confirmed bool
	var hash string
	if err := pool.QueryRow(ctx, `SELECT roles, confirmed_at IS NOT NULL, password_hash FROM auth_account WHERE lower(email) = 'root@example.com'`).Scan(&roles, &confirmed, &hash); err != nil {
		t.Fatal(err)
	}
	if strings.Join(roles, ",") != "listener,admin" || !confirmed {
		t.Fatalf("roles %v confirmed %v", roles, confirmed)
	}
	if ok, _ := auth.CheckPassword("admin password 1", hash); !ok {
		t.Fatal("the stdin password does not log in")
	}
	if err := admin(ctx, []string{"delete"}, nil, &out, &errOut, env); !errors.Is(err, errUsage) {
		t.Fatalf("unknown subcommand: %v", err)
	}
}
