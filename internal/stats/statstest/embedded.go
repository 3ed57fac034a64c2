package statstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
)

var (
	chdbOnce sync.Once
	chdbDir  string
	chdbErr  error
	chdbSeq  atomic.Int64
)

// Embedded is the test process's one chDB session (the library at
// CHDB_LIB_PATH, else stats.CHDBLibPath()), its data in a temporary
// directory; it is closed and removed when the package's tests end (the
// package's TestMain must be testenv.Main). A missing library fails the
// test with what to run — CI runs `make deps` first; it is never skipped.
func Embedded(t testing.TB) (stats.Executor, string) {
	t.Helper()
	chdbOnce.Do(func() {
		chdbDir, chdbErr = os.MkdirTemp("", "overture-chdb-")
		if chdbErr == nil {
			testenv.AtExit(func() {
				stats.CloseEmbedded()
				_ = os.RemoveAll(chdbDir)
			})
		}
	})
	require.NoError(t, chdbErr, "chDB data directory")
	x, err := stats.Embedded(Lib(), chdbDir)
	if errors.Is(err, stats.ErrNoCHDB) {
		t.Fatalf("%v — the ClickHouse backend's tests need chDB (CI runs make deps first)", err)
	}
	require.NoError(t, err)
	return x, chdbDir
}

// Lib is the chDB library the tests load: CHDB_LIB_PATH, else
// stats.CHDBLibPath() (where `make deps` puts it).
func Lib() string {
	if lib := os.Getenv("CHDB_LIB_PATH"); lib != "" {
		return lib
	}
	return stats.CHDBLibPath()
}

// Config is the settings that make stats.Open open the ClickHouse backend
// on the test process's chDB session, in a new database dropped when the
// test ends.
func Config(t testing.TB) map[string]string {
	t.Helper()
	x, dir := Embedded(t)
	db := Database()
	t.Cleanup(func() { _, _ = x.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC") })
	return map[string]string{stats.KeyBackend: stats.ClickHouse, stats.KeyCHDBLibPath: Lib(),
		stats.KeyCHDBDataDir: dir, stats.KeyClickHouseDatabase: db}
}

// Database is a new database name for a test in the shared session.
func Database() string { return fmt.Sprintf("t%d_%d", os.Getpid(), chdbSeq.Add(1)) }

// OpenCH is a ClickHouse store on the embedded engine in a database of its
// own, dropped when the test ends.
func OpenCH(t testing.TB) *stats.CH {
	t.Helper()
	x, _ := Embedded(t)
	db := Database()
	s, err := stats.NewCH(context.Background(), x, db)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = x.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC") })
	return s
}
