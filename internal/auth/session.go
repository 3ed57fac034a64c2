package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Sessions are refresh-token families in Redis.
//
// A login starts a family; every refresh rotates: the presented token is
// marked rotated and a new one becomes the family's current token. Presenting
// a rotated-out token again is a replay (RFC 9700 §4.14.2) and deletes the
// family, so every token of it — including the thief's or the victim's newer
// one — stops working. One exception, the grace window: for Grace after a
// rotation, the immediately previous token returns the same successor (still
// current), so two tabs or a retried request that raced the first refresh are
// not logged out. The successor is stored encrypted under a key derived from
// the previous token, so only a holder of that token can read it.
//
// Keys (only SHA-256 hashes of tokens are stored):
//
//	auth:rt:<hash>   hash  fam, uid, st (a|r), rot (ms), succ (sealed), sh
//	auth:fam:<id>    hash  uid, cur (hash of the current token), created
//	auth:ufam:<uid>  set   family ids of the user (for logout-all)
//
// The scripts touch keys they are not passed, so this needs a single Redis
// (or Redis with all keys in one slot), not a cluster.
type Sessions struct {
	Redis *redis.Client
	TTL   time.Duration // idle lifetime of a family; default 30 days
	Grace time.Duration // default 10 s
	// ReuseWindow is how long a rotated-out token is remembered so that its
	// replay revokes the family (default 24 h, at most TTL). Later it is just
	// unknown: still refused, but no longer a reuse signal. Remembering every
	// rotated token for the whole session life would cost ~100 records per
	// active user per day. The window is measured on Now (the record's Redis
	// expiry, set to the same length, only reclaims its memory).
	ReuseWindow time.Duration
	// Now is the clock of the grace, reuse and rate-limit windows (time.Now
	// when nil); Redis's clock only expires idle families and spent records.
	Now func() time.Time
}

// Session outcomes callers branch on.
var (
	ErrRefreshUnknown = errors.New("refresh token unknown or expired")
	ErrRefreshRevoked = errors.New("refresh token's session was revoked")
	ErrRefreshReused  = errors.New("rotated-out refresh token presented again; session revoked")
)

// Rotation is the result of a successful refresh.
type Rotation struct {
	UserID   string
	FamilyID string
	Token    string // the new refresh token
	Grace    bool   // answered from the grace window
}

func (s *Sessions) ttl() time.Duration {
	if s.TTL == 0 {
		return 30 * 24 * time.Hour
	}
	return s.TTL
}

func (s *Sessions) reuseWindow() time.Duration {
	w := s.ReuseWindow
	if w == 0 {
		w = 24 * time.Hour
	}
	return min(w, s.ttl())
}

func (s *Sessions) grace() time.Duration {
	if s.Grace == 0 {
		return 10 * time.Second
	}
	return s.Grace
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func rtKey(h [32]byte) string   { return "auth:rt:" + hex.EncodeToString(h[:]) }
func famKey(id string) string   { return "auth:fam:" + id }
func userKey(uid string) string { return "auth:ufam:" + uid }

var startScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'fam', ARGV[1], 'uid', ARGV[2], 'st', 'a')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'uid', ARGV[2], 'cur', ARGV[3], 'created', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 1`)

// Start begins a family for uid and returns its first refresh token.
func (s *Sessions) Start(ctx context.Context, uid string) (tok, family string, err error) {
	tok = NewSecret(KindRefresh)
	h, _ := ParseSecret(KindRefresh, tok)
	family = uuid.NewString()
	err = startScript.Run(ctx, s.Redis, []string{rtKey(h), famKey(family), userKey(uid)},
		family, uid, hex.EncodeToString(h[:]), s.ttl().Milliseconds(), s.now().UnixMilli()).Err()
	if err != nil {
		return "", "", fmt.Errorf("store session: %w", err)
	}
	return tok, family, nil
}

// rotateScript: KEYS rt:old rt:new ip-limit; ARGV now_ms grace_ms ttl_ms
// new_hash sealed old_hash ip_max ip_keep_ms acct_prefix acct_max
// acct_keep_ms reuse_ms acct_window. The rate limits are counted first, in
// the same script, so a refresh is one Redis round trip and a throttled
// request rotates nothing. Every time decision compares now_ms (the service's
// clock) with stored times: the grace window, the reuse window and the limit
// windows (named by their keys, see Limit). Redis's own expiry only reclaims
// memory — and ends a family idle for ttl_ms.
var rotateScript = redis.NewScript(`
local function limited(key, max, keep)
  if tonumber(max) <= 0 then return false end
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, keep) end
  return n > tonumber(max)
end
if limited(KEYS[3], ARGV[7], ARGV[8]) then return {'limited', 'ip'} end
local v = redis.call('HMGET', KEYS[1], 'fam', 'uid', 'st', 'rot', 'succ', 'sh')
if not v[1] then return {'unknown'} end
if v[3] == 'r' and tonumber(ARGV[1]) - tonumber(v[4]) > tonumber(ARGV[12]) then return {'unknown'} end
if limited(ARGV[9] .. v[2] .. ARGV[13], ARGV[10], ARGV[11]) then return {'limited', 'account', v[2]} end
local fk = 'auth:fam:' .. v[1]
local cur = redis.call('HGET', fk, 'cur')
if not cur then return {'revoked', v[2], v[1]} end
if v[3] == 'a' and cur == ARGV[6] then
  redis.call('HSET', KEYS[1], 'st', 'r', 'rot', ARGV[1], 'succ', ARGV[5], 'sh', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[12])
  redis.call('HSET', KEYS[2], 'fam', v[1], 'uid', v[2], 'st', 'a')
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('HSET', fk, 'cur', ARGV[4])
  redis.call('PEXPIRE', fk, ARGV[3])
  redis.call('PEXPIRE', 'auth:ufam:' .. v[2], ARGV[3])
  return {'ok', v[2], v[1]}
