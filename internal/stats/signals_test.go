package stats_test

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/stats/statstest"
)

// With the embedded engine open, the process has ClickHouse's threads
// (merges, pools), most blocking no signal: the signals a platform
// process gets (children exiting, Ctrl-C, a notified signal) may land on
// them and must still reach Go, the process carrying on; and a Go nil
// dereference must still be a recoverable panic (libchdb's own handlers
// are kept off, Go's restored: chdb.go).
func TestSignalsWithTheEngineOpen(t *testing.T) {
	ctx := context.Background()
	s := statstest.OpenCH(t)
	_, err := s.Write(ctx, statstest.Fixture())
	require.NoError(t, err)
	got := make(chan os.Signal, 1024)
	signal.Notify(got, syscall.SIGUSR1, syscall.SIGINT)
	defer signal.Stop(got)
	for i := range 200 {
		require.NoError(t, exec.Command("true").Run()) // a SIGCHLD each
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
		if i%40 == 0 {
			recent, err := s.Recent(ctx, "ana", 3)
			require.NoError(t, err)
			require.Len(t, recent, 3)
		}
	}
	require.NotEmpty(t, got, "the signals reached Go")
	require.Panics(t, func() {
		var p *int
		_ = *p
	})
}
