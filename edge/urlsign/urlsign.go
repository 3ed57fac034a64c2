// Package urlsign is the signed-URL token shared by the steering service (which
// mints tokens) and the edge POPs (which check them). One token covers a key
// prefix, a track's media prefix (tracks/<id>/<version>/), so a listener gets
// one token for the master playlist, every variant playlist, init section and
// segment of the track instead of one per object, in the style of Akamai
// EdgeAuth's ACL tokens. Standard HLS players do not copy a playlist's query
// string onto the URIs inside it, so the POP rewrites every playlist it serves
// to carry the request's token (edge/playlist.go). Keys carry an id so several
// can be active while one rotates out.
//
// Wire format (query parameter "t"), fields separated by '.':
//
//	v2.<kid>.<issued unix s>.<expiry unix s>.<flags>.<b64url(prefix)>.<b64url(premium paths)>.<b64url(client ip)>.<b64url(hmac)>
//
// flags is "-" or a subset of "pl" in that order: p = everything under the
// prefix needs premium, l = the listener had premium when steering signed.
// The premium paths (newline-joined, relative to the prefix) are the
// renditions the catalog marks premium. The HMAC-SHA256 covers every field
// before it, newline-joined. The issue time lets a POP refuse tokens issued
// before a revocation of their track (see edge's revocation list).
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

const version = "v2"

// Errors callers branch on: ErrExpired maps to 410, the others to 403.
var (
	ErrMalformed  = errors.New("signed URL token is malformed")
	ErrUnknownKey = errors.New("signed URL token names an unknown key")
	ErrSignature  = errors.New("signed URL token signature is invalid")
	ErrExpired    = errors.New("signed URL token has expired")
	ErrScope      = errors.New("signed URL token does not cover this object")
	ErrClientAddr = errors.New("signed URL token is bound to another client address")
)

// Token grants access to every object whose key starts with Prefix from
// Issued until Expires.
type Token struct {
	KeyID   string
	Issued  time.Time // second precision; Sign fills in the current time when zero
	Expires time.Time // second precision
	Prefix  string
	// PremiumPaths are paths below Prefix (a rendition's directory such as
	// "aac256/", or a file such as "flac/track.flac") that need premium:
	// the catalog's premium flag of each rendition, carried here so the POP
	// needs no catalog lookup per request.
	PremiumPaths []string
	ClientIP     string // "" = any client
	// Premium: every object under Prefix needs premium.
	Premium bool
	// ListenerPremium: the listener had the premium entitlement when the
	// token was signed, so it may open premium objects under Prefix.
	ListenerPremium bool
	sig             []byte
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
	switch {
	case t.Premium && t.ListenerPremium:
		return "pl"
	case t.Premium:
		return "p"
	case t.ListenerPremium:
		return "l"
	}
	return "-"
}

func (t Token) mac(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(version + "\n" + t.KeyID + "\n" + strconv.FormatInt(t.Issued.Unix(), 10) + "\n" + strconv.FormatInt(t.Expires.Unix(), 10) +
		"\n" + t.flags() + "\n" + t.Prefix + "\n" + strings.Join(t.PremiumPaths, "\n") + "\n" + t.ClientIP))
	return m.Sum(nil)
}

// validPremiumPath refuses paths that would be ambiguous once joined.
func validPremiumPath(p string) bool {
	return p != "" && !strings.ContainsAny(p, "\n\x00") && !strings.HasPrefix(p, "/")
}

