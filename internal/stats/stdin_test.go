package stats_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/stats/statstest"
)

// The embedded engine is clickhouse-local: an INSERT whose rows follow
// FORMAT in the statement looks at the process's stdin for more data. A
// process whose stdin holds input (a terminal someone typed into, a pipe
// from a parent) must still write its listens, and leave stdin alone.
func TestWriteIgnoresStdin(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	_, err = w.WriteString("not a listen\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	saved, err := syscall.Dup(0)
	require.NoError(t, err)
	require.NoError(t, syscall.Dup2(int(r.Fd()), 0))
	t.Cleanup(func() { _ = syscall.Dup2(saved, 0); _ = syscall.Close(saved) })

	s := statstest.OpenCH(t)
	n, err := s.Write(context.Background(), statstest.Fixture())
	require.NoError(t, err)
	require.Equal(t, 13, n)
	got, err := s.Recent(context.Background(), "ana", 100)
	require.NoError(t, err)
	require.Len(t, got, 8)
	left := make([]byte, 64)
	k, _ := syscall.Read(0, left)
	require.Equal(t, "not a listen\n", string(left[:k]), "stdin untouched")
}
