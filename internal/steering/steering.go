// Package steering sends each listener to the best CDN POP, in the style of
// Apache Traffic Control's Traffic Monitor + Traffic Router and Netflix Open
// Connect's steering service: it keeps a health map of every POP (polling
// their /stats, timing each poll as an RTT probe, smoothing jitter as RFC 3550
// does), and for each listener picks a POP by the design rule — drop POPs
// above 80% load, keep the three nearest regions, take the one with the least
// network load — with hysteresis so listeners do not flap between POPs, and
// rendezvous hashing inside a region so each track lives in one POP's cache.
//
// It answers in two modes: candidates (signed URLs of 3-5 POPs, probed and
// chosen by the client, package probe) and play (a 302 to the chosen POP).
package steering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// RegionHeader lets a client (or the ingress) state the listener's region.
const RegionHeader = "X-Overture-Region"

// Config configures the steering service.
type Config struct {
	POPs []POP
	// Latency holds configured latencies between regions in ms, keyed
	// "a>b" (symmetric). The measured RTT to each POP is added to it.
	Latency          map[string]float64
	DefaultLatencyMS float64 // for unknown pairs; default 100
	// RegionCIDRs maps client address prefixes to listener regions
	// (a coverage zone map); DefaultRegion is used when nothing matches.
	RegionCIDRs     map[netip.Prefix]string
	DefaultRegion   string
	ListenerRegions []string // extra listener regions without POPs

	Keys     urlsign.Keys
	SignWith string        // key id used to sign (default: the first key)
	URLTTL   time.Duration // lifetime of signed URLs; default 2 h
	// KeyPrefix + "<track>/" is a track's key space; its renditions must lie
	// inside it (default "tracks/").
	KeyPrefix string

	PollInterval time.Duration // default 1 s; negative: no background polling (tests call Poll)
	PollTimeout  time.Duration // default 1 s; a slower answer is a failed poll
	// StatsToken is the bearer token the POPs' /stats require (METRICS_TOKEN).
	StatsToken string
	// AdminSecret is the POPs' admin secret (CDN_ADMIN_SECRET) the admin
	// purge and warm send (admin.go); unset, they answer 503.
	AdminSecret string
	Rise, Fall  int // consecutive good/bad samples to flip health; default 2/3
	// MaxLoad is the selection cut (0.8); HealthMaxLoad and HealthMaxRTTMS
	// mark a POP unhealthy outright (default 0.98 and 1000 ms).
	MaxLoad, HealthMaxLoad, HealthMaxRTTMS float64
	NearestRegions                         int           // default 3
	SwitchMargin                           float64       // network-load advantage needed to switch; default 0.1
	SwitchSamples                          int           // rounds a challenger must win; default 3
	MinDwell                               time.Duration // minimum time on a region; default 30 s

	// Catalog is the authority on what may be played (catalog.go); Start
	// opens it on DATABASE_URL when unset.
	Catalog *Catalog

	Verifier *token.Verifier
	Logger   *slog.Logger
	Now      func() time.Time
}