// Sign returns the encoded token t signed with secret under t.KeyID.
func Sign(secret []byte, t Token) (string, error) {
	if !validKID(t.KeyID) {
		return "", fmt.Errorf("%w: key id %q", ErrMalformed, t.KeyID)
	}
	if t.Prefix == "" {
		return "", fmt.Errorf("%w: empty prefix would cover every object", ErrMalformed)
	}
	for _, p := range t.PremiumPaths {
		if !validPremiumPath(p) {
			return "", fmt.Errorf("%w: premium path %q", ErrMalformed, p)
		}
	}
	if len(secret) < 16 {
		return "", fmt.Errorf("urlsign: secret of key %q is shorter than 16 bytes", t.KeyID)
	}
	if t.Issued.IsZero() {
		t.Issued = time.Now()
	}
	if t.Issued.Unix() <= 0 || t.Expires.Unix() <= 0 {
		return "", fmt.Errorf("%w: issue and expiry times must be after 1970", ErrMalformed)
	}
	enc := base64.RawURLEncoding
	return strings.Join([]string{version, t.KeyID, strconv.FormatInt(t.Issued.Unix(), 10), strconv.FormatInt(t.Expires.Unix(), 10), t.flags(),
		enc.EncodeToString([]byte(t.Prefix)), enc.EncodeToString([]byte(strings.Join(t.PremiumPaths, "\n"))),
		enc.EncodeToString([]byte(t.ClientIP)), enc.EncodeToString(t.mac(secret))}, "."), nil
}

// Sign signs t with the key t.KeyID names.
func (k Keys) Sign(t Token) (string, error) {
	secret, ok := k[t.KeyID]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownKey, t.KeyID)
	}
	return Sign(secret, t)
}

func parseUnix(s string) (time.Time, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || s[0] == '+' || (len(s) > 1 && s[0] == '0') {
		return time.Time{}, false
	}
	return time.Unix(v, 0), true
}

// Parse decodes s without checking its signature.
func Parse(s string) (Token, error) {
	if len(s) > 4096 {
		return Token{}, fmt.Errorf("%w: too long", ErrMalformed)
	}
	f := strings.Split(s, ".")
	if len(f) != 9 || f[0] != version {
		return Token{}, fmt.Errorf("%w: want 9 fields starting with %s", ErrMalformed, version)
	}
	var t Token
	if t.KeyID = f[1]; !validKID(t.KeyID) {
		return Token{}, fmt.Errorf("%w: bad key id", ErrMalformed)
	}
	var ok bool
	if t.Issued, ok = parseUnix(f[2]); !ok {
		return Token{}, fmt.Errorf("%w: bad issue time", ErrMalformed)
	}
	if t.Expires, ok = parseUnix(f[3]); !ok {
		return Token{}, fmt.Errorf("%w: bad expiry", ErrMalformed)
	}
	switch f[4] {
	case "pl":
		t.Premium, t.ListenerPremium = true, true
	case "p":
		t.Premium = true
	case "l":
		t.ListenerPremium = true
	case "-":
	default:
		return Token{}, fmt.Errorf("%w: bad flags", ErrMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	p, err := enc.DecodeString(f[5])
	if err != nil || len(p) == 0 {
		return Token{}, fmt.Errorf("%w: bad prefix", ErrMalformed)
	}
	pp, err := enc.DecodeString(f[6])
	if err != nil {
		return Token{}, fmt.Errorf("%w: bad premium paths", ErrMalformed)
	}
	if len(pp) > 0 {
		t.PremiumPaths = strings.Split(string(pp), "\n")
		for _, x := range t.PremiumPaths {
			if !validPremiumPath(x) {
				return Token{}, fmt.Errorf("%w: bad premium path", ErrMalformed)
			}
		}
	}
	ip, err := enc.DecodeString(f[7])
	if err != nil {
		return Token{}, fmt.Errorf("%w: bad client address", ErrMalformed)
	}
	if t.sig, err = enc.DecodeString(f[8]); err != nil || len(t.sig) != sha256.Size {
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

// NeedsPremium reports whether key (covered by t) is a premium object: the
// whole prefix is premium, or key lies in one of the premium paths.
func (t Token) NeedsPremium(key string) bool {
	if t.Premium {
		return true
	}
	if len(t.PremiumPaths) == 0 || !strings.HasPrefix(key, t.Prefix) {
		return false
	}
	rel := key[len(t.Prefix):]
	for _, p := range t.PremiumPaths {
		if strings.HasPrefix(rel, p) && (len(rel) == len(p) || p[len(p)-1] == '/') {
			return true
		}
	}
	return false
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
