package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is a fixed-window rate limit: at most Max attempts per Window for one
// subject (an account or a client address). Fixed windows are one INCR per
// attempt and good enough against password guessing; the worst case is 2×Max
// attempts across a window boundary, which the documented limits account for.
//
// Windows are aligned to multiples of Window since the Unix epoch on the
// service's clock, and each window counts under its own Redis key: the clock,
// not Redis's expiry, decides when a window ends (so a fake clock moves it in
// tests). The key's Redis TTL only reclaims it once its window is over.
type Limit struct {
	Name   string // "login-account", "login-ip", …
	Max    int
	Window time.Duration
}

// window places now in l's fixed window: the key suffix that names it, how
// long until it ends (the Retry-After of a refused attempt), and the Redis TTL
// of its key. The TTL is one window longer than the window's rest, so
// replicas whose clocks trail by less than a window still find the count.
func (l Limit) window(now time.Time) (suffix string, left, keep time.Duration) {
	w := l.Window.Milliseconds()
	if w <= 0 {
		w = 1
	}
	ms := now.UnixMilli()
	idx := ms / w
	if ms < 0 && ms%w != 0 {
		idx-- // floor, for clocks before 1970
	}
	left = time.Duration((idx+1)*w-ms) * time.Millisecond
	return ":" + strconv.FormatInt(idx, 10), left, left + time.Duration(w)*time.Millisecond
}

// Limiter counts attempts in Redis so every replica shares the counts.
type Limiter struct {
	Redis *redis.Client
	// Now places an attempt in its window (time.Now when nil).
	Now func() time.Time
}

var limitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Allow counts one attempt of subject against l. When the limit is exceeded it
// returns false and how long until the window resets. Subjects are hashed, so
// keys carry no email addresses.
func (lm Limiter) Allow(ctx context.Context, l Limit, subject string) (bool, time.Duration, error) {
	if l.Max <= 0 {
		return true, 0, nil
	}
	now := time.Now
	if lm.Now != nil {
		now = lm.Now
	}
	win, left, keep := l.window(now())
	n, err := limitScript.Run(ctx, lm.Redis, []string{limitKey(l, subject) + win}, keep.Milliseconds()).Int64()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", l.Name, err)
	}
	if n > int64(l.Max) {
		return false, left, nil
	}
	return true, 0, nil
}

// limitKey is where attempts of subject against l are counted (followed by
// the window's suffix).
func limitKey(l Limit, subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return "auth:rl:" + l.Name + ":" + hex.EncodeToString(sum[:12])
}