end
if v[3] == 'r' and tonumber(ARGV[1]) - tonumber(v[4]) <= tonumber(ARGV[2]) and cur == v[6] then
  return {'grace', v[2], v[1], v[5]}
end
redis.call('DEL', fk)
redis.call('SREM', 'auth:ufam:' .. v[2], v[1])
return {'reuse', v[2], v[1]}`)

// Throttle are the rate limits a refresh is counted against, atomically with
// the rotation: per client address (IP, keyed by IPSubject) and per account
// (the token's user). A zero Limit is not checked.
type Throttle struct {
	IP        Limit
	IPSubject string
	Account   Limit
}

// LimitedError is a refresh refused by a Throttle limit.
type LimitedError struct {
	Limit      Limit
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string { return "rate limit " + e.Limit.Name + " exceeded" }

// Rotate exchanges tok for its successor. Errors: ErrSecretFormat,
// *LimitedError, ErrRefreshUnknown, ErrRefreshRevoked, ErrRefreshReused (the
// family is gone).
func (s *Sessions) Rotate(ctx context.Context, tok string, th Throttle) (Rotation, error) {
	h, err := ParseSecret(KindRefresh, tok)
	if err != nil {
		return Rotation{}, err
	}
	next := NewSecret(KindRefresh)
	nh, _ := ParseSecret(KindRefresh, next)
	sealed, err := seal(tok, next)
	if err != nil {
		return Rotation{}, err
	}
	now := s.now()
	ipWin, ipLeft, ipKeep := th.IP.window(now)
	acctWin, acctLeft, acctKeep := th.Account.window(now)
	res, err := rotateScript.Run(ctx, s.Redis, []string{rtKey(h), rtKey(nh), limitKey(th.IP, th.IPSubject) + ipWin},
		now.UnixMilli(), s.grace().Milliseconds(), s.ttl().Milliseconds(),
		hex.EncodeToString(nh[:]), sealed, hex.EncodeToString(h[:]),
		th.IP.Max, ipKeep.Milliseconds(),
		"auth:rl:"+th.Account.Name+":", th.Account.Max, acctKeep.Milliseconds(),
		s.reuseWindow().Milliseconds(), acctWin).StringSlice()
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate session: %w", err)
	}
	switch res[0] {
	case "ok":
		return Rotation{UserID: res[1], FamilyID: res[2], Token: next}, nil
	case "grace":
		succ, err := open(tok, res[3])
		if err != nil {
			return Rotation{}, fmt.Errorf("open grace successor: %w", err)
		}
		return Rotation{UserID: res[1], FamilyID: res[2], Token: succ, Grace: true}, nil
	case "revoked":
		return Rotation{UserID: res[1], FamilyID: res[2]}, ErrRefreshRevoked
	case "reuse":
		return Rotation{UserID: res[1], FamilyID: res[2]}, ErrRefreshReused
	case "limited":
		if res[1] == "account" {
			return Rotation{UserID: res[2]}, &LimitedError{Limit: th.Account, RetryAfter: acctLeft}
		}
		return Rotation{}, &LimitedError{Limit: th.IP, RetryAfter: ipLeft}
	}
	return Rotation{}, ErrRefreshUnknown
}

var revokeScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'fam', 'uid')
if not v[1] then return {} end
redis.call('DEL', 'auth:fam:' .. v[1])
redis.call('SREM', 'auth:ufam:' .. v[2], v[1])
return {v[2], v[1]}`)

// Revoke ends the family tok belongs to (logout). An unknown token is not an
// error: the session is gone either way. It returns the user id when known.
func (s *Sessions) Revoke(ctx context.Context, tok string) (string, error) {
	h, err := ParseSecret(KindRefresh, tok)
	if err != nil {
		return "", err
	}
	res, err := revokeScript.Run(ctx, s.Redis, []string{rtKey(h)}).StringSlice()
	if err != nil {
		return "", fmt.Errorf("revoke session: %w", err)
	}
	if len(res) == 0 {
		return "", nil
	}
	return res[0], nil
}

var revokeAllScript = redis.NewScript(`
local fams = redis.call('SMEMBERS', KEYS[1])
for _, f in ipairs(fams) do redis.call('DEL', 'auth:fam:' .. f) end
redis.call('DEL', KEYS[1])
return #fams`)

// RevokeAll ends every family of uid (logout everywhere, password reset) and
// returns how many there were.
func (s *Sessions) RevokeAll(ctx context.Context, uid string) (int, error) {
	n, err := revokeAllScript.Run(ctx, s.Redis, []string{userKey(uid)}).Int()
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s: %w", uid, err)
	}
	return n, nil
}

// seal encrypts next with AES-256-GCM under SHA-256(domain || prev).
func seal(prev, next string) (string, error) {
	aead, err := graceAEAD(prev)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("grace nonce: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(next), nil)), nil
}

func open(prev, sealed string) (string, error) {
	aead, err := graceAEAD(prev)
	if err != nil {
		return "", err
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < aead.NonceSize() {
		return "", errors.New("sealed successor malformed")
	}
	pt, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], nil)
	if err != nil {
		return "", fmt.Errorf("sealed successor: %w", err)
	}
	return string(pt), nil
}

func graceAEAD(prev string) (cipher.AEAD, error) {
	k := sha256.Sum256([]byte("overture refresh grace\x00" + prev))
	b, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("grace cipher: %w", err)
	}
	return cipher.NewGCM(b)
}
