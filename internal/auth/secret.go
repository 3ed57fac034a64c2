package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// Opaque secrets (refresh tokens, confirmation and reset links, OAuth state)
// are a kind prefix, an underscore and 32 random bytes in unpadded base64url:
// "ort_" + 43 characters. The prefix makes a leaked secret recognisable (secret
// scanners) and stops one kind from being replayed as another; only the
// SHA-256 of a secret is ever stored.
const (
	KindRefresh = "ort" // refresh token
	KindConfirm = "oct" // email confirmation link
	KindReset   = "opr" // password reset link
	KindState   = "ost" // OAuth state
)

const secretBytes = 32

var secretLen = base64.RawURLEncoding.EncodedLen(secretBytes)

// ErrSecretFormat means a presented secret is not of the expected shape.
var ErrSecretFormat = errors.New("malformed token")

// NewSecret returns a fresh secret of kind.
func NewSecret(kind string) string {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return kind + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// ParseSecret checks that s is a well-formed secret of kind and returns the
// SHA-256 under which it is stored.
func ParseSecret(kind, s string) ([32]byte, error) {
	var zero [32]byte
	rest, ok := strings.CutPrefix(s, kind+"_")
	if !ok || len(rest) != secretLen {
		return zero, ErrSecretFormat
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != secretBytes {
		return zero, ErrSecretFormat
	}
	return sha256.Sum256([]byte(s)), nil
}
