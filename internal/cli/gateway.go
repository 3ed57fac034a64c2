package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
)

// KeyGatewayUpstreamDomain is the domain under which `overture gateway`
// reaches each service as http://NAME.DOMAIN (on Knative the cluster-local
// address NAME.NAMESPACE.svc.cluster.local).
const KeyGatewayUpstreamDomain = "GATEWAY_UPSTREAM_DOMAIN"

// runGateway runs the public gateway on a cluster: the one origin of `make
// run` (/v1/... of every service, the web app, /openapi.json), each
// service's routes proxied to its Knative Service. Without it each service
// would answer only on its own host.
func runGateway(ctx context.Context, args []string) error {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "usage: overture gateway   (configured by GATEWAY_UPSTREAM_DOMAIN, LISTEN_ADDRESS, TRUSTED_PROXIES, METRICS_TOKEN, CDN_POPS,\n"+
			"                           S3_PUBLIC_ENDPOINT (else S3_ENDPOINT): the storage origin the web app's CSP connect-src allows, where the admin console PUTs upload parts)")
		return errUsage
	}
	cfg := function.Config()
	r := config.NewReader(cfg)
	domain := r.String(KeyGatewayUpstreamDomain)
	if err := r.Err(); err != nil {
		return fmt.Errorf("overture gateway: %w", err)
	}
	h, err := gatewayHandler(cfg, func(name string) *url.URL { return &url.URL{Scheme: "http", Host: name + "." + domain} }, nil)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(os.Stderr, telemetry.LevelFromEnv()).With("component", "gateway")
	return server.Listen(ctx, listenAddress(cfg), h, log, nil)
}

// gatewayHandler is the platform's gateway in front of proxies to
// upstream(service name), through transport (nil: http.DefaultTransport).
func gatewayHandler(cfg map[string]string, upstream func(string) *url.URL, transport http.RoundTripper) (http.Handler, error) {
	var remote []server.Service
	for _, s := range platform.Services() {
		u := upstream(s.Name())
		remote = append(remote, proxyService{name: s.Name(), routes: s.Routes(), Handler: &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded() // the service sees the client through TRUSTED_PROXIES
			},
			Transport: transport,
		}})
	}
	reg := prometheus.NewRegistry()
	return platform.NewGateway(remote, func(context.Context) error { return nil }, reg, reg, cfg)
}

// proxyService is a server.Service answered by another process.
type proxyService struct {
	http.Handler
	name   string
	routes []server.Route
}

func (p proxyService) Name() string           { return p.name }
func (p proxyService) Routes() []server.Route { return p.routes }
