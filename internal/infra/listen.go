package infra

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrPortTaken means another process holds a port a server was to listen on.
var ErrPortTaken = errors.New("port taken by another process")

// listenAttempts bounds how often startListening picks new ports.
const listenAttempts = 5

// startListening starts a server on loopback ports and returns once the
// server itself holds every one of them.
//
// A zero entry of ports is picked free. A picked port was only free a moment
// ago: another process may bind it before the server does. Then the server
// either fails to bind and exits, or, worse, a dial to the port reaches the
// other process and looks like success. So readiness is not "the port
// answers" but "this process owns the listening socket" (read from /proc),
// and when a picked port was taken the server is stopped and started again on
// new ports. Ports given by the caller are not changed: a taken one is an
// error wrapping ErrPortTaken. On success ports holds the ports in use.
//
// launch starts the server on ports; its output goes to logPath, where a
// bind failure is recognised.
func startListening(ctx context.Context, logPath string, ports []int, launch func(ports []int) (*Process, error)) (*Process, error) {
	picked := make([]int, 0, len(ports))
	for i, p := range ports {
		if p == 0 {
			picked = append(picked, i)
		}
	}
	for attempt := 1; ; attempt++ {
		free, err := freePorts(len(picked))
		if err != nil {
			return nil, err
		}
		for j, i := range picked {
			ports[i] = free[j]
		}
		var logSize int64
		if st, err := os.Stat(logPath); err == nil {
			logSize = st.Size()
		}
		proc, err := launch(ports)
		if err != nil {
			return nil, err
		}
		err = waitListening(ctx, proc, ports)
		if err == nil {
			return proc, nil
		}
		_ = proc.Stop(2 * time.Second)
		if !errors.Is(err, ErrPortTaken) && strings.Contains(strings.ToLower(tailFrom(logPath, logSize)), "address already in use") {
			err = fmt.Errorf("%w: %w", ErrPortTaken, err)
		}
		if errors.Is(err, ErrPortTaken) && len(picked) > 0 && attempt < listenAttempts && ctx.Err() == nil {
			continue
		}
		return nil, fmt.Errorf("%w\n%s", err, tailFrom(logPath, logSize))
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// The listeners are all open at once, so no two of the ports are the same.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitListening waits until p holds a listening TCP socket on every port. It
// fails with ErrPortTaken when another process listens on one of them, and
// when p exits or ctx ends.
//
// A socket that looks like another process's may be p's own while p exits:
// its descriptors are gone before its socket leaves the kernel's table (a
// server that bound its port and then refused to start — PostgreSQL over a
// lock file — looked exactly so, and was reported as "port taken"). So the
// verdict waits for p to settle: when p exits meanwhile, its exit (and its
// log) is the error.
func waitListening(ctx context.Context, p *Process, ports []int) error {
	for {
		owned, err := listenersOf(p.Pid(), ports)
		if err != nil {
			return err
		}
		missing, taken := 0, 0
		for _, port := range ports {
			switch owned[port] {
			case ownerOther:
				taken = port
			case ownerNone:
				missing++
			}
		}
		if taken != 0 {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before listening on %v: %v (see its log)", p.Name, ports, p.err)
			case <-time.After(500 * time.Millisecond):
			}
			if owned, err := listenersOf(p.Pid(), ports); err == nil && owned[taken] == ownerOther {
				return fmt.Errorf("%s: 127.0.0.1:%d: %w", p.Name, taken, ErrPortTaken)
			}
			continue
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not listening on %v: %w", p.Name, ports, ctx.Err())
		case <-p.done:
			return fmt.Errorf("%s exited before listening on %v: %v (see its log)", p.Name, ports, p.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type owner int

const (
	ownerNone  owner = iota // nobody listens on the port
	ownerSelf               // the process does
	ownerOther              // another process does
)

// listenersOf tells, for each port, who holds a TCP socket listening on it:
// the process pid, another one, or nobody. It reads the kernel's socket
// tables and pid's file descriptors (Linux /proc).
func listenersOf(pid int, ports []int) (map[int]owner, error) {
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	inodes := map[string]int{} // listening socket inode -> port
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && table == "/proc/net/tcp6" {
				continue // no IPv6
			}
			return nil, fmt.Errorf("read listening sockets: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseUint(hexPort, 16, 16)
			if err == nil && want[int(port)] {
				inodes[fields[9]] = int(port)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read listening sockets: %w", err)
		}
	}
	out := map[int]owner{}
	for _, port := range inodes {
		out[port] = ownerOther
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return out, nil // exited; the caller sees it
		}
		return nil, fmt.Errorf("read the descriptors of %d: %w", pid, err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fdDir + "/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			if port, ok := inodes[strings.TrimSuffix(inode, "]")]; ok {
				out[port] = ownerSelf
			}
		}
	}
	return out, nil
}

// tailFrom returns what was written to path after offset, at most its last
// 2000 bytes.
func tailFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size()-offset > 2000 {
		offset = st.Size() - 2000
	}
	buf := make([]byte, max(st.Size()-offset, 0))
	n, _ := f.ReadAt(buf, offset)
	return string(buf[:n])
}
