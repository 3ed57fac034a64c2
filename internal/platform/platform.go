// Package platform is the embedded Overture platform that `overture dev` (and
// so `make run`) runs: one process that hosts every function and HTTP service
// over the real dependencies, the way Knative would host them on a cluster.
//
// Start brings it up in dependency order — PostgreSQL, Redis, the S3 server
// and the SMTP sink (each started under the data directory unless the user
// points at an external one through DATABASE_URL, REDIS_URL, S3_ENDPOINT or
// SMTP_URL), the broker over brokers/ and triggers/, every function, the
// outbox relay (OUTBOX_RELAY=poll|cdc), the broker ingress, every service on
// its own port and the gateway that routes /v1/... to them on one address —
// and Stop takes it down in exactly the reverse order, so that nothing is cut
// off while something upstream still sends to it.
package platform

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/server"
)

// Options configure the platform. The zero value of a field means its default.
type Options struct {
	// Env is the configuration: the process environment in `overture dev`.
	// Dependency URLs found here are used instead of starting the dependency.
	Env map[string]string
	// DataDir holds the started dependencies' data (default ./.data).
	DataDir string
	// Ports of everything; the zero Ports picks free ports.
	Ports Ports
	// ManifestDirs are read by manifest.LoadDir (default brokers, triggers).
	ManifestDirs []string
	// Functions are hosted (nil: functions.All()).
	Functions []functions.Entry
	// Services are hosted (nil: Services()).
	Services []server.Service
	Log      *slog.Logger
	// ReadyTimeout bounds the wait for every part to report ready (default
	// 1 min); after it Start returns anyway and /health/readiness keeps
	// naming what is not ready.
	ReadyTimeout time.Duration
	// DevPOPs starts the three loopback CDN POPs on 127.0.0.1:9101-9103
	// (what `overture dev` does) unless CDN_POPS is set.
	DevPOPs bool
}

// Platform is a running embedded platform.
type Platform struct {
	opts  Options
	cfg   map[string]string
	log   *slog.Logger
	group infra.Group
	procs []*infra.Process
	deps  []dependency
	pops  []dependency

	pools    postgres.Pools // the pools every hosted component shares
	pool     *postgres.Pool
	broker   *broker.Broker
	issuer   *identity.Issuer // the platform's workload identity issuer
	registry *prometheus.Registry
	handlers map[string]function.Handler
	relay    string

	gatewayURL, ingressURL string
	serviceURLs            map[string]string

	mu      sync.Mutex
	running []*component // in start order
	failed  chan error
	stopped bool
}

