// Package urlsign is the signed-URL token shared by the steering service (which
// mints tokens) and the edge POPs (which check them). One token covers a key
// prefix, so a listener gets one token for a whole HLS rendition (playlist and
// every segment) instead of one per object, in the style of Akamai EdgeAuth's
// ACL tokens. Keys carry an id so several can be active while one rotates out.
//
// Wire format (query parameter "t"), fields separated by '.':
//
//	v1.<kid>.<expiry unix seconds>.<flags>.<b64url(prefix)>.<b64url(client ip)>.<b64url(hmac)>
//
// flags is "-" or "p" (premium: the edge also demands a premium access token).
// The HMAC-SHA256 covers every field before it, newline-joined.
package urlsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Param is the query parameter that carries the token.
const Param = "t"

const version = "v1"

// Errors callers branch on: ErrExpired maps to 410, the others to 403.
var (
	ErrMalformed  = errors.New("signed URL token is malformed")
	ErrUnknownKey = errors.New("signed URL token names an unknown key")
	ErrSignature  = errors.New("signed URL token signature is invalid")
	ErrExpired    = errors.New("signed URL token has expired")
	ErrScope      = errors.New("signed URL token does not cover this object")
	ErrClientAddr = errors.New("signed URL token is bound to another client address")
)

// Token grants access to every object whose key starts with Prefix until Expires.
type Token struct {
	KeyID    string
	Expires  time.Time // second precision
	Prefix   string
	ClientIP string // "" = any client
	Premium  bool
	sig      []byte
}

// Keys maps key ids to HMAC secrets; every key in the map is accepted.
type Keys map[string][]byte

func validKID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (t Token) flags() string {
	if t.Premium {
		return "p"
	}
	return "-"
}

func (t Token) mac(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(version + "\n" + t.KeyID + "\n" + strconv.FormatInt(t.Expires.Unix(), 10) + "\n" + t.flags() + "\n" + t.Prefix + "\n" + t.ClientIP))
	return m.Sum(nil)
}

// Sign returns the encoded token t signed with secret under t.KeyID.
func Sign(secret []byte, t Token) (string, error) {
	if !validKID(t.KeyID) {
		return "", fmt.Errorf("%w: key id %q", ErrMalformed, t.KeyID)
	}
	if t.Prefix == "" {
		return "", fmt.Errorf("%w: empty prefix would cover every object", ErrMalformed)
	}
	if len(secret) < 16 {
		return "", fmt.Errorf("urlsign: secret of key %q is shorter than 16 bytes", t.KeyID)
	}
	enc := base64.RawURLEncoding
	return strings.Join([]string{version, t.KeyID, strconv.FormatInt(t.Expires.Unix(), 10), t.flags(),
		enc.EncodeToString([]byte(t.Prefix)), enc.EncodeToString([]byte(t.ClientIP)), enc.EncodeToString(t.mac(secret))}, "."), nil
}

// Sign signs t with the key t.KeyID names.
func (k Keys) Sign(t Token) (string, error) {
	secret, ok := k[t.KeyID]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownKey, t.KeyID)
	}
	return Sign(secret, t)
}

// Parse decodes s without checking its signature.
func Parse(s string) (Token, error) {
	if len(s) > 4096 {
		return Token{}, fmt.Errorf("%w: too long", ErrMalformed)
	}
	f := strings.Split(s, ".")
	if len(f) != 7 || f[0] != version {
		return Token{}, fmt.Errorf("%w: want 7 fields starting with %s", ErrMalformed, version)
	}
	var t Token
	if t.KeyID = f[1]; !validKID(t.KeyID) {
		return Token{}, fmt.Errorf("%w: bad key id", ErrMalformed)
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || exp <= 0 || f[2][0] == '+' || (len(f[2]) > 1 && f[2][0] == '0') {
		return Token{}, fmt.Errorf("%w: bad expiry", ErrMalformed)
	}
	t.Expires = time.Unix(exp, 0)
	switch f[3] {
	case "p":
		t.Premium = true
	case "-":
	default:
		return Token{}, fmt.Errorf("%w: bad flags", ErrMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	p, err := enc.DecodeString(f[4])
	if err != nil || len(p) == 0 {
		return Token{}, fmt.Errorf("%w: bad prefix", ErrMalformed)
	}
	ip, err := enc.DecodeString(f[5])
	if err != nil {
		return Token{}, fmt.Errorf("%w: bad client address", ErrMalformed)
	}
	if t.sig, err = enc.DecodeString(f[6]); err != nil || len(t.sig) != sha256.Size {
		return Token{}, fmt.Errorf("%w: bad signature encoding", ErrMalformed)
	}
	t.Prefix, t.ClientIP = string(p), string(ip)
	return t, nil
}

// Verify checks that s is a genuine, unexpired token covering key for a
// client at clientIP. A tampered token is ErrSignature even when it also
// looks expired, so only genuine tokens can earn a 410.
func (k Keys) Verify(s, key, clientIP string, now time.Time) (Token, error) {
	t, err := Parse(s)
	if err != nil {
		return Token{}, err
	}
	secret, ok := k[t.KeyID]
	if !ok {
		return Token{}, ErrUnknownKey
	}
	if !hmac.Equal(t.sig, t.mac(secret)) {
		return Token{}, ErrSignature
	}
	if err := t.Check(key, clientIP, now); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Check applies a verified token's limits (expiry, prefix, client address)
// to one request. Callers that cache verified tokens call it per request.
func (t Token) Check(key, clientIP string, now time.Time) error {
	if !now.Before(t.Expires) {
		return ErrExpired
	}
	if !strings.HasPrefix(key, t.Prefix) {
		return ErrScope
	}
	if t.ClientIP != "" && t.ClientIP != clientIP {
		return ErrClientAddr
	}
	return nil
}

// ParseKeys reads "kid:secret,kid:secret" (the CDN_SIGNING_KEYS setting) and
// returns the keys and the first key id, which signers use by default.
func ParseKeys(s string) (Keys, string, error) {
	keys := Keys{}
	first := ""
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kid, secret, ok := strings.Cut(part, ":")
		if !ok || !validKID(kid) || len(secret) < 16 {
			return nil, "", fmt.Errorf("signing key %q: want kid:secret with a secret of at least 16 characters", kid)
		}
		if _, dup := keys[kid]; dup {
			return nil, "", fmt.Errorf("signing key %q listed twice", kid)
		}
		keys[kid] = []byte(secret)
		if first == "" {
			first = kid
		}
	}
	if len(keys) == 0 {
		return nil, "", errors.New("no signing keys configured")
	}
	return keys, first, nil
}
