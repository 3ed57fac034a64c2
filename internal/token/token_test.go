package token_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/overture-music/overture/internal/token"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	auth := tokentest.New(t)
	v := auth.Verifier()
	good := auth.Token(t, "user-1", tokentest.Options{})
	ctx := context.Background()

	if c, err := v.Verify(ctx, good); err != nil || c.Subject != "user-1" {
		t.Fatalf("valid token refused: %v", err)
	}

	other, _ := token.NewKey("other")
	now := time.Now()
	claims := func(mod func(*token.Claims)) *token.Claims {
		c := &token.Claims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: tokentest.Issuer, Subject: "u", Audience: jwt.ClaimStrings{tokentest.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "j1",
		}, Roles: []string{"listener"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(k token.Key, c *token.Claims) string {
		s, err := token.Sign(k, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// forge signs claims with any method and key, under the authority's kid
	// and the given typ: how attackers try alg confusion and other types.
	forge := func(m jwt.SigningMethod, typ string, key any) string {
		tok := jwt.NewWithClaims(m, claims(nil))
		tok.Header["kid"] = auth.Key.ID
		tok.Header["typ"] = typ
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tampered := func() string {
		parts := strings.Split(good, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), `"roles":["listener"]`, `"roles":["admin"]`, 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}

	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"Empty", "", token.ErrMissing},
		{"Garbage", "not-a-token", token.ErrMalformed},
		{"AlgNone", forge(jwt.SigningMethodNone, token.Type, jwt.UnsafeAllowNoneSignatureType), token.ErrAlgorithm},
		{"HS256WithPublicKey", forge(jwt.SigningMethodHS256, token.Type, []byte(auth.Key.Public())), token.ErrAlgorithm},
		{"UnknownKid", sign(other, claims(nil)), token.ErrUnknownKey},
		{"Expired", sign(auth.Key, claims(func(c *token.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
			c.IssuedAt = jwt.NewNumericDate(now.Add(-2 * time.Hour))
		})), token.ErrExpired},
		{"WrongAudience", sign(auth.Key, claims(func(c *token.Claims) { c.Audience = jwt.ClaimStrings{"someone-else"} })), token.ErrAudience},
		{"WrongIssuer", sign(auth.Key, claims(func(c *token.Claims) { c.Issuer = "https://evil.example" })), token.ErrIssuer},
		{"NoExpiry", sign(auth.Key, claims(func(c *token.Claims) { c.ExpiresAt = nil })), token.ErrClaimMissing},
		{"TamperedPayload", tampered(), token.ErrSignature},
		{"NotAnAccessToken", forge(jwt.SigningMethodEdDSA, "JWT", auth.Key.Private), token.ErrTokenType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(ctx, tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyRotationPickedUp(t *testing.T) {
	t.Parallel()
	auth := tokentest.New(t)
	v := auth.Verifier()
	v.Keys.(*token.RemoteKeys).MinRefresh = time.Nanosecond
	ctx := context.Background()
	if _, err := v.Verify(ctx, auth.Token(t, "u", tokentest.Options{})); err != nil {
		t.Fatal(err)
	}
	next, _ := token.NewKey("rotated")
	auth.Key = next // the JWKS now publishes the new key
	if _, err := v.Verify(ctx, auth.Token(t, "u", tokentest.Options{})); err != nil {
		t.Fatalf("token signed with a rotated-in key refused: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	auth := tokentest.New(t)
	v := auth.Verifier()
	h := v.Middleware(nil, token.RequireRole(token.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := token.FromContext(r.Context())
		_, _ = w.Write([]byte(c.Subject))
	})))
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"NoToken", "", http.StatusUnauthorized},
		{"Listener", "Bearer " + auth.Token(t, "l", tokentest.Options{}), http.StatusForbidden},
		{"Admin", "Bearer " + auth.Token(t, "a", tokentest.Options{Roles: []string{"admin"}}), http.StatusOK},
		{"BadToken", "Bearer x.y.z", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/v1/admin/x", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != http.StatusOK && w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("error content type = %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestPremium(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := token.Claims{Premium: true, PremiumUntil: jwt.NewNumericDate(now.Add(time.Hour))}
	if !c.IsPremium(now) || c.IsPremium(now.Add(2*time.Hour)) {
		t.Fatal("premium window not honoured")
	}
}

func FuzzVerify(f *testing.F) {
	k, _ := token.NewKey("k")
	v := &token.Verifier{Keys: token.StaticKeys{"k": k.Public()}, Issuer: "i", Audience: "a"}
	good, _ := token.Sign(k, &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "i", Subject: "s", ID: "j",
		Audience: jwt.ClaimStrings{"a"}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	for _, s := range []string{good, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err == nil && raw != good {
			// Only a correctly signed token may verify.
			if c.Subject != "s" {
				t.Fatalf("fuzzed token verified with subject %q", c.Subject)
			}
		}
	})
}
