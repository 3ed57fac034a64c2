package infra

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Redis is a private redis-server.
type Redis struct {
	*Process
	Port int
}

// URL returns the redis:// URL of database db.
func (r *Redis) URL(db int) string { return fmt.Sprintf("redis://127.0.0.1:%d/%d", r.Port, db) }

// RedisOptions configure StartRedis.
type RedisOptions struct {
	Dir     string
	Port    int
	Persist bool // append-only file in Dir; off for tests
	// MaxMemory bounds Redis's memory (redis-server syntax, e.g. "256mb";
	// DefaultRedisMaxMemory when empty). Past it Redis evicts by
	// RedisEvictionPolicy instead of growing until the machine swaps.
	MaxMemory string
}

// Redis memory bound and eviction. The instance holds both the query API's
// hot cache (entries live ≤5 min) and auth's state (refresh-token families
// for days, rate-limit windows, entitlements), so the policy is volatile-ttl:
// only keys with an expiry are evicted, soonest-to-expire first, which takes
// cache entries long before a session; keys without an expiry are never
// evicted (allkeys-* would log users out and reset rate limits under load).
const (
	DefaultRedisMaxMemory = "256mb"
	RedisEvictionPolicy   = "volatile-ttl"
)

// StartRedis starts redis-server on 127.0.0.1.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	maxmemory := o.MaxMemory
	if maxmemory == "" {
		maxmemory = DefaultRedisMaxMemory
	}
	appendonly := "no"
	if o.Persist {
		appendonly = "yes"
	}
	logPath := filepath.Join(o.Dir, "redis.log")
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ports := []int{o.Port}
	proc, err := startListening(wctx, logPath, ports, func(ports []int) (*Process, error) {
		return Start("redis", logPath, syscall.SIGTERM, nil, bin, "--bind", "127.0.0.1", "--port", itoa(ports[0]), "--dir", o.Dir,
			"--daemonize", "no", "--protected-mode", "yes", "--save", "", "--appendonly", appendonly,
			"--maxmemory", maxmemory, "--maxmemory-policy", RedisEvictionPolicy)
	})
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return &Redis{Process: proc, Port: ports[0]}, nil
}
