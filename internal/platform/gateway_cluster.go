package platform

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/server"
)

// NewGateway builds the same gateway `make run` serves (every service's
// routes on one origin, the web app, /openapi.json, health, metrics, the
// server.Guard) for `overture gateway` on a cluster, where each service is
// a remote Knative Service: services are then proxies carrying the real
// services' names and routes (internal/cli/gateway.go).
func NewGateway(services []server.Service, ready func(context.Context) error, gather prometheus.Gatherer, reg prometheus.Registerer, cfg map[string]string) (http.Handler, error) {
	return newGateway(services, ready, gather, reg, cfg)
}
