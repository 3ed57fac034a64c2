// Package token is how every Overture service trusts an access token: the
// claims Overture puts in its JWTs, signing with a key id, and verification
// against the auth service's JWKS with an algorithm allow-list.
//
// Access tokens are short-lived JWTs (typ at+jwt, RFC 9068) signed with EdDSA
// (Ed25519). Verification requires iss, aud, exp and a kid the JWKS publishes;
// anything else — alg none, HS256 keyed with the public key, unknown kid,
// expired, wrong audience, tampered payload — is rejected with a typed error.
package token

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Type is the JOSE typ header of an access token (RFC 9068).
const Type = "at+jwt"

// Roles.
const (
	RoleListener = "listener"
	RoleAdmin    = "admin"
)

// Claims are the claims of an Overture access token.
type Claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles"`
	// Premium is the premium entitlement at issue time; PremiumUntil its end.
	Premium      bool             `json:"premium"`
	PremiumUntil *jwt.NumericDate `json:"premium_until,omitempty"`
	// EntitlementVersion increases whenever the user's entitlements change, so a
	// service that must not trust a stale premium claim can compare it with the
	// current version (see the auth service).
	EntitlementVersion int64 `json:"ent_ver"`
}

// HasRole reports whether the token carries role.
func (c *Claims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// IsPremium reports whether the premium entitlement holds at now.
func (c *Claims) IsPremium(now time.Time) bool {
	if !c.Premium {
		return false
	}
	return c.PremiumUntil == nil || now.Before(c.PremiumUntil.Time)
}

// Key is a signing key with its key id.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// Public returns the key's public half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// NewKey generates an Ed25519 key with id.
func NewKey(id string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	return Key{ID: id, Private: priv}, nil
}

// Sign returns the compact JWS of claims signed with k.
func Sign(k Key, c *Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.ID
	t.Header["typ"] = Type
	s, err := t.SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// Verification errors callers can branch on (errors.Is).
var (
	ErrMissing      = errors.New("no access token")
	ErrMalformed    = errors.New("malformed access token")
	ErrAlgorithm    = errors.New("access token algorithm not allowed")
	ErrUnknownKey   = errors.New("access token signed with an unknown key")
	ErrSignature    = errors.New("access token signature invalid")
	ErrExpired      = errors.New("access token expired")
	ErrAudience     = errors.New("access token audience mismatch")
	ErrIssuer       = errors.New("access token issuer mismatch")
	ErrTokenType    = errors.New("not an access token (typ must be at+jwt)")
	ErrClaimMissing = errors.New("access token lacks a required claim")
)
