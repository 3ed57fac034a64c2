package infra

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// standInEnv makes the test binary act as `overture dev`'s dependency half
// (see runStandIn) instead of running the tests.
const standInEnv = "OVERTURE_INFRA_STAND_IN"

func TestMain(m *testing.M) {
	if spec := os.Getenv(standInEnv); spec != "" {
		os.Exit(runStandIn(spec))
	}
	os.Exit(m.Run())
}

// runStandIn starts PostgreSQL, Redis, S3 and SMTP on the fixed directory
// and ports given in spec ("dir pg redis s3 smtp mailui"), as `overture dev`
// does, keeps a database session busy, prints "ready" and waits to be killed.
// A failure is printed and is its exit status.
func runStandIn(spec string) int {
	f := strings.Fields(spec)
	port := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
	dir := f[0]
	ctx := context.Background()
	fail := func(err error) int { fmt.Println("error:", err); return 1 }
	pg, err := StartPostgres(ctx, PostgresOptions{Dir: filepath.Join(dir, "postgres"), Port: port(1)})
	if err != nil {
		return fail(err)
	}
	if _, err := StartRedis(ctx, RedisOptions{Dir: filepath.Join(dir, "redis"), Port: port(2), Persist: true}); err != nil {
		return fail(err)
	}
	if _, err := StartS3(ctx, S3Options{Dir: filepath.Join(dir, "s3"), Port: port(3), AccessKey: "restart", SecretKey: "restart-secret"}); err != nil {
		return fail(err)
	}
	if _, err := StartSMTP(ctx, SMTPOptions{Dir: filepath.Join(dir, "mailpit"), SMTPPort: port(4), HTTPPort: port(5)}); err != nil {
		return fail(err)
	}
	// A session mid-transaction when the kill comes: its backend outlives
	// the postmaster for a moment, as a live platform's do.
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return fail(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS t (n int); BEGIN; INSERT INTO t SELECT generate_series(1, 1000)`); err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	select {}
}

// TestRestartAtOnceAfterSIGKILL (issue 16): a supervisor restarts `overture
// dev` the moment it was SIGKILLed, and the restart must come up on its first
// try on the same directories and ports, again and again. The killed
// servers' processes are orphans then; whoever adopts them reaps them when it
// gets to it (PID 1 took 1–2 s), and PostgreSQL refuses a lock file whose PID
// still exists, a zombie's too. This test adopts them itself (a child
// subreaper) and reaps them only after the restart is up, so every restart
// meets the postmaster's zombie.
func TestRestartAtOnceAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills every dependency five times")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("become a subreaper: %v", err)
	}
	t.Cleanup(func() {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		reapOrphans(t, nil)
	})
	// Not t.TempDir: its parent is private to root, and PostgreSQL runs as
	// the postgres user.
	dir, err := os.MkdirTemp("", "overture-restart-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	spec := dir
	for _, p := range ports {
		spec += " " + strconv.Itoa(p)
	}

	const restarts = 5
	prev := startStandIn(t, spec, nil)
	for i := 1; i <= restarts; i++ {
		_ = prev.Process.Kill()
		_ = prev.Wait()
		postmaster := pidIn(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
		orphans := orphansOf(prev.Process.Pid)
		// Restart at once, with the killed servers still unreaped.
		next := startStandIn(t, spec, func() string {
			return fmt.Sprintf("restart %d of %d failed (postmaster %d zombie: %v)", i, restarts, postmaster, isZombie(postmaster))
		})
		if i == 1 && !isZombie(postmaster) {
			t.Errorf("the killed postmaster %d was not a zombie during the restart: the test did not reproduce the case", postmaster)
		}
		reapOrphans(t, orphans)
		prev = next
	}
	_ = prev.Process.Kill()
	_ = prev.Wait()
}

// startStandIn runs the stand-in and waits until it is ready or has exited;
// an exit fails the test with what it printed.
func startStandIn(t *testing.T, spec string, what func() string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), standInEnv+"="+spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			go func() { _, _ = bufio.NewReader(out).WriteTo(os.Stdout) }()
			return cmd
		}
		printed = append(printed, sc.Text())
	}
	_ = cmd.Wait()
	msg := "the first start failed"
	if what != nil {
		msg = what()
	}
	t.Fatalf("%s: %s\n%s", msg, cmd.ProcessState, strings.Join(printed, "\n"))
	return nil
}

// orphansOf lists this process's children other than standIn: with no
// other command of this test running, those are the servers it adopted when
// a stand-in died (the kernel reparents them as the stand-in exits, before
// its Wait returns). The test runs alone: the package's other tests are
// parallel and wait for it.
func orphansOf(standIn int) []int {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == standIn {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:]) // state ppid ...
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			out = append(out, pid)
		}
	}
	return out
}

// reapOrphans collects the exit of each adopted process (all of them when
// pids is nil), waiting for those still running: a server's processes end
// soon after it was killed.
func reapOrphans(t *testing.T, pids []int) {
	if pids == nil {
		pids = orphansOf(-1)
	}
	for _, pid := range pids {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil && err != unix.ECHILD {
			t.Logf("reap %d: %v", pid, err)
		}
	}
}

// pidIn reads the PID on the first line of a PostgreSQL lock file (0 when
// there is none).
func pidIn(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// TestSecondServerOnALiveDataDirectoryNamesIt: starting a server on a data
// directory a live one uses fails with ErrDataDirInUse naming that server's
// process, not with a "port taken" or a log to decipher.
func TestSecondServerOnALiveDataDirectoryNamesIt(t *testing.T) {
	t.Parallel()
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
	defer pg.Stop(30 * time.Second)
	_, err = StartPostgres(ctx, PostgresOptions{Dir: dir, Fast: true})
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), strconv.Itoa(pg.Pid())) {
		t.Fatalf("want ErrDataDirInUse naming process %d, got %v", pg.Pid(), err)
	}
	if errors.Is(err, ErrPortTaken) {
		t.Fatalf("misdiagnosed as a taken port: %v", err)
	}
}