func (c *Config) defaults() error {
	if len(c.POPs) == 0 {
		return errors.New("steering: no POPs configured")
	}
	for _, p := range c.POPs {
		if p.Name == "" || p.Region == "" || p.URL == "" {
			return fmt.Errorf("steering: POP %+v needs name, region and url", p)
		}
	}
	if len(c.Keys) == 0 {
		return errors.New("steering: no signing keys configured")
	}
	if c.SignWith == "" {
		for k := range c.Keys {
			if c.SignWith == "" || k < c.SignWith {
				c.SignWith = k
			}
		}
	}
	if _, ok := c.Keys[c.SignWith]; !ok {
		return fmt.Errorf("steering: signing key %q is not configured", c.SignWith)
	}
	if c.Verifier == nil {
		return errors.New("steering: an access token verifier is required")
	}
	if c.Catalog == nil || c.Catalog.Pool == nil {
		return errors.New("steering: the catalog (DATABASE_URL) is required: it decides which tracks may be played")
	}
	orDefault(&c.DefaultLatencyMS, 100)
	orDefault(&c.DefaultRegion, c.POPs[0].Region)
	positiveOr(&c.URLTTL, 2*time.Hour)
	orDefault(&c.KeyPrefix, "tracks/")
	orDefault(&c.PollInterval, time.Second) // negative stays: no background polling
	positiveOr(&c.PollTimeout, time.Second)
	positiveOr(&c.Rise, 2)
	positiveOr(&c.Fall, 3)
	positiveOr(&c.MaxLoad, 0.8)
	positiveOr(&c.HealthMaxLoad, 0.98)
	positiveOr(&c.HealthMaxRTTMS, 1000)
	positiveOr(&c.NearestRegions, 3)
	positiveOr(&c.SwitchMargin, 0.1)
	positiveOr(&c.SwitchSamples, 3)
	orDefault(&c.MinDwell, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// orDefault sets an unset (zero) setting to its default.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// positiveOr sets a setting that is unset or not positive (meaningless for
// counts, durations and fractions alike) to its default.
func positiveOr[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Service is the steering service (server.Service "steering").
type Service struct {
	lifecycle.Base
	cfg    Config
	log    *slog.Logger
	client *http.Client
	mux    *http.ServeMux

	mu      sync.Mutex
	pops    []*popState
	choices map[string]*choice
	polled  bool

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an unconfigured service; Start configures it from cfg.
func New() *Service { return &Service{} }

// NewWithConfig returns a configured service (tests, the CLI).
func NewWithConfig(c Config) (*Service, error) {
	s := New()
	if err := s.configure(c); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) configure(c Config) error {
	if err := c.defaults(); err != nil {
		return err
	}
	s.cfg, s.log = c, c.Logger
	s.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	s.pops = make([]*popState, len(c.POPs))
	for i, p := range c.POPs {
		p.URL = strings.TrimRight(p.URL, "/")
		s.pops[i] = &popState{POP: p}
	}
	s.choices = map[string]*choice{}
	s.mux = http.NewServeMux()
	auth := func(h http.HandlerFunc) http.Handler { return c.Verifier.Middleware(s.log, h) }
	s.mux.Handle("GET /v1/cdn/candidates", auth(s.serveCandidates))
	s.mux.Handle("GET /v1/cdn/play/{track}/{rendition...}", auth(s.servePlay))
	s.mux.Handle("GET /v1/tracks/{id}/playback", auth(s.servePlayback))
	s.mux.HandleFunc("GET /v1/cdn/pops", s.servePOPs)
	s.handleAdmin(s.mux)
	return nil
}

// Name implements server.Service.
func (s *Service) Name() string { return "steering" }

// Routes implements server.Service.
func (s *Service) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/v1/cdn/candidates"},
		{Method: http.MethodGet, Path: "/v1/cdn/play/{track}/{rendition...}"},
		{Method: http.MethodGet, Path: "/v1/cdn/pops"},
		{Method: http.MethodGet, Path: "/v1/tracks/{id}/playback"},
		{Method: http.MethodPost, Path: "/v1/admin/cdn/purge"},
		{Method: http.MethodPost, Path: "/v1/admin/cdn/warm"},
	}
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.mux == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-started", "the steering service is not configured yet"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// ConfigKeys lists the settings Start reads: ReadConfig's and
// DATABASE_URL, the catalog.
func (s *Service) ConfigKeys() []config.Key {
	return config.KeysOf(func(r *config.Reader) { ReadConfig(r); r.String(postgres.KeyDatabaseURL) })
}

// Start configures the service from cfg (unless NewWithConfig did) and
// starts polling the POPs.
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	if s.mux == nil {
		r := config.NewReader(cfg)
		c := ReadConfig(r)
		url := r.String(postgres.KeyDatabaseURL)
		if err := r.Err(); err != nil {
			return fmt.Errorf("steering: %w", err)
		}
		s.Begin()
		c.Logger = s.Log
		pool, err := s.OpenPool(ctx, url)
		if err != nil {
			return fmt.Errorf("steering: catalog: %w", err)
		}
		c.Catalog = &Catalog{Pool: pool.Pool}
		if err := s.configure(c); err != nil {
			return err
		}
	}
	s.Poll(ctx)
	if s.cfg.PollInterval < 0 {
		return nil
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				s.Poll(pctx)
			}
		}
	}()
	return nil
}

// Stop ends polling and releases the catalog pool Start opened.
func (s *Service) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		select {
		case <-s.done:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), s.Base.Stop(ctx))
		}
	}
	return s.Base.Stop(ctx)
}

// Ready reports whether the service is configured and has polled the POPs
// once. It does not depend on POP health: with every POP down the service
// still answers (503 no-pop, and the health map at /v1/cdn/pops), and the
// platform's readiness should not hinge on the CDN.
func (s *Service) Ready(context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.polled {
		return false, errors.New("steering has not polled the POPs yet")
	}
	return true, nil
}

