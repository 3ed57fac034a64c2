package query

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/search"
)

// Similar tracks and artists on their pages (issue 14). The lists are the
// co-occurrence neighbours the recommend function's batch recompute stores
// (internal/recommend/artifact, table recommend_similar: listeners of this
// track also play …), read from the query service's database
// (DATABASE_URL) through a Redis cache of SimilarTTL — they change only with
// the next recompute, so a popular page costs the database one read per
// SimilarTTL — and resolved into ids and titles (names) through the read
// model, as every card is: a neighbour that is not published is left out.
// They are decoration, like the stream counts: when the database is slow
// or down the page is answered without them (no "similar" member), and it
// is not asked again for SimilarBackoff. An artist's neighbours are keyed by
// the name listens carry, and each comes with its most played track, whose
// artists in the read model give the neighbour's id.

// Similar items settings.
const (
	// SimilarTTL is how long a stored list is reused from Redis.
	SimilarTTL = 10 * time.Minute
	// SimilarTimeout bounds reading the lists and resolving them.
	SimilarTimeout = time.Second
	// SimilarBackoff is how long a failed database is left alone.
	SimilarBackoff = 5 * time.Second
	// SimilarShown is how many similar items a page shows at most.
	SimilarShown = 10
)

// SimilarItems reads items' stored neighbours.
type SimilarItems struct {
	// Store reads the stored neighbours.
	Store *artifact.Store
	// Redis caches them; nil reads the database every time.
	Redis *redis.Client
	// Log receives the failures; nil discards them.
	Log *slog.Logger

	mu        sync.Mutex
	downUntil time.Time
}

// SimilarTrack is a similar track as a page shows it.
type SimilarTrack struct {
	ID      string          `json:"id"`
	Title   string          `json:"title"`
	Artists []search.Artist `json:"artists"`
	Album   *search.Album   `json:"album,omitempty"`
	// Score is the similarity (cosine over listeners, shrunk), 0..1.
	Score float32 `json:"score"`
}

// SimilarArtist is a similar artist as a page shows them.
type SimilarArtist struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Score float32 `json:"score"`
}

// TrackPage is GET /v1/tracks/{id}: the card and the tracks similar to it
// (absent when none are known or their source did not answer).
type TrackPage struct {
	TrackCard
	Similar []SimilarTrack `json:"similar,omitempty"`
}

// ArtistPage is GET /v1/artists/{id}: the card and the artists similar to
// them (absent when none are known or their source did not answer).
type ArtistPage struct {
	ArtistCard
	Similar []SimilarArtist `json:"similar,omitempty"`
}

func (x *SimilarItems) log() *slog.Logger {
	if x.Log != nil {
		return x.Log
	}
	return slog.New(slog.DiscardHandler)
}

func similarKey(kind, key string) string { return "query:similar:" + kind + ":" + key }

// lookup returns key's stored neighbours; ok is false when they could not
// be read (nothing stored is ok with none).
func (x *SimilarItems) lookup(ctx context.Context, kind, key string) (artifact.Similar, bool) {
	if x.Redis != nil {
		raw, err := x.Redis.Get(ctx, similarKey(kind, key)).Bytes()
		var s artifact.Similar
		if err == nil && json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			x.log().WarnContext(ctx, "similar items cache read", "error", err)
		}
	}
	if x.down() {
		return artifact.Similar{}, false
	}
	got, err := x.Store.Similar(ctx, kind, []string{key})
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			x.fail()
			x.log().WarnContext(ctx, "similar items unavailable: pages are answered without them", "retry_in", SimilarBackoff, "error", err)
		}
		return artifact.Similar{}, false
	}
	s := got[key]
	if x.Redis != nil {
		raw, _ := json.Marshal(s)
		if err := x.Redis.Set(ctx, similarKey(kind, key), raw, SimilarTTL).Err(); err != nil {
			x.log().WarnContext(ctx, "similar items cache write", "error", err)
		}
	}
	return s, true
}

func (x *SimilarItems) down() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return time.Now().Before(x.downUntil)
}

func (x *SimilarItems) fail() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.downUntil = time.Now().Add(SimilarBackoff)
}

// trackPage is c with the tracks similar to it.
func (s *Service) trackPage(ctx context.Context, c TrackCard) TrackPage {
	p := TrackPage{TrackCard: c}
	if s.Similar == nil {
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, SimilarTimeout)
	defer cancel()
	sim, ok := s.Similar.lookup(ctx, artifact.Track, c.ID)
	if !ok || len(sim.Neighbours) == 0 {
		return p
	}
	docs, err := s.store.Get(ctx, sim.Neighbours...)
	if err != nil {
		s.Log.WarnContext(ctx, "similar tracks: the read model did not answer", "error", err)
		return p
	}
	for k, id := range sim.Neighbours {
		d, ok := docs[id]
		if !ok || id == c.ID {
			continue // not published
		}
		p.Similar = append(p.Similar, SimilarTrack{ID: d.ID, Title: d.Title, Artists: d.Artists, Album: d.Album, Score: sim.Scores[k]})
		if len(p.Similar) == SimilarShown {
			break
		}
	}
	return p
}

// artistPage is c with the artists similar to them.
func (s *Service) artistPage(ctx context.Context, c ArtistCard) ArtistPage {
	p := ArtistPage{ArtistCard: c}
	if s.Similar == nil || c.Name == "" {
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, SimilarTimeout)
	defer cancel()
	sim, ok := s.Similar.lookup(ctx, artifact.Artist, c.Name)
	if !ok || len(sim.Neighbours) == 0 || len(sim.Tracks) != len(sim.Neighbours) {
		return p
	}
	docs, err := s.store.Get(ctx, sim.Tracks...)
	if err != nil {
		s.Log.WarnContext(ctx, "similar artists: the read model did not answer", "error", err)
		return p
	}
	seen := map[string]bool{c.ID: true}
	for k, name := range sim.Neighbours {
		for _, a := range docs[sim.Tracks[k]].Artists {
			if strings.EqualFold(a.Name, name) && !seen[a.ID] {
				seen[a.ID] = true
				p.Similar = append(p.Similar, SimilarArtist{ID: a.ID, Name: a.Name, Score: sim.Scores[k]})
				break
			}
		}
		if len(p.Similar) == SimilarShown {
			break
		}
	}
	return p
}

// startSimilar sets up the similar items on the service's database (the
// recommend function's stored neighbours) and their Redis cache, the client
// held by the Base. Without DATABASE_URL pages carry none, and the service
// says so once.
func (s *Service) startSimilar(c Config) {
	if s.pool == nil {
		s.Log.Warn("DATABASE_URL is not set: track and artist pages carry no similar items")
		return
	}
	s.Similar = &SimilarItems{Store: &artifact.Store{Pool: s.pool.Pool}, Log: s.Log}
	if !c.RedisURL.IsZero() {
		opt, _ := redis.ParseURL(c.RedisURL.Reveal()) // Config.Read checked it
		rdb := redis.NewClient(opt)
		s.Hold("similar items cache", rdb.Close, nil)
		s.Similar.Redis = rdb
	}
}
