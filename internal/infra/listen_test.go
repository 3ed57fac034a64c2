package infra

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A port picked free can be bound by another process before the server binds
// it; that process even answers a dial. startListening must not take it for
// the server's, and must start the server again on a port of its own.
func TestStartListeningPicksAgainWhenAPickedPortIsTaken(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "redis.log")
	taken := 0
	launches := 0
	ports := []int{0}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := startListening(ctx, logPath, ports, func(ports []int) (*Process, error) {
		launches++
		if launches == 1 { // someone else binds the port first
			taken = ports[0]
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", taken))
			if err == nil {
				t.Cleanup(func() { ln.Close() })
			} // else yet another process was quicker still: taken all the same
		}
		return Start("redis", logPath, syscall.SIGTERM, nil, bin, "--bind", "127.0.0.1", "--port", itoa(ports[0]),
			"--dir", dir, "--save", "", "--appendonly", "no")
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Stop(5 * time.Second) })
	if launches != 2 {
		t.Fatalf("%d launches, want 2 (the first on the taken port)", launches)
	}
	if ports[0] == taken {
		t.Fatalf("server reported on the taken port %d", ports[0])
	}
	owned, err := listenersOf(proc.Pid(), ports)
	if err != nil || owned[ports[0]] != ownerSelf {
		t.Fatalf("server does not hold port %d: %v %v", ports[0], owned, err)
	}
	// And the answer on the new port is the server's: redis says PONG.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("server answered %q, %v", buf[:n], err)
	}
}

// A port the caller chose is not changed: if it is taken, that is the error.
func TestStartSMTPOnATakenPortFails(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := StartSMTP(context.Background(), SMTPOptions{Dir: t.TempDir(), SMTPPort: ln.Addr().(*net.TCPAddr).Port})
	if err == nil {
		_ = s.Stop(5 * time.Second)
		t.Fatal("StartSMTP succeeded on a port another process holds")
	}
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("StartSMTP on a taken port: %v, want ErrPortTaken", err)
	}
}

// freePorts never hands out one port twice in a call (two separate FreePort
// calls can).
func TestFreePortsAreDistinct(t *testing.T) {
	t.Parallel()
	for range 50 {
		ports, err := freePorts(3)
		if err != nil {
			t.Fatal(err)
		}
		if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
			t.Fatalf("freePorts(3) = %v", ports)
		}
	}
}
