// Package identitytest gives tests workload identities: one Authority per
// test is an issuer and the verifier that trusts it, and hands out tokens,
// token files and publishers for any subject. Every test that posts to a
// broker ingress or publishes in process as a workload gets its identity
// here, the same way, so tests exercise the broker's real authentication.
package identitytest

import (
	"context"
	"crypto"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
)

// Audience is the default broker's audience (overture/default).
var Audience = identity.BrokerAudience(identity.Namespace, "default")

// Authority is a test's identity issuer and the verifier that trusts it.
type Authority struct {
	Issuer   *identity.Issuer
	Verifier *identity.Verifier
}

// New returns an Authority with a fresh key.
func New(t testing.TB) *Authority {
	t.Helper()
	is, err := identity.GenerateIssuer(identity.EmbeddedIssuer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.NewVerifier(context.Background(), identity.VerifierConfig{
		Issuer: is.Issuer(), Keys: []crypto.PublicKey{is.PublicKey()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Authority{Issuer: is, Verifier: v}
}

// Token returns a token for the workload name (identity.Subject) on the
// default broker.
func (a *Authority) Token(t testing.TB, name string) string {
	t.Helper()
	return a.TokenFor(t, identity.Subject(name), Audience, 0)
}

// TokenFor returns a token for subject and audience valid for ttl (a
// negative ttl gives a token that expired that long ago).
func (a *Authority) TokenFor(t testing.TB, subject, audience string, ttl time.Duration) string {
	t.Helper()
	is := a.Issuer
	if ttl < 0 {
		past := *a.Issuer
		back := 2*ttl - time.Minute
		past.Now = func() time.Time { return time.Now().Add(back) }
		is = &past
		ttl = -ttl
	}
	tok, err := is.Mint(subject, audience, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TokenFile writes a token for the workload name, valid for an hour (long
// tests outlive DefaultTTL), into a file of the test's temporary directory
// (as a projected ServiceAccount token is mounted) and returns its path.
func (a *Authority) TokenFile(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(a.TokenFor(t, identity.Subject(name), Audience, time.Hour)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Publisher returns an HTTP publisher posting to url with the identity of the
// workload name.
func (a *Authority) Publisher(url, name string) *function.HTTPPublisher {
	return function.NewHTTPPublisher(url, nil).WithToken(a.Issuer.Source(identity.Subject(name), Audience))
}
