package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// EmbeddedIssuer is the iss claim of the tokens the embedded platform mints.
const EmbeddedIssuer = "https://identity.overture.local"

// IssuerKeyFile is where the embedded platform keeps its issuer key under
// its data directory (make run: .data/identity/issuer.pem). Operator tools on
// the same machine mint tokens with it ([MintFromDataDir]).
func IssuerKeyFile(dataDir string) string { return filepath.Join(dataDir, "identity", "issuer.pem") }

// MintFromDataDir mints a token for the workload name on the default broker
// with the key of the platform whose data directory is dataDir: how an
// operator's tool (a benchmark driver, `overture events dlq redrive`) speaks
// to `make run`'s broker ingress. Whoever can read the data directory can
// already read and write the whole database, so this grants nothing new.
func MintFromDataDir(dataDir, name string) (string, error) {
	if _, err := os.Stat(IssuerKeyFile(dataDir)); err != nil {
		return "", fmt.Errorf("identity: no issuer key under %s (is it the data directory of a make run?): %w", dataDir, err)
	}
	is, err := LoadOrCreateIssuer(IssuerKeyFile(dataDir), EmbeddedIssuer)
	if err != nil {
		return "", err
	}
	return is.Mint(Subject(name), BrokerAudience(Namespace, "default"), DefaultTTL)
}

// Issuer mints workload identity tokens with an Ed25519 key: the embedded
// platform's stand-in for the cluster's ServiceAccount token issuer.
type Issuer struct {
	iss string
	kid string
	key ed25519.PrivateKey
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// NewIssuer returns an issuer named iss signing with key.
func NewIssuer(iss string, key ed25519.PrivateKey) *Issuer {
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	return &Issuer{iss: iss, key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12])}
}

// GenerateIssuer returns an issuer with a fresh key (one per run).
func GenerateIssuer(iss string) (*Issuer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return NewIssuer(iss, key), nil
}

// LoadOrCreateIssuer reads the issuer key from path (PKCS#8 PEM), creating it
// with mode 0600 when absent, so tokens minted by one run of the platform (and
// by operator tools reading the same data directory) stay valid in the next.
func LoadOrCreateIssuer(path, iss string) (*Issuer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		is, err := GenerateIssuer(iss)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(is.key)
		if err != nil {
			return nil, fmt.Errorf("identity: encode key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
				return LoadOrCreateIssuer(path, iss)
			}
			return nil, fmt.Errorf("identity: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			f.Close()
			return nil, fmt.Errorf("identity: write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("identity: write %s: %w", path, err)
		}
		return is, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: %s holds a %T, want an Ed25519 key", path, k)
	}
	return NewIssuer(iss, key), nil
}

// Issuer is the iss claim of the tokens.
func (is *Issuer) Issuer() string { return is.iss }

// PublicKey is the key that verifies the tokens.
func (is *Issuer) PublicKey() ed25519.PublicKey { return is.key.Public().(ed25519.PublicKey) }

func (is *Issuer) now() time.Time {
	if is.Now != nil {
		return is.Now()
	}
	return time.Now()
}

// Mint returns a token for subject and audience valid for ttl (DefaultTTL
// when 0), signed with EdDSA.
func (is *Issuer) Mint(subject, audience string, ttl time.Duration) (string, error) {
	if subject == "" || audience == "" {
		return "", errors.New("identity: mint: subject and audience are required")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := is.now()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{
		Issuer:    is.iss,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	})
	t.Header["kid"] = is.kid
	s, err := t.SignedString(is.key)
	if err != nil {
		return "", fmt.Errorf("identity: sign: %w", err)
	}
	return s, nil
}

// JWKS is the issuer's public key as a JSON Web Key Set (what a Knative
// cluster's issuer serves at its jwks_uri).
func (is *Issuer) JWKS() []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(is.PublicKey()),
		"kid": is.kid, "alg": "EdDSA", "use": "sig",
	}}})
	return b
}

// TokenSource returns a bearer token on demand.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenFunc adapts a function to [TokenSource].
type TokenFunc func(ctx context.Context) (string, error)

// Token calls f.
func (f TokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// Source returns a TokenSource minting tokens for subject and audience,
// reusing one until it is within a third of its lifetime of expiring.
func (is *Issuer) Source(subject, audience string) TokenSource {
	var mu sync.Mutex
	var tok string
	var renew time.Time
	return TokenFunc(func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok != "" && is.now().Before(renew) {
			return tok, nil
		}
		t, err := is.Mint(subject, audience, DefaultTTL)
		if err != nil {
			return "", err
		}
		tok, renew = t, is.now().Add(DefaultTTL*2/3)
		return tok, nil
	})
}
