package token

import "github.com/overture-music/overture/internal/config"

// Configuration keys of a service that verifies access tokens.
const (
	KeyJWKSURL       = "AUTH_JWKS_URL"   // where auth publishes its keys
	KeyIssuer        = "AUTH_ISSUER"     // the iss every token must carry
	KeyPublicBaseURL = "PUBLIC_BASE_URL" // auth's public base: the default of both
)

// Audience is the audience every Overture access token is issued for.
const Audience = "overture"

// VerifierConfig is where a resource server finds auth's keys and which
// issuer it trusts.
type VerifierConfig struct {
	JWKSURL string
	Issuer  string
}

// ReadVerifierConfig reads AUTH_JWKS_URL (default
// PUBLIC_BASE_URL/.well-known/jwks.json) and AUTH_ISSUER (default
// PUBLIC_BASE_URL), one of each required: the one derivation every service
// uses. Problems are recorded on r.
func ReadVerifierConfig(r *config.Reader) VerifierConfig {
	base := r.URLOr(KeyPublicBaseURL, "")
	c := VerifierConfig{JWKSURL: r.URLOr(KeyJWKSURL, ""), Issuer: r.StringOr(KeyIssuer, base)}
	if c.JWKSURL == "" && base != "" {
		c.JWKSURL = base + "/.well-known/jwks.json"
	}
	if c.JWKSURL == "" {
		r.Fail(KeyJWKSURL, "is required (or %s) to verify access tokens", KeyPublicBaseURL)
	}
	if c.Issuer == "" {
		r.Fail(KeyIssuer, "is required (or %s) to verify access tokens", KeyPublicBaseURL)
	}
	return c
}

// Verifier returns a verifier of c's issuer, with its keys fetched from
// c.JWKSURL, for the Overture audience.
func (c VerifierConfig) Verifier() *Verifier {
	return &Verifier{Keys: &RemoteKeys{URL: c.JWKSURL}, Issuer: c.Issuer, Audience: Audience}
}
