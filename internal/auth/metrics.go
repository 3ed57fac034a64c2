package auth

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// outcomes counts what auth decided, by route and outcome ("ok" or the
// problem slug: invalid-credentials, refresh-token-reused, rate-limited …),
// so refresh-token reuse or a credential-stuffing wave shows on a dashboard.
// The gateway already measures request counts and latency per route.
var outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "overture_auth_outcomes_total",
	Help: "Auth decisions by route and outcome (ok or the problem type).",
}, []string{"route", "outcome"})

func countOutcome(path, problemType string) {
	outcome := "ok"
	if problemType != "" {
		outcome = strings.TrimPrefix(problemType, "/problems/")
	}
	route := path
	if strings.HasPrefix(path, "/v1/auth/oauth/") { // bound the label set
		route = "/v1/auth/oauth/{provider}/" + path[strings.LastIndexByte(path, '/')+1:]
	}
	outcomes.WithLabelValues(route, outcome).Inc()
}

// Outcomes exposes the counter (tests, dashboards in process).
func Outcomes() *prometheus.CounterVec { return outcomes }

// registerMetrics registers auth's counters with the registry its host
// handed in (lifecycle.Env.Metrics), which serves them. The counters are
// the package's, so a registry that has them already is fine.
func registerMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{outcomes, hashes} {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				return err
			}
		}
	}
	return nil
}
