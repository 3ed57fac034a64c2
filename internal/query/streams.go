package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/search"
)

// Stream counts on cards. The counts belong to the listens service (its
// statistics store); the query service owns no part of that store and never
// opens it, so it asks the listens service's public GET /v1/stream-counts
// over HTTP — once per answer, for every track on the card — and keeps each
// count in Redis for StreamCountTTL, so a popular card costs the listens
// service one request a minute. The counts are decoration: when the listens
// service is slow or down, cards are answered without them (no "streams"
// member) rather than late or not at all, and after a failure it is not
// asked again for StreamCountBackoff.

// Stream count settings.
const (
	// StreamCountTTL is how long a count is reused (the listens service
	// says the same in its Cache-Control).
	StreamCountTTL = time.Minute
	// StreamCountTimeout bounds the request to the listens service.
	StreamCountTimeout = time.Second
	// StreamCountBackoff is how long a failed listens service is left
	// alone.
	StreamCountBackoff = 5 * time.Second
	// streamCountBatch is how many ids one request carries (the listens
	// service's limit).
	streamCountBatch = 100
)

// StreamCounts reads tracks' all-time stream counts from the listens
// service, through a Redis cache.
type StreamCounts struct {
	// URL is the listens service's base URL (LISTENS_URL).
	URL string
	// Client makes the requests; nil is a client with StreamCountTimeout.
	Client *http.Client
	// Redis caches the counts; nil asks the listens service every time.
	Redis *redis.Client
	// Log receives the failures; nil discards them.
	Log *slog.Logger

	mu        sync.Mutex
	downUntil time.Time
}

func countKey(id string) string { return "query:streams:" + id }

func (c *StreamCounts) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Counts returns the stream counts of ids it could learn (from the cache or
// the listens service); an id it could not learn is absent. It does not
// fail: a card without counts is better than no card.
func (c *StreamCounts) Counts(ctx context.Context, ids []string) map[string]int64 {
	out := map[string]int64{}
	if c == nil || len(ids) == 0 {
		return out
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	missing := ids
	if c.Redis != nil {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = countKey(id)
		}
		vals, err := c.Redis.MGet(ctx, keys...).Result()
		if err != nil {
			c.log().WarnContext(ctx, "stream count cache read", "error", err)
		}
		missing = nil
		for i, id := range ids {
			if err == nil {
				if s, ok := vals[i].(string); ok {
					if n, perr := strconv.ParseInt(s, 10, 64); perr == nil {
						out[id] = n
						continue
					}
				}
			}
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 || c.down() {
		return out
	}
	fetched := map[string]int64{}
	for part := range slices.Chunk(missing, streamCountBatch) {
		got, err := c.fetch(ctx, part)
		if err != nil {
			if ctx.Err() == nil {
				c.fail()
				c.log().WarnContext(ctx, "stream counts unavailable: cards are answered without them",
					"retry_in", StreamCountBackoff, "error", err)
			}
			break
		}
		for _, id := range part {
			if n, ok := got[id]; ok {
				fetched[id] = n
			}
		}
	}
	for id, n := range fetched {
		out[id] = n
	}
	if c.Redis != nil && len(fetched) > 0 {
		_, err := c.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for id, n := range fetched {
				p.Set(ctx, countKey(id), n, StreamCountTTL)
			}
			return nil
		})
		if err != nil {
			c.log().WarnContext(ctx, "stream count cache write", "error", err)
		}
	}
	return out
}

func (c *StreamCounts) down() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.downUntil)
}

func (c *StreamCounts) fail() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.downUntil = time.Now().Add(StreamCountBackoff)
}

// fetch asks the listens service for ids' counts.
func (c *StreamCounts) fetch(ctx context.Context, ids []string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, StreamCountTimeout)
	defer cancel()
	q := url.Values{"track_id": ids}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+"/v1/stream-counts?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("stream counts request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the listens service for stream counts: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the listens service answered %s to stream counts", res.Status)
	}
	var body struct {
		Counts map[string]int64 `json:"counts"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode stream counts: %w", err)
	}
	return body.Counts, nil
}

// TrackCard is a track as the cards show it: the read model's document and
// its all-time streams (absent when the listens service did not answer).
type TrackCard struct {
	search.Track
	Streams *int64 `json:"streams,omitempty"`
}

func trackCards(ts []search.Track, counts map[string]int64) []TrackCard {
	out := make([]TrackCard, len(ts))
	for i, t := range ts {
		out[i] = TrackCard{Track: t}
		if n, ok := counts[t.ID]; ok {
			out[i].Streams = &n
		}
	}
	return out
}

func trackIDs(ts []search.Track) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// startStreams sets up the stream counts from c.ListensURL (LISTENS_URL,
// the listens service's base URL; the embedded platform points it at its
// own gateway) and c.RedisURL (their cache), the Redis client held by the
// Base. Without LISTENS_URL cards carry no counts, and the service says so
// once.
func (s *Service) startStreams(c Config) {
	if c.ListensURL == "" {
		s.Log.Warn("LISTENS_URL is not set: cards carry no stream counts")
		return
	}
	s.Streams = &StreamCounts{URL: c.ListensURL, Client: &http.Client{Timeout: StreamCountTimeout}, Log: s.Log}
	if !c.RedisURL.IsZero() {
		opt, _ := redis.ParseURL(c.RedisURL.Reveal()) // Config.Read checked it
		rdb := redis.NewClient(opt)
		s.Hold("stream count cache", rdb.Close, nil)
		s.Streams.Redis = rdb
	}
}
