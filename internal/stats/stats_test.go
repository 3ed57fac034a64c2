package stats_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPostgres(t *testing.T) {
	statstest.Run(t, func(t *testing.T) stats.Store { return stats.NewPG(postgrestest.Pool(t, stats.Migrate)) })
}

func TestClickHouse(t *testing.T) {
	statstest.Run(t, func(t *testing.T) stats.Store { return statstest.OpenCH(t) })
}

// The process has one chDB session: a second data directory is refused,
// the same one is shared.
func TestEmbeddedIsOnePerProcess(t *testing.T) {
	x, dir := statstest.Embedded(t)
	again, err := stats.Embedded(stats.CHDBLibPath(), dir)
	require.NoError(t, err)
	require.Equal(t, x, again)
	_, err = stats.Embedded(stats.CHDBLibPath(), filepath.Join(t.TempDir(), "other"))
	require.ErrorContains(t, err, "one session per process")
}
