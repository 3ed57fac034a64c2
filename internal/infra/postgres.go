package infra

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Postgres is a private PostgreSQL server.
type Postgres struct {
	*Process
	Port int
	Dir  string
}

// URL returns a connection URL for database db as the superuser "overture".
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://overture@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// PostgresBinDir finds the newest installed PostgreSQL server binaries.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server found under /usr/lib/postgresql (install postgresql, or set PG_BINDIR)")
}

// serverCredential returns the user PostgreSQL must run as: it refuses root, so
// as root we run it as the "postgres" system user (or "nobody").
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and neither a postgres nor a nobody user exists")
}

func chownTree(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}

// PostgresOptions configure StartPostgres.
type PostgresOptions struct {
	Dir  string // data lives in Dir/data, the socket and log in Dir
	Port int    // 0 picks a free port
	// Fast turns off fsync for throwaway test servers.
	Fast bool
	// Settings are extra -c name=value server settings.
	Settings map[string]string
}

// StartPostgres initialises Dir on first use (a second start reuses the data)
// and starts a server with wal_level=logical on 127.0.0.1. The superuser is
// "overture", trusted on loopback.
func StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	data := filepath.Join(o.Dir, "data")
	logPath := filepath.Join(o.Dir, "postgres.log")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := initdb(bin, data, cred, logPath); err != nil {
			return nil, err
		}
	}
	sock := filepath.Join(o.Dir, "sock")
	if err := os.MkdirAll(sock, 0o755); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := chownTree(o.Dir, cred); err != nil {
		return nil, fmt.Errorf("postgres: chown data: %w", err)
	}
	if err := clearStaleLocks(ctx, data, sock); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": sock,
		"wal_level":               "logical",
		"max_wal_senders":         "64",
		"max_replication_slots":   "64",
		"max_connections":         "300",
		"shared_buffers":          "128MB",
		"logging_collector":       "off",
	}
	if o.Fast {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ports := []int{o.Port}
	proc, err := startListening(wctx, logPath, ports, func(ports []int) (*Process, error) {
		settings["port"] = itoa(ports[0])
		args := []string{"-D", data}
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			args = append(args, "-c", k+"="+settings[k])
		}
		return Start("postgres", logPath, syscall.SIGINT, cred, filepath.Join(bin, "postgres"), args...)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pg := &Postgres{Process: proc, Port: ports[0], Dir: o.Dir}
	if err := waitPostgres(wctx, pg, bin); err != nil {
		_ = proc.Stop(5 * time.Second)
		return nil, fmt.Errorf("%w\n%s", err, tail(logPath, 2000))
	}
	return pg, nil
}

// ErrDataDirInUse means a live PostgreSQL server still uses the data
// directory (or its socket): another `overture dev`, or one not yet stopped.
var ErrDataDirInUse = errors.New("PostgreSQL data directory in use")

// clearStaleLocks removes the lock files a killed server left behind: the
// data directory's postmaster.pid and the socket directory's
// .s.PGSQL.<port>.lock. PostgreSQL refuses to start while the PID written in
// one exists, and a SIGKILLed postmaster stays a zombie until whoever
// adopted it reaps it (1–2 s after `make run` was killed), so a restart
// issued at once failed — three times in fourteen as "port taken", because
// the refused server had bound its TCP port before it read the socket lock.
//
// A lock whose PID is a live (not zombie) postgres is kept, and the error
// names that process. The killed postmaster's backends outlive it briefly
// (they exit when they notice its death); the new server would refuse the
// shared memory they still hold, so this waits until they are gone.
func clearStaleLocks(ctx context.Context, data, sock string) error {
	locks, _ := filepath.Glob(filepath.Join(sock, ".s.PGSQL.*.lock"))
	for _, p := range append(locks, filepath.Join(data, "postmaster.pid")) {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err == nil && pid > 0 && livePostgres(pid) {
			return fmt.Errorf("%w: PostgreSQL process %d holds %s (is another `overture dev` running? stop it first)", ErrDataDirInUse, pid, p)
		}
		_ = os.Remove(p)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		left := processesIn(data)
		if len(left) == 0 {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%w: processes %v of a killed server still run in %s after 30 s", ErrDataDirInUse, left, data)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// processesIn lists the live postgres processes whose working directory is
// data: a server's postmaster and backends all run there.
func processesIn(data string) []int {
	want, err := filepath.EvalSymlinks(data)
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == want && livePostgres(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// livePostgres reports whether pid is a running (not zombie) postgres.
func livePostgres(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	if state := stat[i+2]; state == 'Z' || state == 'X' {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "postgres"
}

func initdb(bin, data string, cred *syscall.Credential, logPath string) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := chownTree(filepath.Dir(data), cred); err != nil {
		return fmt.Errorf("postgres: chown: %w", err)
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "overture", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		// C.UTF-8 may be missing on minimal systems; fall back to C.
		cmd = exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "overture", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
		out2, err2 := cmd.CombinedOutput()
		if err2 != nil {
			return fmt.Errorf("postgres: initdb: %w\n%s\n%s", err2, out, out2)
		}
	}
	_ = os.WriteFile(logPath, nil, 0o644)
	return nil
}

func waitPostgres(ctx context.Context, pg *Postgres, bin string) error {
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_isready"), "-h", "127.0.0.1", "-p", itoa(pg.Port), "-U", "overture", "-d", "postgres", "-t", "1")
		if cmd.Run() == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres did not become ready on port %d: %w", pg.Port, ctx.Err())
		case <-pg.Done():
			return fmt.Errorf("postgres exited during start-up (port %d)", pg.Port)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
