package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/postgres"
)

const adminUsage = `usage:
  overture admin create --email E [--password-stdin]

Creates a confirmed account with the admin and listener roles in DATABASE_URL,
or promotes an existing account to admin. The password is read from the first
line of standard input with --password-stdin (never from the command line,
where it would land in shell history and the process list); it is required
for a new account.

environment:
  DATABASE_URL   PostgreSQL of the auth service (default ` + defaultDatabaseURL + `)
`

// runAdmin is `overture admin`.
func runAdmin(ctx context.Context, args []string) error {
	return admin(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

func admin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, adminUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the admin's email address")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, adminUsage)
		return errUsage
	}
	var password string
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
		if password == "" {
			return errors.New("--password-stdin given but standard input is empty")
		}
	}
	dbURL := databaseURL(getenv)
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := auth.Migrate(ctx, pool); err != nil {
		return err
	}
	id, created, err := auth.CreateAdmin(ctx, pool.Pool, *email, password, auth.DefaultArgon2)
	if err != nil {
		return fmt.Errorf("admin create: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "created admin %s (%s)\n", id, *email)
	} else {
		fmt.Fprintf(stdout, "promoted %s (%s) to admin\n", id, *email)
	}
	return nil
}
