// Package tokentest issues real Overture access tokens for tests of services
// that verify them, with a JWKS served over HTTP like the auth service's.
package tokentest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/overture-music/overture/internal/token"
)

// Issuer and Audience of test tokens.
const (
	Issuer   = "http://overture.test"
	Audience = "overture"
)

// Authority signs tokens and serves their JWKS.
type Authority struct {
	Key    token.Key
	Server *httptest.Server
}

// New starts an authority whose JWKS is at JWKSURL(); it stops with the test.
func New(t testing.TB) *Authority {
	t.Helper()
	k, err := token.NewKey("test-" + uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	a := &Authority{Key: k}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(token.JWKS{Keys: []token.JWK{token.PublicJWK(a.Key)}})
	}))
	t.Cleanup(a.Server.Close)
	return a
}

// JWKSURL is where the authority publishes its keys.
func (a *Authority) JWKSURL() string { return a.Server.URL + "/.well-known/jwks.json" }

// Verifier returns a verifier trusting this authority.
func (a *Authority) Verifier() *token.Verifier {
	return &token.Verifier{Keys: &token.RemoteKeys{URL: a.JWKSURL()}, Issuer: Issuer, Audience: Audience}
}

// Options shape an issued token.
type Options struct {
	Roles        []string
	Premium      bool
	PremiumUntil time.Time
	TTL          time.Duration // default 10 min
}

// Token issues an access token for subject.
func (a *Authority) Token(t testing.TB, subject string, o Options) string {
	t.Helper()
	if o.TTL == 0 {
		o.TTL = 10 * time.Minute
	}
	if o.Roles == nil {
		o.Roles = []string{token.RoleListener}
	}
	now := time.Now()
	c := &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: subject, Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(o.TTL)), ID: uuid.NewString(),
		},
		Roles: o.Roles, Premium: o.Premium, EntitlementVersion: 1,
	}
	if !o.PremiumUntil.IsZero() {
		c.PremiumUntil = jwt.NewNumericDate(o.PremiumUntil)
	}
	s, err := token.Sign(a.Key, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
