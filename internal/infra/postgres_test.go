package infra

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A restart issued the moment after a crash comes up (issue 16): a
// SIGKILLed postmaster stays a zombie until its parent reaps it, and
// PostgreSQL refuses to start while the PID in postmaster.pid or in the
// socket directory's .s.PGSQL.<port>.lock exists — a zombie's does. The
// test leaves both lock files naming a zombie and starts again on the same
// directory and port.
func TestRestartOverAZombiesLockFiles(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: its parent is private to root, and the server runs as
	// the postgres user.
	dir, err := os.MkdirTemp("", "overture-infra-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pg, err := StartPostgres(ctx, PostgresOptions{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	port := pg.Port
	if err := pg.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The zombie runs as the server's user, as a killed postmaster did
	// (PostgreSQL takes a PID it may not signal for another user's process).
	cred, err := serverCredential()
	if err != nil {
		t.Fatal(err)
	}
	zombie := exec.Command("true")
	zombie.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zombie.Wait() })
	pid := zombie.Process.Pid
	// Wait for it to exit without reaping it (WNOWAIT): it stays a zombie.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("wait for process %d to exit: %v", pid, err)
	}
	if !isZombie(pid) {
		t.Fatalf("process %d did not become a zombie", pid)
	}
	lock := fmt.Sprintf("%d\n%s\n", pid, filepath.Join(dir, "data"))
	for _, p := range []string{filepath.Join(dir, "data", "postmaster.pid"), filepath.Join(dir, "sock", fmt.Sprintf(".s.PGSQL.%d.lock", port))} {
		if err := os.WriteFile(p, []byte(lock), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	pg, err = StartPostgres(ctx, PostgresOptions{Dir: dir, Port: port, Fast: true})
	if err != nil {
		t.Fatalf("restart over a zombie's lock files: %v", err)
	}
	defer pg.Stop(30 * time.Second)
	if pg.Port != port {
		t.Fatalf("restarted on port %d, not its own %d: the lock file was taken for another process's port", pg.Port, port)
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}
