package platform

import (
	"os"
	"path/filepath"
	"testing"
)

// PostgreSQL's relocated data (a checkout its user cannot reach) lives and
// dies with the data directory: the same data directory finds the same
// database again; a removed one (a fresh start) gets a fresh database, and
// the old one is removed, instead of a database whose signing keys were
// encrypted with the key kept in the removed directory.
func TestRelocatedPostgresFollowsTheDataDirectory(t *testing.T) {
	t.Parallel()
	base, dataDir := t.TempDir(), filepath.Join(t.TempDir(), ".data")
	first, err := relocatedPostgres(base, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(first, 0o755); err != nil {
		t.Fatal(err)
	}
	again, err := relocatedPostgres(base, dataDir)
	if err != nil || again != first {
		t.Fatalf("second start: %q, %v; want %q", again, err, first)
	}
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	fresh, err := relocatedPostgres(base, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == first {
		t.Fatal("a fresh data directory reuses the old database")
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Fatalf("the old database is still there: %v", err)
	}
}