// component is a goroutine the platform started, stopped by cancelling its
// context and waiting for it.
type component struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start brings the platform up and returns once every part is ready (or
// Options.ReadyTimeout passed; Ready then says what is not). On error,
// everything already started has been stopped again.
func Start(ctx context.Context, o Options) (res *Platform, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DataDir == "" {
		o.DataDir = ".data"
	}
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if o.ManifestDirs == nil {
		o.ManifestDirs = []string{"brokers", "triggers"}
	}
	if o.Functions == nil {
		o.Functions = functions.All()
	}
	if o.Services == nil {
		o.Services = Services()
	}
	p := &Platform{
		opts: o, cfg: maps.Clone(o.Env), log: o.Log,
		// The platform's own registry (broker, relay, gateway) is gathered with
		// the default one, which holds the Go and process collectors and the
		// services' metrics; a private registry lets tests run several platforms.
		registry: prometheus.NewRegistry(), handlers: map[string]function.Handler{},
		serviceURLs: map[string]string{}, failed: make(chan error, 16),
	}
	if p.cfg == nil {
		p.cfg = map[string]string{}
	}
	p.cfg[KeyDataDir] = o.DataDir
	p.group.Log = o.Log
	defer func() {
		if err != nil {
			if serr := p.Stop(context.WithoutCancel(ctx)); serr != nil {
				p.log.Warn("stop after failed start", "error", serr)
			}
			res = nil
		}
	}()

	// Bind the two fixed addresses first: a busy port fails fast, and the URLs
	// are known before functions receive their configuration.
	gwLn, err := listen(o.Ports.Gateway, "gateway")
	if err != nil {
		return p, err
	}
	defer closeIfUnused(&gwLn)
	inLn, err := listen(o.Ports.Ingress, "broker ingress")
	if err != nil {
		return p, err
	}
	defer closeIfUnused(&inLn)
	p.gatewayURL = "http://" + gwLn.Addr().String()
	p.ingressURL = "http://" + inLn.Addr().String() + "/" + DefaultNamespace + "/" + DefaultBroker
	if p.cfg[KeyPublicBaseURL] == "" {
		p.cfg[KeyPublicBaseURL] = p.gatewayURL
	}
	if p.cfg[KeyBrokerURL] == "" {
		p.cfg[KeyBrokerURL] = p.ingressURL
	}

	// The platform is its own workload identity issuer (on Knative the
	// cluster is): its key lives under the data directory, so tokens outlive a
	// restart and operator tools on this machine can mint them. It exists
	// before anything that publishes starts (the S3 event source starts with
	// the dependencies).
	if p.issuer, err = identity.LoadOrCreateIssuer(identity.IssuerKeyFile(o.DataDir), identity.EmbeddedIssuer); err != nil {
		return p, fmt.Errorf("identity issuer: %w", err)
	}

	if err := p.startDeps(ctx); err != nil {
		return p, err
	}
	if err := applyDefaults(p.cfg); err != nil {
		return p, fmt.Errorf("configuration: %w", err)
	}
	p.log.Info("dependencies ready", "data_dir", o.DataDir)

	if p.pool, err = p.pools.Open(ctx, p.cfg[KeyDatabaseURL]); err != nil {
		return p, fmt.Errorf("platform database: %w", err)
	}
	objects, err := manifest.LoadDir(o.ManifestDirs...)
	if err != nil {
		return p, fmt.Errorf("load %s: %w", strings.Join(o.ManifestDirs, ", "), err)
	}
	// Instances exist before the broker, which checks at New that every
	// subscriber resolves; they are started once the broker can publish.
	if err := p.newFunctions(); err != nil {
		return p, err
	}
	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{
		Issuer: p.issuer.Issuer(), Keys: []crypto.PublicKey{p.issuer.PublicKey()},
	})
	if err != nil {
		return p, fmt.Errorf("identity verifier: %w", err)
	}
	p.broker, err = broker.New(ctx, broker.Config{
		Pool: p.pool.Pool, Objects: objects, Resolve: p.resolve, Verifier: verifier,
		Log: p.log.With("component", "broker"), Registerer: p.registry,
	})
	if err != nil {
		return p, fmt.Errorf("broker: %w", err)
	}

	if err := p.startFunctions(ctx); err != nil {
		return p, err
	}
	// Dispatch waits until the platform is ready (or gave up waiting): after
	// a restart, queued deliveries would otherwise race ahead of what their
	// subscribers call (the CDN POPs, the payment sandbox) and burn their
	// retries on refused connections. Publishing works meanwhile.
	dispatch := make(chan struct{})
	p.spawn("broker", func(ctx context.Context) error {
		select {
		case <-dispatch:
		case <-ctx.Done(): // Run with a cancelled context only shuts down
		}
		return p.broker.Run(ctx)
	})

	if err := outbox.Migrate(ctx, p.pool.Pool); err != nil {
		return p, fmt.Errorf("outbox: %w", err)
	}
	// Either relay publishes with the relay's identity: EventPolicy "cdc"
	// lets it send exactly the types that travel through the outbox and CDC.
	relay, name, err := newRelay(p.cfg[KeyOutboxRelay], RelayEnv{
		Cfg: maps.Clone(p.cfg), Pool: p.pool.Pool, Publisher: p.broker.As(identity.Subject(eventtype.Relay)),
		Log: p.log, Registerer: p.registry,
	})
	if err != nil {
		return p, err
	}
	p.relay = name
	p.spawn("outbox relay ("+name+")", relay.Run)

	ingress := serveListener(inLn, p.broker, p.log)
	inLn = nil
	p.spawn("broker ingress", ingress)

	if err := p.startCDN(ctx); err != nil {
		return p, err
	}
	// The local OIDC provider (make run's stand-in for Google and co.) must be
	// up before auth starts: it sets LOCAL_OIDC_ISSUER in cfg.
	if err := p.startIdP(ctx); err != nil {
		return p, err
	}
	if err := p.startServices(ctx); err != nil {
		return p, err
	}
	gw, err := newGateway(o.Services, p.Ready, prometheus.Gatherers{p.registry, prometheus.DefaultGatherer}, p.registry, p.cfg)
	if err != nil {
		return p, err
	}
	gateway := serveListener(gwLn, gw, p.log)
	gwLn = nil
	p.spawn("gateway", gateway)

	rctx, cancel := context.WithTimeout(ctx, cmp.Or(o.ReadyTimeout, time.Minute))
	defer cancel()
	err = p.waitReady(rctx)
	close(dispatch)
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, errNotReady) {
			return p, err
		}
		// Something stays unready (a POP down, a provider unreachable):
		// keep serving, with /health/readiness saying what, rather than
		// take down everything that works.
		p.log.Warn("platform up but not ready", "error", err)
		return p, nil
	}
	p.log.Info("platform ready", "gateway", p.gatewayURL, "ingress", p.ingressURL, "functions", len(p.handlers), "services", len(o.Services), "relay", p.relay)
	return p, nil
}

