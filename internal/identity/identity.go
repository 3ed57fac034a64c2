// Package identity is workload identity on Overture's event path, the way
// Knative Eventing's sender identity (feature flag authentication-oidc) does
// it: every producer sends its events with a short-lived JWT whose subject is
// its Kubernetes ServiceAccount ("system:serviceaccount:<namespace>:<name>")
// and whose audience is the broker it posts to
// ("eventing.knative.dev/broker/<namespace>/<name>"), and the broker verifies
// issuer, audience, expiry and signature before it looks at an event. Which
// subject may send which event is then decided by EventPolicy objects
// (internal/manifest, enforced by internal/broker).
//
// On Knative the tokens are projected ServiceAccount tokens minted by the
// cluster and verified against its OIDC issuer's JWKS ([VerifierConfig]
// JWKSURL or JWKSFile). The embedded platform is its own issuer: an [Issuer]
// holds an Ed25519 key (kept under the data directory) and mints tokens for the
// subjects it hosts. A standalone function reads its token from a file on every
// publish ([FileToken]), so a rotated token is picked up without a restart.
//
// See docs/security.md for the trust model.
package identity

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Namespace is the Kubernetes namespace Overture runs in (manifest.DefaultNamespace).
const Namespace = "overture"

// TokenFileKey is the cfg key naming the file a standalone function or CDC
// reads its identity token from on every publish (on Knative a projected
// ServiceAccount token; see internal/deploy).
const TokenFileKey = "OVERTURE_IDENTITY_TOKEN_FILE"

// DefaultTTL is how long a token the embedded issuer mints is valid.
const DefaultTTL = 10 * time.Minute

const saPrefix = "system:serviceaccount:"

// ServiceAccount is the subject of the Kubernetes ServiceAccount name in
// namespace: what a projected ServiceAccount token's sub claim says, and what
// an EventPolicy's spec.from[].sub names.
func ServiceAccount(namespace, name string) string {
	return saPrefix + namespace + ":" + name
}

// Subject is the subject of an Overture workload: the ServiceAccount named
// after the function or service (its func.yaml name, "cdc" for the relay) in
// [Namespace].
func Subject(name string) string { return ServiceAccount(Namespace, name) }

// ParseServiceAccount splits a ServiceAccount subject into namespace and name.
func ParseServiceAccount(sub string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(sub, saPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	if !ok || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

// BrokerAudience is the OIDC audience of a Broker, as Knative publishes it in
// the Broker's .status.address.audience.
func BrokerAudience(namespace, name string) string {
	return "eventing.knative.dev/broker/" + namespace + "/" + name
}

// Claims are the verified claims of a token.
type Claims struct {
	Subject  string
	Issuer   string
	Audience []string
	Expiry   time.Time
}

// Errors of verification. Every failure wraps ErrUnauthenticated, so that a
// caller answers 401 for all of them alike and logs the specific cause.
var (
	ErrUnauthenticated = errors.New("identity: unauthenticated")
	ErrNoToken         = fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
)
