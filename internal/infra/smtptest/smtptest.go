// Package smtptest gives tests an SMTP sink (mailpit) that can go down and
// come back at the same address, for tests of what a mail outage does.
//
// Restarting mailpit on its old ports would race: while it is down any
// process may bind them. So clients never see mailpit's own ports: the sink
// holds two loopback listeners of its own for the whole test (bound to :0, so
// nothing can take them) and hands every connection to the mailpit that is
// running, or, during an outage, resets it at once, as a closed port would
// refuse it. Each mailpit start picks its ports afresh (infra.StartSMTP) and
// keeps the messages of the one before.
//
// Packages that use it run their tests under testenv.Main.
package smtptest

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/testenv"
)

// Sink is a mailpit behind addresses that outlive it.
type Sink struct {
	dir        string
	smtp, http net.Listener

	mu      sync.Mutex
	mailpit *infra.SMTP // nil while down
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// Start starts a sink, up, that stops when the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	dir, err := os.MkdirTemp(testenv.Dir(), "smtp-sink-")
	if err != nil {
		t.Fatalf("sink dir: %v", err)
	}
	s := &Sink{dir: dir, conns: map[net.Conn]struct{}{}}
	if s.smtp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatalf("sink SMTP listener: %v", err)
	}
	if s.http, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		s.smtp.Close()
		t.Fatalf("sink HTTP listener: %v", err)
	}
	t.Cleanup(s.close)
	s.wg.Add(2)
	go s.serve(s.smtp, func(m *infra.SMTP) int { return m.SMTPPort })
	go s.serve(s.http, func(m *infra.SMTP) int { return m.HTTPPort })
	s.Up(t)
	return s
}

// URL is where mail is sent: smtp://127.0.0.1:PORT, no auth, no TLS.
func (s *Sink) URL() string { return "smtp://" + s.smtp.Addr().String() }

// APIURL is mailpit's HTTP API base (GET /api/v1/messages, …).
func (s *Sink) APIURL() string { return "http://" + s.http.Addr().String() }

// Down stops mailpit: connections in progress are cut and new ones reset
// until Up. The messages stay on disk.
func (s *Sink) Down(t testing.TB) {
	t.Helper()
	m := s.swap(nil)
	if m == nil {
		return
	}
	if err := m.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop mailpit: %v", err)
	}
	s.cut()
}

// Up starts mailpit on the sink's data, with every message it held before.
func (s *Sink) Up(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := infra.StartSMTP(ctx, infra.SMTPOptions{Dir: s.dir})
	if err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	if old := s.swap(m); old != nil {
		_ = old.Stop(5 * time.Second)
	}
}

// swap makes m the running mailpit (nil: down) and returns the one before.
func (s *Sink) swap(m *infra.SMTP) *infra.SMTP {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.mailpit
	s.mailpit = m
	return old
}

// serve hands each connection on ln to mailpit's port (chosen by port) or
// resets it while mailpit is down.
func (s *Sink) serve(ln net.Listener, port func(*infra.SMTP) int) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		m := s.mailpit
		s.mu.Unlock()
		var up net.Conn
		if m != nil {
			up, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port(m))))
		}
		if m == nil || err != nil {
			reset(c)
			continue
		}
		if !s.track(c, up) {
			reset(c)
			up.Close()
			continue
		}
		s.wg.Add(2)
		go s.pipe(c, up)
		go s.pipe(up, c)
	}
}

// pipe copies from src to dst; when either side ends, both are closed.
func (s *Sink) pipe(dst, src net.Conn) {
	defer s.wg.Done()
	_, _ = io.Copy(dst, src)
	s.mu.Lock()
	delete(s.conns, dst)
	delete(s.conns, src)
	s.mu.Unlock()
	dst.Close()
	src.Close()
}

// track records a proxied pair so Down and the end of the test can cut it;
// false if the sink went down meanwhile.
func (s *Sink) track(c, up net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mailpit == nil {
		return false
	}
	s.conns[c], s.conns[up] = struct{}{}, struct{}{}
	return true
}

// cut closes every proxied connection.
func (s *Sink) cut() {
	s.mu.Lock()
	conns := s.conns
	s.conns = map[net.Conn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

func (s *Sink) close() {
	s.smtp.Close()
	s.http.Close()
	if m := s.swap(nil); m != nil {
		_ = m.Stop(5 * time.Second)
	}
	s.cut()
	s.wg.Wait()
}

// reset closes c with a TCP reset, what a client connecting to a closed port
// gets (as ECONNREFUSED); a dial that succeeded is the one difference.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
