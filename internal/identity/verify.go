package identity

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// VerifierConfig says whose tokens a Verifier accepts. Exactly one key source
// is needed: Keys (the embedded issuer's public key), JWKSURL (the cluster's
// OIDC issuer, e.g. https://kubernetes.default.svc/openid/v1/jwks) or JWKSFile
// (a JWKS document on disk, e.g. fetched once from the cluster).
type VerifierConfig struct {
	// Issuer is the iss claim every token must carry exactly.
	Issuer   string
	Keys     []crypto.PublicKey
	JWKSURL  string
	JWKSFile string
	// Client fetches JWKSURL (http.DefaultClient when nil).
	Client *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Verifier checks workload identity tokens: signature (EdDSA, ES256 or RS256;
// "none" and every other algorithm are refused), issuer, audience and expiry.
type Verifier struct {
	cfg  VerifierConfig
	keys oidc.KeySet

	mu  sync.Mutex
	per map[string]*oidc.IDTokenVerifier // by audience
}

// SigningAlgorithms are the algorithms a Verifier accepts: the embedded
// issuer's EdDSA and what Kubernetes ServiceAccount issuers sign with.
var SigningAlgorithms = []string{oidc.EdDSA, oidc.ES256, oidc.RS256}

// NewVerifier returns a verifier for cfg.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("identity: verifier: Issuer is required")
	}
	n := 0
	for _, set := range []bool{len(cfg.Keys) > 0, cfg.JWKSURL != "", cfg.JWKSFile != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("identity: verifier: exactly one of Keys, JWKSURL and JWKSFile is required")
	}
	v := &Verifier{cfg: cfg, per: map[string]*oidc.IDTokenVerifier{}}
	switch {
	case len(cfg.Keys) > 0:
		v.keys = &oidc.StaticKeySet{PublicKeys: cfg.Keys}
	case cfg.JWKSFile != "":
		keys, err := readJWKS(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		v.keys = &oidc.StaticKeySet{PublicKeys: keys}
	default:
		if cfg.Client != nil {
			ctx = oidc.ClientContext(context.WithoutCancel(ctx), cfg.Client)
		}
		v.keys = oidc.NewRemoteKeySet(context.WithoutCancel(ctx), cfg.JWKSURL)
	}
	return v, nil
}

func readJWKS(path string) ([]crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: JWKS file: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("identity: JWKS file %s: %w", path, err)
	}
	var keys []crypto.PublicKey
	for _, k := range set.Keys {
		if k.IsPublic() && k.Valid() {
			keys = append(keys, k.Key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("identity: JWKS file %s holds no public key", path)
	}
	return keys, nil
}

func (v *Verifier) forAudience(aud string) *oidc.IDTokenVerifier {
	v.mu.Lock()
	defer v.mu.Unlock()
	if iv, ok := v.per[aud]; ok {
		return iv
	}
	iv := oidc.NewVerifier(v.cfg.Issuer, v.keys, &oidc.Config{
		ClientID: aud, SupportedSigningAlgs: SigningAlgorithms, Now: v.cfg.Now,
	})
	v.per[aud] = iv
	return iv
}

// Verify checks raw for audience and returns its claims. Every error wraps
// ErrUnauthenticated.
func (v *Verifier) Verify(ctx context.Context, raw, audience string) (*Claims, error) {
	if raw == "" {
		return nil, ErrNoToken
	}
	if audience == "" {
		return nil, fmt.Errorf("%w: no audience to check the token against", ErrUnauthenticated)
	}
	t, err := v.forAudience(audience).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if t.Subject == "" {
		return nil, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	return &Claims{Subject: t.Subject, Issuer: t.Issuer, Audience: t.Audience, Expiry: t.Expiry}, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header,
// or "" when there is none.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// FileToken reads the token from path on every call, as a projected
// ServiceAccount token must be read: the kubelet rotates the file in place.
func FileToken(path string) TokenSource {
	return TokenFunc(func(context.Context) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("identity: read token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("identity: token file %s is empty", path)
		}
		return tok, nil
	})
}
