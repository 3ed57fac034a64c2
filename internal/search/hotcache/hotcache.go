// Package hotcache is the Redis cache in front of the search read model: track,
// album and artist cards and popular search pages.
//
// Invalidation is by generation, not by deleting keys. Every entity (a track,
// an album, an artist, a genre, and "search" for all result pages) has a
// counter in Redis; a cached value's key embeds the counters of the entities
// it was built from, read BEFORE the value was read from the index. The
// indexer bumps the counters AFTER its write is searchable. So:
//
//   - a reader that read the counters after a bump reads the index after the
//     write: what it caches is at least as new as the change;
//   - a reader that read the counters before the bump may cache an old value,
//     but under the old counter, a key no later reader asks for.
//
// Hence no reader is ever served a value older than the change that bumped
// its counters, without locks, and a lost bump (Redis restarted) only makes
// the counters start over at values whose keys are gone too.
package hotcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Entity names for counters.
func Track(id string) string  { return "track:" + id }
func Album(id string) string  { return "album:" + id }
func Artist(id string) string { return "artist:" + id }
func Genre(id string) string  { return "genre:" + id }

// Search is the counter of every cached search page: any applied change
// invalidates them all (they are cached for popular queries, briefly).
const Search = "search"

const prefix = "ov:search:"

// Cache is a generation-versioned cache on Redis.
type Cache struct {
	rdb *redis.Client
	// fills collapses concurrent misses of one versioned key into one read
	// of the index (a popular query after an invalidation).
	fills singleflight.Group
	// TTL bounds how long a value stays (memory, not correctness).
	TTL time.Duration
}

// Open connects to the Redis at url (redis://host:port/db).
func Open(ctx context.Context, url string) (*Cache, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("hot cache: parse REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("hot cache: ping %s: %w", opt.Addr, err)
	}
	return &Cache{rdb: rdb, TTL: 5 * time.Minute}, nil
}

// Close closes the connection pool.
func (c *Cache) Close() error { return c.rdb.Close() }

// Bump invalidates every cached value built from any of entities. Call it
// after the change is searchable.
func (c *Cache) Bump(ctx context.Context, entities ...string) error {
	if len(entities) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entities {
			p.Incr(ctx, prefix+"gen:"+e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hot cache: bump %d counters: %w", len(entities), err)
	}
	return nil
}

// key returns the versioned key of name built from deps, reading the
// counters now.
func (c *Cache) key(ctx context.Context, name string, deps []string) (string, error) {
	keys := make([]string, len(deps))
	for i, d := range deps {
		keys[i] = prefix + "gen:" + d
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(prefix + "v:" + name + "@")
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('.')
		}
		if s, ok := v.(string); ok {
			b.WriteString(s)
		} else {
			b.WriteByte('0')
		}
	}
	return b.String(), nil
}

// Outcome says where a value came from.
type Outcome int

const (
	Miss   Outcome = iota // built by fill and stored
	Hit                   // served from Redis
	Bypass                // Redis failed: built by fill, not stored
)

// Get returns the value named name, built from the entities deps, from the
// cache or else from fill (whose result is cached). A Redis failure never
// fails the read: the value is then built by fill (Bypass). Errors from fill
// are returned as they are and nothing is cached.
func Get[T any](ctx context.Context, c *Cache, name string, deps []string, fill func(context.Context) (T, error)) (T, Outcome, error) {
	if c == nil {
		v, err := fill(ctx)
		return v, Bypass, err
	}
	key, err := c.key(ctx, name, deps)
	if err != nil {
		v, err := fill(ctx)
		return v, Bypass, err
	}
	if b, err := c.rdb.Get(ctx, key).Bytes(); err == nil {
		var v T
		if json.Unmarshal(b, &v) == nil {
			return v, Hit, nil
		}
	} else if !errors.Is(err, redis.Nil) {
		v, err := fill(ctx)
		return v, Bypass, err
	}
	// Concurrent misses of the same versioned key share one fill: they all
	// read the same counters, so the leader's value (read after it saw
	// them) is as valid for every follower as for itself.
	shared, err, _ := c.fills.Do(key, func() (any, error) {
		// Not the leader's own deadline: followers wait on this fill too.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		v, err := fill(fctx)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("hot cache: encode %s: %w", name, err)
		}
		_ = c.rdb.Set(context.WithoutCancel(ctx), key, b, c.TTL).Err()
		return b, nil
	})
	var v T
	if err != nil {
		return v, Miss, err
	}
	if err := json.Unmarshal(shared.([]byte), &v); err != nil {
		return v, Miss, fmt.Errorf("hot cache: decode %s: %w", name, err)
	}
	return v, Miss, nil
}

// Generation returns the current counter of entity (for tests and metrics).
func (c *Cache) Generation(ctx context.Context, entity string) (int64, error) {
	s, err := c.rdb.Get(ctx, prefix+"gen:"+entity).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}
