// Package infra starts the real dependencies Overture needs on one machine:
// PostgreSQL (wal_level=logical), Redis, an S3 server, an SMTP sink and
// OpenSearch, each as a child process on loopback with a private data
// directory.
//
// `overture dev` uses it to bring up the embedded platform under ./.data, and
// the test harness (internal/testenv) to give each test package its own
// servers. Children are started with a parent-death signal, so a killed parent
// never leaves servers behind.
package infra

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Process is a running dependency.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
	stop syscall.Signal
}

// Start runs name with args as a child whose output goes to logPath. The child
// gets SIGKILL if this process dies. stopSig is what Stop sends first.
func Start(name, logPath string, stopSig syscall.Signal, cred *syscall.Credential, bin string, args ...string) (*Process, error) {
	return spawn(name, logPath, stopSig, cred, nil, bin, args...)
}

// spawn is Start with extra environment variables for the child; env nil
// leaves the child this process's environment.
func spawn(name, logPath string, stopSig syscall.Signal, cred *syscall.Credential, env []string, bin string, args ...string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("%s: log directory: %w", name, err)
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), log: lf, stop: stopSig}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop asks the process to exit and waits up to timeout, then kills its group.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(p.stop)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s: killed after %s", p.Name, timeout)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Group stops a set of processes in reverse start order.
type Group struct {
	mu    sync.Mutex
	procs []*Process
	Log   *slog.Logger
}

// Add records p for Stop.
func (g *Group) Add(p *Process) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.procs = append(g.procs, p)
}

// Stop stops every process, last started first.
func (g *Group) Stop() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for i := len(g.procs) - 1; i >= 0; i-- {
		if err := g.procs[i].Stop(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	g.procs = nil
	return errors.Join(errs...)
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }
