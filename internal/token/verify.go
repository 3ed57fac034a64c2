package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWK is one public key of a JWKS (OKP/Ed25519 only).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK returns the JWK of k's public half.
func PublicJWK(k Key) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public()), Kid: k.ID, Alg: "EdDSA", Use: "sig"}
}

// KeySource resolves a key id to a public key.
type KeySource interface {
	Key(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// StaticKeys is a KeySource over a fixed set (for in-process verification).
type StaticKeys map[string]ed25519.PublicKey

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// RemoteKeys caches a JWKS fetched over HTTP. An unknown kid triggers a
// refetch, at most once per MinRefresh, so a rotated-in key is picked up at
// once while garbage kids cannot make us hammer the auth service.
type RemoteKeys struct {
	URL        string
	Client     *http.Client
	MinRefresh time.Duration // default 10 s
	MaxAge     time.Duration // refetch after this even without misses; default 5 min

	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

// Key implements KeySource.
func (r *RemoteKeys) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	minRefresh, maxAge := r.MinRefresh, r.MaxAge
	if minRefresh == 0 {
		minRefresh = 10 * time.Second
	}
	if maxAge == 0 {
		maxAge = 5 * time.Minute
	}
	k, ok := r.keys[kid]
	stale := time.Since(r.fetched) > maxAge
	if ok && !stale {
		return k, nil
	}
	if r.keys == nil || stale || time.Since(r.fetched) > minRefresh {
		if err := r.fetch(ctx); err != nil {
			if ok { // serve the cached key while the auth service is unreachable
				return k, nil
			}
			return nil, err
		}
	}
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

func (r *RemoteKeys) fetch(ctx context.Context) error {
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return fmt.Errorf("jwks request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("fetch jwks %s: %w", r.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch jwks %s: status %d", r.URL, resp.StatusCode)
	}
	var set JWKS
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("decode jwks: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(b) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(b)
	}
	r.keys, r.fetched = keys, time.Now()
	return nil
}

// Verifier checks access tokens.
type Verifier struct {
	Keys     KeySource
	Issuer   string
	Audience string
	// Leeway tolerates clock skew on exp/iat (default 30 s).
	Leeway time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Verify parses and checks raw, returning its claims or a typed error.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" {
		return nil, ErrMissing
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = 30 * time.Second
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	if err := checkHeader(raw); err != nil {
		return nil, err
	}
	var claims Claims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != Type && typ != "application/"+Type {
			return nil, ErrTokenType
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, ErrUnknownKey
		}
		return v.Keys.Key(ctx, kid)
	}, opts...)
	if err != nil {
		return nil, classify(err)
	}
	if claims.Subject == "" || claims.ID == "" {
		return nil, ErrClaimMissing
	}
	return &claims, nil
}

func classify(err error) error {
	for _, e := range []error{ErrTokenType, ErrUnknownKey} {
		if errors.Is(err, e) {
			return e
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrClaimMissing
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// checkHeader rejects a token whose header is unreadable or names an algorithm
// other than EdDSA before any key is looked up, so "alg: none" and HS256 keyed
// with our public key are refused as such.
func checkHeader(raw string) error {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("%w: header is not JSON", ErrMalformed)
	}
	if h.Alg != jwt.SigningMethodEdDSA.Alg() {
		return fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	}
	return nil
}