func listen(port int, what string) (net.Listener, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s (is another overture running?): %w", what, addr, err)
	}
	return ln, nil
}

func closeIfUnused(ln *net.Listener) {
	if *ln != nil {
		(*ln).Close()
	}
}

// serveListener serves h on ln until ctx ends, then shuts down gracefully.
func serveListener(ln net.Listener, h http.Handler, log *slog.Logger) func(context.Context) error {
	srv := server.NewHTTPServer(h, server.Guard{})
	ln = server.Listener(ln)
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("http shutdown", "address", ln.Addr().String(), "error", err)
		}
		<-errc
		return nil
	}
}

// spawn runs fn until Stop cancels it; an early exit fails the platform.
func (p *Platform) spawn(name string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &component{name: name, cancel: cancel, done: make(chan struct{})}
	p.mu.Lock()
	p.running = append(p.running, c)
	p.mu.Unlock()
	go func() {
		defer close(c.done)
		c.err = fn(ctx)
		if ctx.Err() == nil {
			if c.err == nil {
				c.err = errors.New("exited")
			}
			select {
			case p.failed <- fmt.Errorf("%s stopped unexpectedly: %w", name, c.err):
			default:
			}
		}
	}()
}

// resolve gives the broker the started instance of a function.
func (p *Platform) resolve(name string) (function.Handler, bool) {
	h, ok := p.handlers[name]
	return h, ok
}

// newFunctions makes one instance of every function.
func (p *Platform) newFunctions() error {
	for _, e := range p.opts.Functions {
		if _, dup := p.handlers[e.Name]; dup {
			return fmt.Errorf("function %s registered twice", e.Name)
		}
		p.handlers[e.Name] = e.New()
	}
	return nil
}

