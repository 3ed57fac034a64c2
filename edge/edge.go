// Package edge is one CDN point of presence (POP): an HTTP cache in front of
// the S3 origin that serves track renditions (HLS playlists and segments,
// whole files) to listeners.
//
// Why it exists instead of a bought CDN: Overture's audio is a small set of
// immutable, heavily repeated objects, which a simple two-tier cache serves
// well. Every miss is coalesced (one origin fetch per object slice per POP, no
// matter how many listeners wait), objects are cached in 1 MiB slices so a seek
// into a long file never pulls the whole file, the memory tier admits by
// frequency (W-TinyLFU) so a one-off scan cannot flush the hits, and the disk
// tier keeps the long tail across restarts. Access is by signed URL (package
// urlsign), minted by the steering service that chose this POP.
package edge

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// Defaults.
const (
	DefaultSliceSize   = 1 << 20
	DefaultMemoryBytes = 256 << 20
	// DefaultMemoryBytesWithDisk is the memory tier's budget beside a disk
	// tier, where it keeps only playlists (media slices are served from
	// their files through the page cache).
	DefaultMemoryBytesWithDisk = 32 << 20
	DefaultPlaylistTTL         = 2 * time.Second
	// MediaPrefix is where objects are served: /media/<s3 key>?t=<token>.
	MediaPrefix = "/media/"
	// AdminSecretHeader carries the shared admin secret on purge and warm.
	AdminSecretHeader = "X-Admin-Secret"
)

// Config configures one POP.
type Config struct {
	Name   string // e.g. "pop-eu-west-1"
	Region string // e.g. "eu-west"
	Addr   string // listen address for Start, e.g. 127.0.0.1:9101

	S3Endpoint, S3AccessKey, S3SecretKey string
	S3Region                             string // default us-east-1
	Bucket                               string // default "media"

	MemoryBytes int64  // memory tier budget (default 256 MiB; 32 MiB beside a disk tier, which then keeps the media)
	DiskDir     string // disk tier directory; "" disables the disk tier
	DiskBytes   int64  // disk tier budget (default 4 GiB when DiskDir is set)
	SliceSize   int64  // default 1 MiB

	// SigningKeys are the active signed-URL keys (kid → secret). When empty the
	// POP serves without signatures (only for local experiments).
	SigningKeys urlsign.Keys
	// AdminSecret authorises purge and warm via the X-Admin-Secret header; an
	// admin access token (Verifier, role admin) works too.
	AdminSecret string
	// MetricsToken is the bearer token /metrics and /stats require
	// (METRICS_TOKEN). Without it /metrics answers nobody; /stats stays open
	// only until steering sends the token (see docs/security.md).
	MetricsToken string
	// TrustedProxies may name the client in X-Forwarded-For / Forwarded
	// (TRUSTED_PROXIES; server.Guard). Signed URLs bound to an address
	// compare it with that client address.
	TrustedProxies []netip.Prefix
	// Verifier checks listeners' access tokens for premium renditions.
	Verifier *token.Verifier
	// RedisURL, when set, is read for auth:entitlement:<user> so a premium
	// claim revoked after the token was issued is not trusted.
	RedisURL string
	// PremiumMarkers: a key containing any of these needs the premium
	// entitlement even if the signed URL does not say so. Default "/premium/".
	PremiumMarkers []string
	// RevocationKeep is how long a revocation (POST /admin/revoke) is kept:
	// longer than any signed URL's lifetime. Default 24 h.
	RevocationKeep time.Duration
	// PlaylistTTL is how long a playlist is fresh before revalidation.
	PlaylistTTL   time.Duration
	OriginTimeout time.Duration // default 10 s
	// TagPattern's first group extracts the purge tag (track id) from a key.
	// Default `(?:^|/)tracks/([^/]+)/`.
	TagPattern *regexp.Regexp
	// EgressCapacity is the POP's network capacity in bytes/s; network load
	// in /stats is egress divided by it (default 125 MB/s, 1 Gbit/s).
	EgressCapacity float64

	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Clock is the POP's time for what it decides by time: playlist
	// freshness, signed-URL expiry, revocation windows, premium expiry and
	// uptime (default: the real clock). Tests pass a fake one to make time
	// pass at will. Measurements stay on real time: the load sampler (it
	// divides /proc CPU ticks by elapsed time), the disk tier's access times
	// (file mtimes) and how long a warm took.
	Clock clockwork.Clock
}

