package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/token"
)

// TestAccessTokenAttacks presents forged or unfit access tokens to a
// protected route; each is refused with a problem naming the reason, and the
// refusal is logged without the token.
func TestAccessTokenAttacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.registerConfirmed("sec@example.com", "security password")
	good := e.login("sec@example.com", "security password").str("access_token")
	key, err := e.svc.Keys().Current()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(mod func(*token.Claims)) *token.Claims {
		c := &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: e.srv.URL, Subject: id, Audience: jwt.ClaimStrings{"overture"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: "jti-1"},
			Roles: []string{"listener"}}
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
	kid := key.ID
	withMethod := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, claims(nil))
		tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stranger, _ := token.NewKey("stranger")
	tampered := func() string {
		p := strings.Split(good, ".")
		b, _ := base64.RawURLEncoding.DecodeString(p[1])
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["roles"] = []string{"listener", "admin"}
		b, _ = json.Marshal(m)
		p[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(p, ".")
	}
	tests := []struct {
		name, tok, detail string
	}{
		{"AlgNone", withMethod(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), token.ErrAlgorithm.Error()},
		{"HS256WithPublicKey", withMethod(jwt.SigningMethodHS256, []byte(key.Public())), token.ErrAlgorithm.Error()},
		{"UnknownKid", sign(stranger, claims(nil)), token.ErrUnknownKey.Error()},
		{"Expired", sign(key, claims(func(c *token.Claims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)), jwt.NewNumericDate(now.Add(-30*time.Minute))
		})), token.ErrExpired.Error()},
		{"WrongAudience", sign(key, claims(func(c *token.Claims) { c.Audience = jwt.ClaimStrings{"payments"} })), token.ErrAudience.Error()},
		{"WrongIssuer", sign(key, claims(func(c *token.Claims) { c.Issuer = "https://evil.example" })), token.ErrIssuer.Error()},
		{"TamperedPayload", tampered(), token.ErrSignature.Error()},
		{"Garbage", "a.b", token.ErrMalformed.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.secret(tt.tok)
			r := e.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+tt.tok).want(t, 401, "invalid-token")
			if !strings.Contains(r.str("detail"), tt.detail) {
				t.Fatalf("detail %q, want it to name %q", r.str("detail"), tt.detail)
			}
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate challenge")
			}
		})
	}
	e.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+good).want(t, 200, "")
	// Each refusal was logged (with its reason, never the token: see
	// assertNoSecretsLogged, which runs at cleanup).
	if n := strings.Count(e.logs.String(), `"problem":"/problems/invalid-token"`); n != len(tests) {
		t.Fatalf("%d refusals logged, want %d", n, len(tests))
	}
}

// TestKeyRotation: a rotated-out key stays in the JWKS, and its tokens keep
// verifying, until every token it signed has expired; the new key is
// published before it signs.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.registerConfirmed("keys@example.com", "key rotation pw")
	old := e.login("keys@example.com", "key rotation pw").str("access_token")
	ring := e.svc.Keys()
	k1, _ := ring.Current()

	clock := time.Now()
	ring.Now = func() time.Time { return clock }
	ctx := context.Background()
	if err := ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kids := func() []string {
		var set token.JWKS
		r := e.do("GET", "/.well-known/jwks.json", nil).want(t, 200, "")
		_ = json.Unmarshal([]byte(r.Raw), &set)
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.Kid)
		}
		return ids
	}
	if ks := kids(); len(ks) != 2 {
		t.Fatalf("after rotation the JWKS has %v, want the new and the old key", ks)
	}
	if cur, _ := ring.Current(); cur.ID != k1.ID {
		t.Fatal("a brand-new key signs before verifiers could have fetched it")
	}
	clock = clock.Add(ring.PublishDelay + time.Second)
	k2, _ := ring.Current()
	if k2.ID == k1.ID {
		t.Fatal("the new key does not sign after the publish delay")
	}
	fresh := e.login("keys@example.com", "key rotation pw").str("access_token")
	if header(t, fresh)["kid"] != k2.ID {
		t.Fatalf("new token signed by %v, want %s", header(t, fresh)["kid"], k2.ID)
	}
	e.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+old).want(t, 200, "")
	if c := e.claims(old); c.Subject != id {
		t.Fatal("old token no longer verifies through the JWKS")
	}
	// Past the old key's last token expiry (+leeway) it leaves the JWKS.
	clock = clock.Add(ring.TokenTTL + ring.Leeway + time.Second)
	if err := ring.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if ks := kids(); len(ks) != 1 || ks[0] != k2.ID {
		t.Fatalf("JWKS %v, want only %s", ks, k2.ID)
	}
	e.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+old).want(t, 401, "invalid-token")

	// A second replica sharing the database sees the same keys.
	other := auth.New()
	other.Log = e.svc.Log
	other.Argon2 = testArgon
	if err := other.Start(ctx, e.cfg); err != nil {
		t.Fatal(err)
	}
	defer other.Stop(ctx)
	other.Keys().Now = ring.Now
	if err := other.Keys().Load(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := other.Keys().Current(); c.ID != k2.ID {
		t.Fatalf("replica signs with %s, want %s", c.ID, k2.ID)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"AUTH_ISSUER": "https://id.overture.test"})
	r := e.do("GET", "/.well-known/openid-configuration", nil).want(t, 200, "")
	if r.str("issuer") != "https://id.overture.test" || r.str("jwks_uri") != e.srv.URL+"/.well-known/jwks.json" {
		t.Fatalf("discovery %v", r.Body)
	}
	j := e.do("GET", r.str("jwks_uri")[len(e.srv.URL):], nil).want(t, 200, "")
	keys, _ := j.Body["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["crv"] != "Ed25519" || keys[0].(map[string]any)["d"] != nil {
		t.Fatalf("jwks %v", j.Body)
	}
}

func TestOutcomeMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	before := testutil.ToFloat64(auth.Outcomes().WithLabelValues("/v1/auth/login", "invalid-credentials"))
	e.do("POST", "/v1/auth/login", map[string]string{"email": "nobody@example.com", "password": "whatever pw"}).want(t, 401, "")
	if got := testutil.ToFloat64(auth.Outcomes().WithLabelValues("/v1/auth/login", "invalid-credentials")); got < before+1 {
		t.Fatalf("invalid-credentials counter %v → %v", before, got)
	}
}
