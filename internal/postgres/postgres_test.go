package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func migration(up string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n")}
}

func tableExists(ctx context.Context, t *testing.T, pool *pgxpool.Pool, table string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// noSessions waits until nothing is connected to the database at url; if
// sessions remain, the test fails with why and how many there were.
func noSessions(t *testing.T, url, why string) {
	t.Helper()
	const within = 2 * time.Minute
	n := -1
	if !testenv.Poll(within, func() bool { n = postgrestest.Connections(t, url); return n == 0 }) {
		t.Fatalf("%s: %d sessions still connected after %s", why, n, within)
	}
}

// MigrateOwner applies the owner's migrations/ directory first, then the
// shared schemas in order, and stops at the first failure: nothing after a
// failed step runs, and a failed migration leaves no table behind.
func TestMigrateOwner(t *testing.T) {
	t.Parallel()
	good := fstest.MapFS{"migrations/00001_widget.sql": migration("CREATE TABLE widget (id int PRIMARY KEY);")}
	bad := fstest.MapFS{"migrations/00001_widget.sql": migration("CREATE TABLE widget (id int PRIMARY KEY); CREATE TABLE nope (;")}
	errShared := errors.New("shared schema down")
	cases := []struct {
		name       string
		fsys       fstest.MapFS
		failShared int // 1-based index of the shared step that fails; 0 none
		wantErr    string
		wantSteps  []string
		wantWidget bool
	}{
		{name: "own then shared", fsys: good, wantSteps: []string{"outbox:widget", "inbox:widget"}, wantWidget: true},
		{name: "own fails", fsys: bad, wantErr: "migrations of gadget", wantWidget: false},
		{name: "first shared fails", fsys: good, failShared: 1, wantErr: errShared.Error(), wantSteps: []string{"outbox:widget"}, wantWidget: true},
		{name: "no migrations directory", fsys: fstest.MapFS{"other/00001_x.sql": migration("SELECT 1;")}, wantErr: "migrations of gadget"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pool, err := Open(ctx, testenv.Postgres(t))
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var steps []string
			step := func(name string, i int) Migrator {
				return func(ctx context.Context, p *pgxpool.Pool) error {
					seen := "none"
					if tableExists(ctx, t, p, "widget") {
						seen = "widget"
					}
					steps = append(steps, name+":"+seen)
					if i == c.failShared {
						return errShared
					}
					return nil
				}
			}
			err = MigrateOwner(ctx, pool.Pool, "gadget", c.fsys, step("outbox", 1), step("inbox", 2))
			if c.wantErr == "" && err != nil {
				t.Fatalf("MigrateOwner: %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("MigrateOwner error %v, want one containing %q", err, c.wantErr)
			}
			if strings.Join(steps, ",") != strings.Join(c.wantSteps, ",") {
				t.Fatalf("shared steps ran %v, want %v", steps, c.wantSteps)
			}
			if got := tableExists(ctx, t, pool.Pool, "widget"); got != c.wantWidget {
				t.Fatalf("table widget exists: %v, want %v", got, c.wantWidget)
			}
			if c.wantErr == "" {
				// A second start finds the owner's migrations applied and
				// does not apply them again (which would fail on CREATE TABLE).
				if err := MigrateOwner(ctx, pool.Pool, "gadget", c.fsys); err != nil {
					t.Fatalf("second MigrateOwner: %v", err)
				}
				var version int64
				if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_gadget`).Scan(&version); err != nil || version != 1 {
					t.Fatalf("goose_gadget version %d (%v), want 1", version, err)
				}
			}
		})
	}
}

// OpenMigrated hands back a pool on which the migration ran; when the
// migration fails it releases the pool it opened, so nothing stays connected.
func TestOpenMigrated(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := testenv.Postgres(t)

	errMigrate := errors.New("migration refused")
	_, err := OpenMigrated(ctx, url, func(ctx context.Context, p *pgxpool.Pool) error {
		if _, err := p.Exec(ctx, `SELECT 1`); err != nil {
			t.Errorf("migrate got an unusable pool: %v", err)
		}
		return errMigrate
	})
	if !errors.Is(err, errMigrate) {
		t.Fatalf("OpenMigrated error %v, want %v", err, errMigrate)
	}
	noSessions(t, url, "a failed OpenMigrated still holds connections")

	pool, err := OpenMigrated(ctx, url, func(ctx context.Context, p *pgxpool.Pool) error {
		_, err := p.Exec(ctx, `CREATE TABLE sprocket (id int)`)
		return err
	})
	if err != nil {
		t.Fatalf("OpenMigrated: %v", err)
	}
	if !tableExists(ctx, t, pool.Pool, "sprocket") {
		t.Fatal("OpenMigrated returned before its migration created sprocket")
	}
	if ok, err := pool.Ready(ctx); !ok || err != nil {
		t.Fatalf("Ready on an open pool: %v, %v", ok, err)
	}
	pool.Close()
	noSessions(t, url, "the pool was closed, but its connections remain")

	if _, err := OpenMigrated(ctx, "", func(context.Context, *pgxpool.Pool) error {
		t.Error("migrate ran without a database")
		return nil
	}); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("OpenMigrated without a URL: %v, want an error naming DATABASE_URL", err)
	}
}

// A host's Pools hands every holder of one URL the same pool, keeps it open
// while anyone holds it, and closes it with the last holder (or when the host
// closes the set, whoever still holds it); each host has its own.
func TestPoolsShareAndRelease(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := testenv.Postgres(t)

	var host, other Pools
	a, err := host.Open(ctx, url)
	require.NoError(t, err)
	b, err := host.Open(ctx, url)
	require.NoError(t, err)
	require.Same(t, a.Pool, b.Pool, "two holders of one URL on one host got different pools")
	c, err := other.Open(ctx, url)
	require.NoError(t, err)
	require.NotSame(t, a.Pool, c.Pool, "two hosts share a pool: the registry is process-global")
	c.Close()
	require.Equal(t, 0, other.Held())

	a.Close()
	a.Close() // a second Close of one holder releases nothing more
	require.Equal(t, 1, host.Held(), "the pool closed while b still holds it")
	_, err = b.Exec(ctx, `SELECT 1`)
	require.NoError(t, err, "b's pool is unusable after a's Close")
	b.Close()
	require.Equal(t, 0, host.Held())
	noSessions(t, url, "every holder closed, but connections remain")

	d, err := host.Open(ctx, url)
	require.NoError(t, err)
	host.Close()
	_, err = d.Exec(ctx, `SELECT 1`)
	require.Error(t, err, "a pool outlived its host's Close")
	d.Close()
	_, err = host.Open(ctx, url)
	require.Error(t, err, "a closed host opened a pool")
	noSessions(t, url, "the host closed its pools, but connections remain")
}

// A function stopped or probed before it started has a nil pool: Close does
// nothing and Ready says not ready, with a reason.
func TestNilPool(t *testing.T) {
	t.Parallel()
	var p *Pool
	p.Close()
	ok, err := p.Ready(context.Background())
	if ok || err == nil {
		t.Fatalf("Ready on a nil pool: %v, %v; want false with an error", ok, err)
	}
}