// Poll runs one round: poll every POP's /stats concurrently, update the
// health map, then re-decide every listener region.
func (s *Service) Poll(ctx context.Context) {
	type result struct {
		st  popStats
		rtt float64
		err error
	}
	res := make([]result, len(s.pops))
	var wg sync.WaitGroup
	for i, p := range s.pops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, rtt, err := poll(ctx, s.client, p.POP, s.cfg.StatsToken, s.cfg.PollTimeout)
			res[i] = result{st, rtt, err}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	for i, p := range s.pops {
		r := res[i]
		p.lastPoll = now
		good := r.err == nil
		if good {
			p.stats, p.lastErr = r.st, ""
			p.observeRTT(r.rtt)
			good = p.load() <= s.cfg.HealthMaxLoad && p.srtt <= s.cfg.HealthMaxRTTMS
			if !good {
				p.lastErr = fmt.Sprintf("over thresholds: load %.2f, rtt %.1f ms", p.load(), p.srtt)
			}
			p.overloaded.update(p.load() > s.cfg.MaxLoad, s.cfg.Fall, s.cfg.Rise) // overloaded is the bad state: Fall samples to enter, Rise to leave
		} else {
			p.lastErr = r.err.Error()
		}
		was := p.healthy.state
		if up := p.healthy.update(good, s.cfg.Rise, s.cfg.Fall); up != was {
			s.log.Info("steering: POP health changed", "pop", p.Name, "healthy", up, "reason", p.lastErr)
		}
	}
	s.decide(now)
	s.polled = true
}

// listenerRegion resolves the listener's region: header, query, then the
// client address map, then the default.
func (s *Service) listenerRegion(r *http.Request) string {
	if v := r.Header.Get(RegionHeader); v != "" {
		return v
	}
	if v := r.URL.Query().Get("region"); v != "" {
		return v
	}
	if host := server.ClientIP(r); host != "" {
		if a, err := netip.ParseAddr(host); err == nil {
			best, bits := "", -1
			for p, region := range s.cfg.RegionCIDRs {
				if p.Contains(a.Unmap()) && p.Bits() > bits {
					best, bits = region, p.Bits()
				}
			}
			if best != "" {
				return best
			}
		}
	}
	return s.cfg.DefaultRegion
}

// Candidate is one POP offered to a client.
type Candidate struct {
	POP         string  `json:"pop"`
	Region      string  `json:"region"`
	URL         string  `json:"url"`       // signed URL of the requested rendition
	BaseURL     string  `json:"base_url"`  // signed-prefix base: append any key below the track
	ProbeURL    string  `json:"probe_url"` // cheap URL to time
	RTTMS       float64 `json:"rtt_ms"`
	JitterMS    float64 `json:"jitter_ms"`
	NetworkLoad float64 `json:"network_load"`
}

// Candidates is the answer of GET /v1/cdn/candidates.
type Candidates struct {
	Track      string      `json:"track"`
	Region     string      `json:"region"`
	Token      string      `json:"token"`
	Expires    time.Time   `json:"expires"`
	Candidates []Candidate `json:"candidates"`
}

var errNoPOP = problem.New(http.StatusServiceUnavailable, "no-pop", "no CDN POP is healthy and below its load limit right now")

func validSegment(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00?#")
}

func validRendition(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || len(p) > 512 {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if !validSegment(seg) {
			return false
		}
	}
	return true
}

func (s *Service) serveCandidates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := 5
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 5 {
			problem.Write(w, r, problem.BadRequest("n must be between 1 and 5"))
			return
		}
	}
	if q.Get("track") == "" {
		problem.Write(w, r, problem.Validation(map[string]string{"track": "required"}))
		return
	}
	res, p := s.offer(r, q.Get("track"), q.Get("rendition"), n)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	_ = jsonEncode(w, res)
}

func (s *Service) servePlay(w http.ResponseWriter, r *http.Request) {
	res, p := s.offer(r, r.PathValue("track"), r.PathValue("rendition"), 1)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("X-Overture-POP", res.Candidates[0].POP)
	http.Redirect(w, r, res.Candidates[0].URL, http.StatusFound)
}

// POPStatus is one entry of GET /v1/cdn/pops (the health map).
type POPStatus struct {
	POP
	Healthy     bool    `json:"healthy"`
	Overloaded  bool    `json:"overloaded"`
	RTTMS       float64 `json:"rtt_ms"`
	JitterMS    float64 `json:"jitter_ms"`
	CPULoad     float64 `json:"cpu_load"`
	NetworkLoad float64 `json:"network_load"`
	HitRatio    float64 `json:"hit_ratio"`
	LastError   string  `json:"last_error,omitempty"`
}

// HealthMap returns the current health map and each listener region's choice.
func (s *Service) HealthMap() ([]POPStatus, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]POPStatus, len(s.pops))
	for i, p := range s.pops {
		out[i] = POPStatus{POP: p.POP, Healthy: p.healthy.state, Overloaded: p.overloaded.state, RTTMS: p.srtt, JitterMS: p.jitter,
			CPULoad: p.stats.CPULoad, NetworkLoad: p.stats.NetworkLoad, HitRatio: p.stats.HitRatio, LastError: p.lastErr}
	}
	ch := map[string]string{}
	for k, c := range s.choices {
		ch[k] = c.region
	}
	return out, ch
}

func (s *Service) servePOPs(w http.ResponseWriter, _ *http.Request) {
	pops, choices := s.HealthMap()
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncode(w, map[string]any{"pops": pops, "choices": choices})
}
