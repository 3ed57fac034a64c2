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
}

// StartRedis starts redis-server on 127.0.0.1.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	args := []string{"--bind", "127.0.0.1", "--port", itoa(o.Port), "--dir", o.Dir, "--daemonize", "no", "--protected-mode", "yes", "--save", ""}
	if o.Persist {
		args = append(args, "--appendonly", "yes")
	} else {
		args = append(args, "--appendonly", "no")
	}
	proc, err := Start("redis", filepath.Join(o.Dir, "redis.log"), syscall.SIGTERM, nil, bin, args...)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := WaitTCP(wctx, proc, fmt.Sprintf("127.0.0.1:%d", o.Port)); err != nil {
		_ = proc.Stop(2 * time.Second)
		return nil, err
	}
	return &Redis{Process: proc, Port: o.Port}, nil
}