func (c *Config) defaults() error {
	if c.S3Endpoint == "" {
		return errors.New("edge: S3 endpoint is required")
	}
	if c.Name == "" {
		c.Name = "pop"
	}
	if c.S3Region == "" {
		c.S3Region = "us-east-1"
	}
	if c.Bucket == "" {
		c.Bucket = "media"
	}
	if c.MemoryBytes <= 0 {
		c.MemoryBytes = DefaultMemoryBytes
		if c.DiskDir != "" {
			// With a disk tier the memory tier holds only playlists.
			c.MemoryBytes = DefaultMemoryBytesWithDisk
		}
	}
	if c.DiskDir != "" && c.DiskBytes <= 0 {
		c.DiskBytes = 4 << 30
	}
	if c.SliceSize <= 0 {
		c.SliceSize = DefaultSliceSize
	}
	if c.SliceSize > 16<<20 {
		return errors.New("edge: slice size above 16 MiB")
	}
	if c.PremiumMarkers == nil {
		c.PremiumMarkers = []string{"/premium/"}
	}
	if c.PlaylistTTL <= 0 {
		c.PlaylistTTL = DefaultPlaylistTTL
	}
	if c.RevocationKeep <= 0 {
		c.RevocationKeep = DefaultRevocationKeep
	}
	if c.OriginTimeout <= 0 {
		c.OriginTimeout = 10 * time.Second
	}
	if c.TagPattern == nil {
		c.TagPattern = regexp.MustCompile(`(?:^|/)tracks/([^/]+)/`)
	}
	if c.EgressCapacity <= 0 {
		c.EgressCapacity = 125e6
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	return nil
}

// Server is one POP: an http.Handler with an optional own listener.
type Server struct {
	cfg    Config
	log    *slog.Logger
	origin *origin
	store  *store
	redis  *redis.Client
	// tokens caches genuine signed-URL tokens (raw → parsed) so repeat
	// requests skip the HMAC.
	tokens     *otter.Cache[string, urlsign.Token]
	playlistCC string
	mux        *http.ServeMux

	// revocations maps revoked key prefixes to when (revoke.go); read on
	// every request without a lock, replaced whole under revokeMu.
	revocations atomic.Pointer[map[string]revocation]
	revokeMu    sync.Mutex

	flightMu sync.Mutex
	flights  map[sliceKey]*flight

	st      stats
	metrics metrics

	stopOnce sync.Once
	stop     chan struct{}
	bg       sync.WaitGroup
	srv      *http.Server
	ln       net.Listener
	serveErr chan error
}

// New builds a POP. The disk tier, when configured, is reloaded from DiskDir.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := newStore(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("pop", cfg.Name), origin: newOrigin(cfg), store: st,
		flights: map[sliceKey]*flight{}, stop: make(chan struct{}), playlistCC: playlistCC(cfg.PlaylistTTL),
		tokens: otter.Must(&otter.Options[string, urlsign.Token]{MaximumSize: 100_000})}
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("edge: redis url: %w", err)
		}
		s.redis = redis.NewClient(opt)
	}
	s.loadRevocations()
	s.metrics = newMetrics(cfg.Registry, s)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+MediaPrefix+"{key...}", s.serveMedia)
	s.mux.HandleFunc("OPTIONS "+MediaPrefix+"{key...}", s.serveMediaPreflight)
	s.mux.Handle("GET /stats", s.statsGuard(http.HandlerFunc(s.serveStats)))
	s.mux.HandleFunc("POST /admin/purge", s.admin(s.servePurge))
	s.mux.HandleFunc("POST /admin/warm", s.admin(s.serveWarm))
	s.mux.HandleFunc("POST /admin/revoke", s.admin(s.serveRevoke))
	server.Health(s.mux, s.ready)
	s.mux.Handle("GET /metrics", server.Protected(cfg.MetricsToken, promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	s.st.started = cfg.Clock.Now()
	s.bg.Add(1)
	go s.sampleLoop()
	return s, nil
}

// Name is the POP's name.
func (s *Server) Name() string { return s.cfg.Name }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) ready(context.Context) (bool, error) { return true, nil }

// ConnState counts open connections for /stats; Start installs it, and a
// caller running its own http.Server should too.
func (s *Server) ConnState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.st.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.st.conns.Add(-1)
	}
}