// startFunctions runs every function's Start concurrently, each with a
// publisher bound to its own identity in its context (what it publishes is
// checked against the EventPolicies, as its token would be on Knative; while
// handling an event the broker gives it the same). The context stays valid
// until the functions are stopped, so Start may launch background work.
func (p *Platform) startFunctions(ctx context.Context) error {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hs := p.handlers
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for name, h := range hs {
		wg.Go(func() {
			if err := function.Start(fctx, h, p.env("function", name), maps.Clone(p.cfg)); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("start function %s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Registered even on failure, so the functions that did start are stopped.
	p.mu.Lock()
	done := make(chan struct{})
	close(done)
	p.running = append(p.running, &component{name: "functions", cancel: func() {
		p.stopFunctions()
		cancel()
	}, done: done})
	p.mu.Unlock()
	return errors.Join(errs...)
}

func (p *Platform) stopFunctions() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for name, h := range p.handlers {
		wg.Go(func() {
			if err := function.Stop(ctx, h); err != nil {
				p.log.Warn("stop function", "function", name, "error", err)
			}
		})
	}
	wg.Wait()
}

// startServices runs each service standalone on its own port (as its Knative
// Service would) and waits until all listen. Like a function, a service finds
// in its Start context a publisher bound to its own identity (the service's
// name): a service that publishes directly (the listens service) is checked
// against its EventPolicy.
func (p *Platform) startServices(ctx context.Context) error {
	for i, s := range p.opts.Services {
		port := 0
		if p.opts.Ports.ServiceBase != 0 {
			port = p.opts.Ports.ServiceBase + i
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ready := make(chan string, 1)
		cfg := maps.Clone(p.cfg)
		env := p.env("service", s.Name())
		gather := prometheus.Gatherers{p.registry, prometheus.DefaultGatherer}
		p.spawn("service "+s.Name(), func(ctx context.Context) error {
			return server.RunEnv(ctx, s, addr, cfg, env, gather, ready)
		})
		select {
		case a := <-ready:
			p.serviceURLs[s.Name()] = "http://" + a
		case err := <-p.failed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// env is what the platform hands the function or service name (kind says
// which) at start: its logger, the platform's registry with the component's
// name on every series, the shared pools and a publisher bound to its
// identity, checked against the EventPolicies as its token would be on
// Knative.
func (p *Platform) env(kind, name string) lifecycle.Env {
	return lifecycle.Env{
		Name:      name,
		Log:       p.log.With(kind, name),
		Metrics:   prometheus.WrapRegistererWith(prometheus.Labels{kind: name}, p.registry),
		Pools:     &p.pools,
		Publisher: p.broker.As(identity.Subject(name)),
	}
}

// Ready reports nil when the database answers and every function and service
// says it is ready; otherwise an error naming what is not.
func (p *Platform) Ready(ctx context.Context) error {
	var errs []error
	if err := p.pool.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("database: %w", err))
	}
	names := slices.Sorted(maps.Keys(p.handlers))
	for _, n := range names {
		if ok, err := function.Ready(ctx, p.handlers[n]); !ok || err != nil {
			errs = append(errs, fmt.Errorf("function %s not ready: %v", n, err))
		}
	}
	for _, s := range p.opts.Services {
		if ok, err := lifecycle.Ready(ctx, s); !ok || err != nil {
			errs = append(errs, fmt.Errorf("service %s not ready: %v", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// errNotReady marks a start-up that ended with parts still not ready.
var errNotReady = errors.New("platform not ready")

// waitReady polls Ready until it passes, saying every few seconds what it
// still waits for.
func (p *Platform) waitReady(ctx context.Context) error {
	nextLog := time.Now().Add(3 * time.Second)
	for {
		err := p.Ready(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(nextLog) {
			p.log.Warn("waiting for readiness", "not_ready", err.Error())
			nextLog = time.Now().Add(5 * time.Second)
		}
		select {
		case ferr := <-p.failed:
			return ferr
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %w", errNotReady, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops everything in reverse start order: gateway, services, ingress,
// relay, broker, functions, then the database pool and the dependencies.
// It is safe to call more than once.
func (p *Platform) Stop(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	running := slices.Clone(p.running)
	p.mu.Unlock()
	var errs []error
	for i := len(running) - 1; i >= 0; i-- {
		c := running[i]
		c.cancel()
		select {
		case <-c.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s did not stop: %w", c.name, ctx.Err()))
			continue
		}
		if c.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, c.err))
		}
		p.log.Debug("stopped", "component", c.name)
	}
	if p.pool != nil {
		p.pool.Close()
	}
	p.pools.Close()
	if err := p.group.Stop(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Config returns a copy of the configuration functions and services got.
func (p *Platform) Config() map[string]string { return maps.Clone(p.cfg) }

// GatewayURL is the one local base URL of every public API.
func (p *Platform) GatewayURL() string { return p.gatewayURL }

// IngressURL is the default broker's HTTP ingress.
func (p *Platform) IngressURL() string { return p.ingressURL }

// ServiceURL is the own address of a hosted service.
func (p *Platform) ServiceURL(name string) string { return p.serviceURLs[name] }

// PublisherAs is an in-process publisher bound to the identity of the
// workload name (identity.Subject): the EventPolicies decide what it may send.
func (p *Platform) PublisherAs(name string) function.Publisher {
	return p.broker.As(identity.Subject(name))
}

// TokenSource gives the workload name tokens for the broker's ingress, for
// a producer the platform runs that posts over HTTP (the S3 event source:
// function.NewHTTPPublisher(url, nil).WithToken(p.TokenSource(name))).
func (p *Platform) TokenSource(name string) identity.TokenSource {
	return p.issuer.Source(identity.Subject(name), identity.BrokerAudience(DefaultNamespace, DefaultBroker))
}

// Token mints a workload identity token for name, valid for the broker's
// ingress (what a standalone producer reads from OVERTURE_IDENTITY_TOKEN_FILE).
func (p *Platform) Token(name string) (string, error) {
	return p.issuer.Mint(identity.Subject(name), identity.BrokerAudience(DefaultNamespace, DefaultBroker), 0)
}

// Processes are the dependency processes the platform started.
func (p *Platform) Processes() []*infra.Process { return slices.Clone(p.procs) }

// Run starts the platform, writes the URL table to out, and serves until ctx
// ends (Ctrl-C) or a part fails; then it stops everything.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	p, err := Start(ctx, o)
	if err != nil {
		if ctx.Err() != nil { // Ctrl-C during start-up: everything is stopped already
			o.Log.Info("interrupted during start-up; stopped")
			return nil
		}
		return err
	}
	if out == nil {
		out = os.Stdout
	}
	p.PrintURLs(out)
	var runErr error
	select {
	case <-ctx.Done():
		p.log.Info("stopping")
	case runErr = <-p.failed:
		p.log.Error("platform failed, stopping", "error", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return errors.Join(runErr, p.Stop(sctx))
}
