package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/identity/identitytest"
)

var aud = identity.BrokerAudience("overture", "default")

func TestSubjects(t *testing.T) {
	t.Parallel()
	if got := identity.Subject("user"); got != "system:serviceaccount:overture:user" {
		t.Errorf("Subject = %q", got)
	}
	if got := aud; got != "eventing.knative.dev/broker/overture/default" {
		t.Errorf("BrokerAudience = %q", got)
	}
	for sub, want := range map[string]bool{
		"system:serviceaccount:overture:user": true,
		"system:serviceaccount:overture:":     false,
		"system:serviceaccount::user":         false,
		"system:serviceaccount:a:b:c":         false,
		"user":                                false,
	} {
		if _, _, ok := identity.ParseServiceAccount(sub); ok != want {
			t.Errorf("ParseServiceAccount(%q) ok = %v, want %v", sub, ok, want)
		}
	}
}

// forge signs claims with a key the verifier does not trust, or (alg none)
// with none at all.
func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerify is what the broker ingress relies on: a token counts only when
// the trusted issuer signed it, for this broker, and it has not expired.
func TestVerify(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	is := identity.NewIssuer(identity.EmbeddedIssuer, key)
	v, err := identity.NewVerifier(context.Background(), identity.VerifierConfig{Issuer: identity.EmbeddedIssuer, Keys: []crypto.PublicKey{is.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	a := &identitytest.Authority{Issuer: is, Verifier: v}
	other := identitytest.New(t)
	ctx := context.Background()
	sub := identity.Subject("user")
	valid := jwt.MapClaims{"iss": identity.EmbeddedIssuer, "sub": sub, "aud": aud, "exp": time.Now().Add(time.Hour).Unix()}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload, _ := json.Marshal(valid)
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"Valid", a.TokenFor(t, sub, aud, time.Minute), true},
		{"Expired", a.TokenFor(t, sub, aud, -time.Minute), false},
		{"WrongAudience", a.TokenFor(t, sub, identity.BrokerAudience("overture", "other"), time.Minute), false},
		{"OtherIssuersKey", other.TokenFor(t, sub, aud, time.Minute), false},
		{"WrongIssuerClaim", forge(t, jwt.SigningMethodEdDSA, key, jwt.MapClaims{"iss": "https://evil", "sub": sub, "aud": aud, "exp": time.Now().Add(time.Hour).Unix()}), false},
		{"NoExpiry", forge(t, jwt.SigningMethodEdDSA, key, jwt.MapClaims{"iss": identity.EmbeddedIssuer, "sub": sub, "aud": aud}), false},
		{"NoSubject", forge(t, jwt.SigningMethodEdDSA, key, jwt.MapClaims{"iss": identity.EmbeddedIssuer, "aud": aud, "exp": time.Now().Add(time.Hour).Unix()}), false},
		{"AlgNone", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid), false},
		{"AlgNoneHandMade", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", false},
		{"ES256UntrustedKey", forge(t, jwt.SigningMethodES256, ec, valid), false},
		{"TamperedPayload", tamper(a.TokenFor(t, sub, aud, time.Minute), identity.Subject("payment")), false},
		{"Garbage", "not.a.jwt", false},
		{"Empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := a.Verifier.Verify(ctx, tt.token, aud)
			if tt.ok {
				if err != nil || c.Subject != sub {
					t.Fatalf("Verify = %+v, %v; want subject %s", c, err, sub)
				}
				return
			}
			if err == nil || !errors.Is(err, identity.ErrUnauthenticated) {
				t.Fatalf("Verify = %+v, %v; want ErrUnauthenticated", c, err)
			}
		})
	}
}

func tamper(tok, sub string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["sub"] = sub
	b, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// TestIssuerKeyPersists: the key under the data directory survives a
// restart, so tokens minted before still verify; the file is private.
func TestIssuerKeyPersists(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identity", "issuer.pem")
	a, err := identity.LoadOrCreateIssuer(path, identity.EmbeddedIssuer)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, mode %v; want 0600", err, st.Mode())
	}
	tok, err := a.Mint(identity.Subject("cdc"), aud, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, err := identity.LoadOrCreateIssuer(path, identity.EmbeddedIssuer)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := identity.NewVerifier(context.Background(), identity.VerifierConfig{Issuer: identity.EmbeddedIssuer, Keys: []crypto.PublicKey{b.PublicKey()}})
	if c, err := v.Verify(context.Background(), tok, aud); err != nil || c.Subject != identity.Subject("cdc") {
		t.Fatalf("token of the first run: %+v, %v", c, err)
	}
}

// TestVerifierJWKS: the cluster path — keys from a JWKS URL or file.
func TestVerifierJWKS(t *testing.T) {
	t.Parallel()
	a := identitytest.New(t)
	tok := a.Token(t, "notification")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.Issuer.JWKS())
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, a.Issuer.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]identity.VerifierConfig{
		"url":  {Issuer: identity.EmbeddedIssuer, JWKSURL: srv.URL},
		"file": {Issuer: identity.EmbeddedIssuer, JWKSFile: file},
	} {
		v, err := identity.NewVerifier(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c, err := v.Verify(context.Background(), tok, aud); err != nil || c.Subject != identity.Subject("notification") {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
		if _, err := v.Verify(context.Background(), identitytest.New(t).Token(t, "notification"), aud); err == nil {
			t.Errorf("%s: accepted a token of another issuer", name)
		}
	}
	if _, err := identity.NewVerifier(context.Background(), identity.VerifierConfig{Issuer: "x"}); err == nil {
		t.Error("a verifier without keys was built")
	}
}

// TestFileTokenIsReadOnEveryCall: a rotated token file is used at once.
func TestFileTokenIsReadOnEveryCall(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	src := identity.FileToken(path)
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("no file, no error")
	}
	for _, tok := range []string{"one", "two"} {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := src.Token(context.Background()); err != nil || got != tok {
			t.Fatalf("Token = %q, %v; want %q", got, err, tok)
		}
	}
}

// FuzzVerify feeds arbitrary tokens to the verifier: never a panic, never a
// subject out of something the issuer did not sign.
func FuzzVerify(f *testing.F) {
	a := identitytest.New(f)
	f.Add(a.Token(f, "user"))
	f.Add(tamper(a.Token(f, "user"), identity.Subject("cdc")))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := a.Verifier.Verify(context.Background(), tok, aud)
		if err != nil {
			if !errors.Is(err, identity.ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
			}
			return
		}
		if c.Subject != identity.Subject("user") {
			t.Fatalf("verified a token the issuer never minted: %+v", c)
		}
	})
}