// Start listens on cfg.Addr (":0"-style addresses allowed) and serves until Stop.
func (s *Server) Start(ctx context.Context) error {
	addr := s.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("edge %s: listen on %s: %w", s.cfg.Name, addr, err)
	}
	s.ln = ln
	// gatherListener/withGatherConn: a cached slice's headers and body leave
	// in one writev instead of two writes (conn.go).
	// server.NewHTTPServer: the limits and the Guard every Overture server
	// has; server.Listener outside gatherListener, so the framing check
	// reads what the client sent and gatherConn still writes to the socket.
	s.srv = server.NewHTTPServer(s, server.Guard{TrustedProxies: s.cfg.TrustedProxies})
	s.srv.ConnState = s.ConnState
	s.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return withGatherConn(server.ConnContext(ctx, c), server.InnerConn(c))
	}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.srv.Serve(server.Listener(gatherListener{ln})) }()
	s.log.Info("edge POP listening", "address", ln.Addr().String(), "region", s.cfg.Region)
	return nil
}

// Addr is the bound listen address after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is http://Addr after Start.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Stop shuts the listener down gracefully and stops background work.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	if s.srv != nil {
		if e := s.srv.Shutdown(ctx); e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = fmt.Errorf("edge %s: shutdown: %w", s.cfg.Name, e)
		}
	}
	s.stopOnce.Do(func() { close(s.stop) })
	s.bg.Wait()
	if s.store.disk != nil {
		s.store.disk.close()
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
	return err
}

// Run starts the POP and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-s.serveErr:
		return fmt.Errorf("edge %s: serve: %w", s.cfg.Name, err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	return s.Stop(sctx)
}

// admin wraps purge/warm: the shared secret header or an admin access token.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if sec := r.Header.Get(AdminSecretHeader); sec != "" && s.cfg.AdminSecret != "" &&
			subtle.ConstantTimeCompare([]byte(sec), []byte(s.cfg.AdminSecret)) == 1 {
			next(w, r)
			return
		}
		if s.cfg.Verifier != nil {
			if c, err := s.cfg.Verifier.Verify(r.Context(), token.Bearer(r)); err == nil && c.HasRole(token.RoleAdmin) {
				next(w, r)
				return
			}
		}
		writeProblem(w, r, http.StatusUnauthorized, "admin-required", "purge and warm need the "+AdminSecretHeader+" header or an admin access token")
	}
}

// counters shared by /stats and /metrics.
type stats struct {
	started                     time.Time
	conns, requests, hits, miss atomic.Int64
	stale, originFetches        atomic.Int64
	bytesOut, bytesIn           atomic.Int64

	mu                 sync.Mutex
	outRate, inRate    float64
	cpu                float64 // 0..1 this process's share of all CPUs
	machineCPU         float64 // 0..1 busy fraction of all CPUs
	load1              float64
	injectCPU, injectN float64 // <0 = off
	injected           bool
}

// SetSyntheticLoad overrides the CPU and network load /stats reports (0..1),
// so steering can be exercised against real POPs under a chosen load.
// Negative values restore the measured figures.
func (s *Server) SetSyntheticLoad(cpu, network float64) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.injected = cpu >= 0 || network >= 0
	s.st.injectCPU, s.st.injectN = cpu, network
}

func (s *Server) sampleLoop() {
	defer s.bg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastOut, lastIn, lastT := s.st.bytesOut.Load(), s.st.bytesIn.Load(), time.Now()
	busy0, total0, _ := readProcStat()
	self0 := readSelfTicks()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			out, in := s.st.bytesOut.Load(), s.st.bytesIn.Load()
			dt := now.Sub(lastT).Seconds()
			busy, total, err := readProcStat()
			self := readSelfTicks()
			s.st.mu.Lock()
			s.st.outRate, s.st.inRate = float64(out-lastOut)/dt, float64(in-lastIn)/dt
			if err == nil && total > total0 {
				s.st.machineCPU = float64(busy-busy0) / float64(total-total0)
			}
			// The process's own share of all CPUs: on a POP machine that is
			// the POP's load, and unrelated processes on a shared box (or
			// the other POPs of make run) do not mark it overloaded.
			s.st.cpu = float64(self-self0) / clockTicks / dt / float64(runtime.NumCPU())
			s.st.load1 = readLoad1()
			s.st.mu.Unlock()
			lastOut, lastIn, lastT, busy0, total0, self0 = out, in, now, busy, total, self
		}
	}
}

// readProcStat returns busy and total jiffies of all CPUs from /proc/stat.
func readProcStat() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("unexpected /proc/stat")
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times (100 on Linux).
const clockTicks = 100

// readSelfTicks returns this process's user+system CPU time in clock ticks.
func readSelfTicks() uint64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

func readLoad1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
