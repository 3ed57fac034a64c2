package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is a fixed-window rate limit: at most Max attempts per Window for one
// subject (an account or a client address). Fixed windows are one INCR per
// attempt and good enough against password guessing; the worst case is 2×Max
// attempts across a window boundary, which the documented limits account for.
type Limit struct {
	Name   string // "login-account", "login-ip", …
	Max    int
	Window time.Duration
}

// Limiter counts attempts in Redis so every replica shares the counts.
type Limiter struct{ Redis *redis.Client }

var limitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`)

// Allow counts one attempt of subject against l. When the limit is exceeded it
// returns false and how long until the window resets. Subjects are hashed, so
// keys carry no email addresses.
func (lm Limiter) Allow(ctx context.Context, l Limit, subject string) (bool, time.Duration, error) {
	if l.Max <= 0 {
		return true, 0, nil
	}
	res, err := limitScript.Run(ctx, lm.Redis, []string{limitKey(l, subject)}, l.Window.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", l.Name, err)
	}
	if res[0] > int64(l.Max) {
		return false, time.Duration(res[1]) * time.Millisecond, nil
	}
	return true, 0, nil
}

// limitKey is where attempts of subject against l are counted.
func limitKey(l Limit, subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return "auth:rl:" + l.Name + ":" + hex.EncodeToString(sum[:12])
}
