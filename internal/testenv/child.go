package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Children. A test that proves an invariant survives kill -9 runs the
// component in another process: the test binary re-executed with an
// environment variable that makes it host the component instead of running
// tests. The child reads its configuration with ChildConfig (in TestMain),
// prints "READY" once it serves, then talks to the test in lines (stdout to
// the test, stdin from it). Kill sends SIGKILL to its whole process group —
// whatever it started (ffmpeg, a database session) sees the same crash — and
// reports whether the signal is what ended it.

// Ready is the line a child prints once it serves.
const Ready = "READY"

// Child is a re-executed test binary hosting a component.
type Child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// ChildConfig is what a child calls first (in TestMain, before
// testenv.Main): when env is set it decodes its value, the configuration
// StartChild handed over, into cfg and reports true; the process is then a
// child and must host its component instead of running tests.
func ChildConfig(env string, cfg any) (bool, error) {
	raw, ok := os.LookupEnv(env)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(raw), cfg); err != nil {
		return true, fmt.Errorf("child configuration %s: %w", env, err)
	}
	return true, nil
}

// StartChild re-executes the test binary with env set to cfg as JSON, in
// its own process group, killed if the test process dies, and waits until
// it prints READY (minutes: a child starting a database session or chDB
// under -race on a loaded machine is slow). The test fails if it does not;
// a started child is killed when the test ends unless Kill came first.
func StartChild(t testing.TB, env string, cfg any) *Child {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("child configuration: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+string(raw))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	c := &Child{cmd: cmd, in: in, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { _ = c.Kill() })
	if line, ok := c.next(3 * time.Minute); !ok || line != Ready {
		_ = c.Kill()
		t.Fatalf("child %s did not start: %q", env, line)
	}
	return c
}

// Pid is the child's process id (and its process group's).
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Next is the child's next line; the test fails if the child ends or says
// nothing within the bound.
func (c *Child) Next(t testing.TB, within time.Duration, what string) string {
	t.Helper()
	line, ok := c.next(within)
	if !ok {
		t.Fatalf("waiting for the child's %s: it ended or said nothing in %s", what, within)
	}
	return line
}

func (c *Child) next(within time.Duration) (string, bool) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		return line, ok
	case <-timer.C:
		return "", false
	}
}

// Ask writes one line to the child's stdin and returns its answer.
func (c *Child) Ask(t testing.TB, line string) string {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatalf("to the child: %v", err)
	}
	return c.Next(t, 3*time.Minute, "answer to "+line)
}

// Kill SIGKILLs the child's process group and reaps the child; the error
// says if something other than the signal ended it. Killing a child twice
// is harmless (the second reports the first's outcome).
func (c *Child) Kill() error {
	if c.cmd.ProcessState == nil {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		return errors.New("the child did not die by SIGKILL: " + c.cmd.ProcessState.String())
	}
	return nil
}
