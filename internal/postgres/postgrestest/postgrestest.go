// Package postgrestest opens pools on fresh test databases with an owner's
// tables already in place: the first lines of almost every database test,
// kept in one place so each test shows only what it checks.
//
// Packages that use it run their tests under testenv.Main.
package postgrestest

import (
	"context"
	"io"
	"net"
	neturl "net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/testenv"
)

// Migration creates an owner's tables, like inbox.Migrate or payment.Migrate.
type Migration func(ctx context.Context, pool *pgxpool.Pool) error

// Pool opens a pool on a fresh test database, runs migrations in order and
// closes the pool when the test ends.
func Pool(t testing.TB, migrations ...Migration) *pgxpool.Pool {
	t.Helper()
	pool := Open(t, testenv.Postgres(t))
	for _, m := range migrations {
		if err := m(context.Background(), pool); err != nil {
			t.Fatalf("migrate the test database: %v", err)
		}
	}
	return pool
}

// Open opens a pool on the database at url and closes it when the test ends.
func Open(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("open a pool on the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Connections counts the sessions other than its own that are connected to
// the database at url: what a component still holds after it stopped or
// failed to start. Closed sessions leave the count a moment after their
// client hangs up, so assert on it with require.Eventually.
func Connections(t testing.TB, url string) int {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse the test database URL: %v", err)
	}
	db := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect to count sessions: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db).Scan(&n); err != nil {
		t.Fatalf("count sessions: %v", err)
	}
	return n
}

// Outage is a TCP proxy in front of a test PostgreSQL server that the test
// can take down and bring back, as a network partition or a restarted
// server would: Down closes every connection through it and refuses new
// ones; Up accepts again on the same address.
type Outage struct {
	URL string // url, pointed at the proxy

	target string
	mu     sync.Mutex
	ln     net.Listener
	addr   string
	conns  map[net.Conn]struct{}
}

// NewOutage starts a proxy for the database at url, closed when the test
// ends.
func NewOutage(t testing.TB, url string) *Outage {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse the test database URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	o := &Outage{target: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	host, port, _ := net.SplitHostPort(o.addr)
	u, err := neturl.Parse(url)
	if err != nil || u.Host == "" {
		t.Fatalf("the test database URL %q is not a URL with a host", url)
	}
	u.Host = net.JoinHostPort(host, port)
	q := u.Query()
	q.Del("host")
	u.RawQuery = q.Encode()
	o.URL = u.String()
	go o.accept(ln)
	t.Cleanup(o.Down)
	return o
}

func (o *Outage) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", o.target)
		if err != nil {
			c.Close()
			continue
		}
		o.mu.Lock()
		if o.ln != ln {
			o.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		o.conns[c], o.conns[s] = struct{}{}, struct{}{}
		o.mu.Unlock()
		go o.pipe(c, s)
		go o.pipe(s, c)
	}
}

func (o *Outage) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	o.mu.Lock()
	delete(o.conns, dst)
	delete(o.conns, src)
	o.mu.Unlock()
}

// Down closes the proxy's listener and every connection through it.
func (o *Outage) Down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		o.ln.Close()
		o.ln = nil
	}
	for c := range o.conns {
		c.Close()
		delete(o.conns, c)
	}
}

// Up accepts connections again on the proxy's address.
func (o *Outage) Up(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatalf("proxy listen again on %s: %v", o.addr, err)
	}
	o.ln = ln
	go o.accept(ln)
}
