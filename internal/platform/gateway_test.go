package platform

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overture-music/overture/internal/server"
)

type fakeService struct {
	name   string
	routes []server.Route
}

func (f fakeService) Name() string           { return f.name }
func (f fakeService) Routes() []server.Route { return f.routes }
func (f fakeService) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Service", f.name)
	w.WriteHeader(http.StatusTeapot)
}

func ready(context.Context) error { return nil }

func TestGatewayRejectsTwoServicesOnOneRoute(t *testing.T) {
	for name, services := range map[string][]server.Service{
		"SamePattern": {
			fakeService{"a", []server.Route{{Method: "GET", Path: "/v1/tracks/{id}"}}},
			fakeService{"b", []server.Route{{Method: "GET", Path: "/v1/tracks/{id}"}}},
		},
		"ConflictingWildcards": {
			fakeService{"a", []server.Route{{Method: "GET", Path: "/v1/x/{id}"}}},
			fakeService{"b", []server.Route{{Method: "GET", Path: "/v1/x/{name}"}}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			if _, err := newGateway(services, ready, reg, reg, nil); err == nil {
				t.Fatal("gateway accepted two services on one route")
			}
		})
	}
}

func TestGatewayRoutesByMethodAndPath(t *testing.T) {
	reg := prometheus.NewRegistry()
	gw, err := newGateway([]server.Service{
		fakeService{"tracks", []server.Route{{Method: "GET", Path: "/v1/tracks/{id}"}}},
		fakeService{"uploads", []server.Route{{Method: "POST", Path: "/v1/tracks/{id}"}, {Method: "GET", Path: "/v1/files/{path...}"}}},
	}, ready, reg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "/v1/tracks/7", "tracks"},
		{"POST", "/v1/tracks/7", "uploads"},
		{"GET", "/v1/files/a/b/c.mp3", "uploads"},
		{"GET", "/v1/unknown", ""},
	} {
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if got := rec.Header().Get("X-Service"); got != tt.want {
			t.Errorf("%s %s went to %q, want %q (status %d)", tt.method, tt.path, got, tt.want, rec.Code)
		}
		if tt.want == "" && (rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json") {
			t.Errorf("%s %s: %d %s, want a 404 problem", tt.method, tt.path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

// The attack: the gateway's /metrics answered anyone. Now it needs
// METRICS_TOKEN, and every answer (routed or not) carries the security
// headers of server.Guard.
func TestGatewayMetricsNeedTheTokenAndAnswersCarrySecurityHeaders(t *testing.T) {
	reg := prometheus.NewRegistry()
	gw, err := newGateway([]server.Service{fakeService{"tracks", []server.Route{{Method: "GET", Path: "/v1/tracks/{id}"}}}},
		ready, reg, reg, map[string]string{server.KeyMetricsToken: "ops-token"})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, r)
		return rec
	}
	if rec := get("/metrics", ""); rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "overture_gateway") {
		t.Fatalf("anonymous /metrics: %d %.200s", rec.Code, rec.Body.String())
	}
	if rec := get("/metrics", "Bearer ops-token"); rec.Code != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", rec.Code)
	}
	for _, path := range []string{"/v1/tracks/7", "/v1/unknown", "/metrics"} {
		h := get(path, "").Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != server.ContentSecurityPolicy ||
			h.Get("Referrer-Policy") == "" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s lacks the security headers: %v", path, h)
		}
	}
}
