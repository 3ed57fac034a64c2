// Package query is the catalog's query API (service "query"): search as you
// type, track/album/artist cards, the list of genres and browse by genre, all answered from the
// search read model, never from the write model, so that listener traffic
// does not load the database the admins write to.
//
// A Redis hot cache (internal/search/hotcache) sits in front of the read
// model; its generation counters, bumped by the indexer after each applied
// change, guarantee that no response is older than a change that was already
// searchable when the request began.
//
// Read-your-writes: a request with ?after=<consistency token> (the
// X-Consistency-Token an admin write answered) first waits until the indexer
// has applied that LSN — at most WaitTimeout (5 s), then it fails with 503
// problem "not-yet-consistent" and Retry-After rather than answer with data
// that may not contain the write.
package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/backend"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/server"
)

// Name is the service's name.
const Name = "query"

// DefaultWaitTimeout is how long ?after= waits for the indexer unless
// QUERY_WAIT_TIMEOUT says otherwise.
const DefaultWaitTimeout = 5 * time.Second

// Config is the service's settings.
type Config struct {
	// Search is the read model (backend.Config: SEARCH_BACKEND, SEARCH_DIR,
	// OPENSEARCH_URL, OPENSEARCH_INDEX).
	Search backend.Config
	// DatabaseURL is where the indexer records what it applied, for
	// ?after= (optional: without it ?after= answers 503).
	DatabaseURL string
	// RedisURL is the hot cache and the stream counts' cache (optional:
	// without it every read goes to the index).
	RedisURL config.Secret
	// ListensURL is the listens service's base URL, asked for the stream
	// counts on cards (optional: without it cards carry none).
	ListensURL string
	// WaitTimeout bounds ?after= (QUERY_WAIT_TIMEOUT, default 5s).
	WaitTimeout time.Duration
	// SearchLog is where the search log finds auth's keys (searchlog.go).
	SearchLog SearchLogConfig
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.Search.Read(r)
	c.DatabaseURL = r.StringOr(postgres.KeyDatabaseURL, "")
	c.RedisURL = r.SecretOptional("REDIS_URL") // may carry a password
	if u := c.RedisURL; !u.IsZero() {
		if _, err := redis.ParseURL(u.Reveal()); err != nil {
			r.Fail("REDIS_URL", "not a redis:// URL")
		}
	}
	c.ListensURL = r.URLOr("LISTENS_URL", "")
	c.WaitTimeout = r.DurationOr("QUERY_WAIT_TIMEOUT", DefaultWaitTimeout)
	c.SearchLog.Read(r)
}

// Service is the query API.
type Service struct {
	lifecycle.Base
	store search.Store
	pool  *postgres.Pool
	cache *hotcache.Cache
	// WaitTimeout bounds how long ?after= waits for the indexer.
	WaitTimeout time.Duration
	// PollInterval is how often a waiting request rereads the watermark.
	PollInterval time.Duration
	// Streams puts stream counts on track, album and artist cards (nil:
	// cards without them); see streams.go.
	Streams *StreamCounts
	// Similar puts similar tracks and artists on their pages (nil: none);
	// see similar.go.
	Similar *SimilarItems
	// SearchLog records signed-in listeners' searches (nil: none are
	// recorded); see searchlog.go.
	SearchLog *SearchLog

	mux *http.ServeMux
}

// New returns the service; Start connects it (the platform's way).
func New() *Service {
	s := &Service{WaitTimeout: DefaultWaitTimeout, PollInterval: 10 * time.Millisecond}
	s.routes()
	return s
}

// NewWith returns a service on resources the caller owns. pool (for ?after=)
// and cache may be nil.
func NewWith(store search.Store, pool *postgres.Pool, cache *hotcache.Cache) *Service {
	s := New()
	s.Begin() // no host: a discarding logger
	s.store, s.pool, s.cache = store, pool, cache
	return s
}

// Name implements server.Service.
func (s *Service) Name() string { return Name }

// Routes implements server.Service.
func (s *Service) Routes() []server.Route {
	return []server.Route{
		{Method: http.MethodGet, Path: "/v1/search"},
		{Method: http.MethodGet, Path: "/v1/tracks/{id}"},
		{Method: http.MethodGet, Path: "/v1/albums/{id}"},
		{Method: http.MethodGet, Path: "/v1/artists/{id}"},
		{Method: http.MethodGet, Path: "/v1/genres"},
		{Method: http.MethodGet, Path: "/v1/genres/{id}/tracks"},
		{Method: http.MethodGet, Path: "/v1/tracks"},
		{Method: http.MethodGet, Path: "/v1/me/searches"},
		{Method: http.MethodDelete, Path: "/v1/me/searches"},
	}
}

// ConfigKeys lists the settings the service reads.
func (s *Service) ConfigKeys() []config.Key { return config.KeysFor[Config]() }

// Start reads Config and opens, through the Base (a failed Start releases
// them, Stop releases them in reverse), the search store, the database for
// read-your-writes and the Redis hot cache when they are configured, and
// the stream counts (streams.go).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	s.Begin()
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	s.WaitTimeout = c.WaitTimeout
	store, err := c.Search.Open(ctx)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	s.Hold("search store", store.Close, nil)
	s.store = store
	if c.DatabaseURL != "" {
		if s.pool, err = s.OpenPool(ctx, c.DatabaseURL, applied.Migrate); err != nil {
			return fmt.Errorf("query: %w", err)
		}
	}
	if !c.RedisURL.IsZero() {
		if s.cache, err = hotcache.Open(ctx, c.RedisURL.Reveal()); err != nil {
			return fmt.Errorf("query: %w", err)
		}
		s.Hold("hot cache", s.cache.Close, nil)
	}
	s.startStreams(c)
	s.startSimilar(c)
	s.startSearchLog(c)
	return nil
}

// Ready reports whether the read model answers.
func (s *Service) Ready(ctx context.Context) (bool, error) {
	if s.store == nil {
		return false, nil
	}
	if _, err := s.store.Count(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Service) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/search", s.handle(s.search))
	s.mux.HandleFunc("GET /v1/tracks/{id}", s.handle(s.track))
	s.mux.HandleFunc("GET /v1/albums/{id}", s.handle(s.album))
	s.mux.HandleFunc("GET /v1/artists/{id}", s.handle(s.artist))
	s.mux.HandleFunc("GET /v1/genres", s.handle(s.genres))
	s.mux.HandleFunc("GET /v1/genres/{id}/tracks", s.handle(s.genre))
	s.mux.HandleFunc("GET /v1/tracks", s.handle(s.tracks))
	s.mux.HandleFunc("GET /v1/me/searches", s.meSearches)
	s.mux.HandleFunc("DELETE /v1/me/searches", s.meSearches)
}

// answer is what a handler returns: a JSON body and how the cache served it.
type answer struct {
	body    any
	outcome hotcache.Outcome
}

func (s *Service) handle(fn func(ctx context.Context, r *http.Request) (answer, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.waitAfter(r.Context(), w, r.URL.Query()); err != nil {
			problem.Error(w, r, err)
			return
		}
		a, err := fn(r.Context(), r)
		if err != nil {
			var bad badParam
			switch {
			case errors.As(err, &bad):
				problem.Write(w, r, problem.New(http.StatusBadRequest, "invalid-parameter", bad.Error()))
			case errors.Is(err, search.ErrBadQuery):
				problem.Write(w, r, problem.New(http.StatusBadRequest, "invalid-parameter", strings.TrimPrefix(err.Error(), search.ErrBadQuery.Error()+"\n")))
			default:
				var p *problem.Problem
				if !errors.As(err, &p) && r.Context().Err() == nil {
					s.Log.ErrorContext(r.Context(), "query failed", "path", r.URL.Path, "error", err)
				}
				problem.Error(w, r, err)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Cache", [...]string{"miss", "hit", "bypass"}[a.outcome])
		w.Header().Set("Cache-Control", "no-cache")
		_ = json.NewEncoder(w).Encode(a.body)
	}
}

// badParam is a query parameter that cannot be used.
type badParam struct{ name, why string }

func (b badParam) Error() string { return "parameter " + b.name + ": " + b.why }

// waitAfter implements ?after=: it returns once the read model has applied
// the token, or a 503 problem after WaitTimeout.
func (s *Service) waitAfter(ctx context.Context, w http.ResponseWriter, q url.Values) error {
	raw := q.Get("after")
	if raw == "" {
		return nil
	}
	token, err := lsn.ParseToken(raw)
	if err != nil {
		return problem.New(http.StatusBadRequest, "invalid-parameter", "parameter after: not a consistency token (a decimal LSN from X-Consistency-Token)")
	}
	if s.pool == nil {
		return problem.New(http.StatusServiceUnavailable, "not-yet-consistent", "read-your-writes is not available: the query service has no DATABASE_URL")
	}
	wctx, cancel := context.WithTimeout(ctx, s.WaitTimeout)
	defer cancel()
	got, err := applied.Wait(wctx, s.pool.Pool, token, s.PollInterval)
	if errors.Is(err, applied.ErrTimeout) && ctx.Err() == nil {
		p := problem.New(http.StatusServiceUnavailable, "not-yet-consistent",
			fmt.Sprintf("the search index has applied changes up to %d, not yet %d (waited %s); retry", got, token, s.WaitTimeout))
		p.Extra = map[string]any{"applied": lsn.FormatToken(got), "after": lsn.FormatToken(token)}
		w.Header().Set("Retry-After", "1")
		return p
	}
	if err != nil {
		return err
	}
	w.Header().Set("X-Consistency-Token", lsn.FormatToken(got))
	return nil
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badParam{name, fmt.Sprintf("%q is not an integer", v)}
	}
	if n < lo || n > hi {
		return 0, badParam{name, fmt.Sprintf("%d is outside %d..%d", n, lo, hi)}
	}
	return n, nil
}

// maxGenre bounds a genre id (the catalog's genre slugs are far shorter).
const maxGenre = 64

// genreRE is the catalog's genre slug (internal/catalog: genre_id).
var genreRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// genreParam validates a genre id given as the parameter name: at most one
// value, at most maxGenre bytes, a slug. Anything else is refused before it
// can reach a cache key.
func genreParam(name string, vs []string) (string, error) {
	switch {
	case len(vs) == 0 || vs[0] == "":
		if len(vs) > 1 {
			return "", badParam{name, "give it once"}
		}
		return "", nil
	case len(vs) > 1:
		return "", badParam{name, "give it once (one genre per request)"}
	case len(vs[0]) > maxGenre:
		return "", badParam{name, fmt.Sprintf("longer than %d bytes", maxGenre)}
	case !genreRE.MatchString(vs[0]):
		return "", badParam{name, `not a genre id (lower-case letters, digits and hyphens, such as "post-punk")`}
	}
	return vs[0], nil
}

// emptyPage is a page with no hits; it is answered but not cached, so that
// made-up genres and queries that match nothing cannot fill the cache: what
// is cached is bounded by what the catalog holds.
type emptyPage struct{ p Page }

func (emptyPage) Error() string { return "empty page (not cached)" }

// cachedPage reads a page through the hot cache, except an empty one.
func (s *Service) cachedPage(ctx context.Context, key string, deps []string, q search.Query) (answer, error) {
	p, outcome, err := hotcache.Get(ctx, s.cache, key, deps, func(ctx context.Context) (Page, error) {
		p, err := s.page(ctx, q)
		if err == nil && p.Total == 0 {
			return p, emptyPage{p}
		}
		return p, err
	})
	if e, ok := errors.AsType[emptyPage](err); ok {
		return answer{e.p, hotcache.Bypass}, nil
	}
	return answer{p, outcome}, err
}

func parseQuery(q url.Values) (search.Query, error) {
	var out search.Query
	var err error
	out.Q = strings.TrimSpace(q.Get("q"))
	if len(out.Q) > 200 {
		return out, badParam{"q", "longer than 200 bytes"}
	}
	if out.Genre, err = genreParam("genre", q["genre"]); err != nil {
		return out, err
	}
	out.Artist = q.Get("artist")
	if out.Artist != "" {
		if _, err := uuid.Parse(out.Artist); err != nil {
			return out, badParam{"artist", "not an artist id (uuid)"}
		}
	}
	if out.YearFrom, err = intParam(q, "year_from", 0, 1000, 3000); err != nil {
		return out, err
	}
	if out.YearTo, err = intParam(q, "year_to", 0, 1000, 3000); err != nil {
		return out, err
	}
	if out.YearFrom != 0 && out.YearTo != 0 && out.YearFrom > out.YearTo {
		return out, badParam{"year_from", fmt.Sprintf("%d is after year_to %d", out.YearFrom, out.YearTo)}
	}
	if out.Page, err = intParam(q, "page", 1, 1, search.MaxWindow); err != nil {
		return out, err
	}
	if out.Size, err = intParam(q, "size", search.DefaultSize, 1, search.MaxSize); err != nil {
		return out, err
	}
	return out.Normalize()
}

// Page is the body of a search or browse answer.
type Page struct {
	Total int          `json:"total"`
	Page  int          `json:"page"`
	Size  int          `json:"size"`
	Hits  []search.Hit `json:"hits"`
}

func (s *Service) search(ctx context.Context, r *http.Request) (answer, error) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		return answer{}, err
	}
	key := fmt.Sprintf("search:%q:%s:%s:%d:%d:%d:%d", q.Q, q.Genre, q.Artist, q.YearFrom, q.YearTo, q.Page, q.Size)
	a, err := s.cachedPage(ctx, key, []string{hotcache.Search}, q)
	if err == nil {
		s.recordSearch(ctx, r, q, a)
	}
	return a, err
}

func (s *Service) page(ctx context.Context, q search.Query) (Page, error) {
	res, err := s.store.Search(ctx, q)
	if err != nil {
		return Page{}, err
	}
	if res.Hits == nil {
		res.Hits = []search.Hit{}
	}
	return Page{Total: res.Total, Page: q.Page, Size: q.Size, Hits: res.Hits}, nil
}

func pathID(r *http.Request, what string) (string, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", badParam{"id", fmt.Sprintf("%q is not a %s id (uuid)", id, what)}
	}
	return strings.ToLower(id), nil
}

func notFound(what, id string) error {
	return problem.New(http.StatusNotFound, what+"-not-found", fmt.Sprintf("no published %s %s", what, id))
}

func (s *Service) track(ctx context.Context, r *http.Request) (answer, error) {
	id, err := pathID(r, "track")
	if err != nil {
		return answer{}, err
	}
	t, outcome, err := hotcache.Get(ctx, s.cache, "track:"+id, []string{hotcache.Track(id)}, func(ctx context.Context) (search.Track, error) {
		got, err := s.store.Get(ctx, id)
		if err != nil {
			return search.Track{}, err
		}
		t, ok := got[id]
		if !ok {
			return t, notFound("track", id)
		}
		return t, nil
	})
	if err != nil {
		return answer{}, err
	}
	return answer{s.trackPage(ctx, trackCards([]search.Track{t}, s.Streams.Counts(ctx, []string{id}))[0]), outcome}, nil
}

// maxTracks bounds GET /v1/tracks: the ids one request may name.
const maxTracks = 100

// tracks is GET /v1/tracks?id=…&id=…: the cards of up to maxTracks tracks
// in one read of the read model (no stream counts), for clients that hold
// ids — the home feed (internal/feed) renders its sections with it. An id
// that is not a published track is absent from the answer.
func (s *Service) tracks(ctx context.Context, r *http.Request) (answer, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "id" && k != "after" {
			return answer{}, badParam{k, "unknown (GET /v1/tracks takes id, repeated, and after)"}
		}
	}
	ids := q["id"]
	if len(ids) == 0 || len(ids) > maxTracks {
		return answer{}, badParam{"id", fmt.Sprintf("give 1 to %d track ids", maxTracks)}
	}
	for i, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return answer{}, badParam{"id", fmt.Sprintf("%q is not a track id (uuid)", id)}
		}
		ids[i] = strings.ToLower(id)
	}
	got, err := s.store.Get(ctx, ids...)
	if err != nil {
		return answer{}, err
	}
	out := make([]search.Track, 0, len(got))
	for _, id := range ids {
		if t, ok := got[id]; ok {
			out = append(out, t)
			delete(got, id) // once, in the order asked
		}
	}
	return answer{map[string]any{"tracks": out}, hotcache.Bypass}, nil
}

// AlbumCard is an album as its published tracks describe it. Streams is
// the sum of its tracks' streams, absent when any of them is unknown.
type AlbumCard struct {
	search.Album
	Artists []search.Artist `json:"artists"`
	Tracks  []TrackCard     `json:"tracks"`
	Streams *int64          `json:"streams,omitempty"`
}

func (s *Service) album(ctx context.Context, r *http.Request) (answer, error) {
	id, err := pathID(r, "album")
	if err != nil {
		return answer{}, err
	}
	c, outcome, err := hotcache.Get(ctx, s.cache, "album:"+id, []string{hotcache.Album(id)}, func(ctx context.Context) (AlbumCard, error) {
		res, err := s.store.Search(ctx, search.Query{Album: id, Size: search.MaxSize})
		if err != nil {
			return AlbumCard{}, err
		}
		if len(res.Hits) == 0 {
			return AlbumCard{}, notFound("album", id)
		}
		c := AlbumCard{Artists: []search.Artist{}}
		for _, h := range res.Hits {
			if h.Album != nil {
				c.Album = *h.Album
			}
			for _, a := range h.Artists {
				if !slices.Contains(c.Artists, a) {
					c.Artists = append(c.Artists, a)
				}
			}
			c.Tracks = append(c.Tracks, TrackCard{Track: h.Track})
		}
		return c, nil
	})
	if err != nil {
		return answer{}, err
	}
	// The cached card has no counts; the answer gets its own copy with them.
	c.Tracks, c.Streams = s.countTracks(ctx, c.Tracks)
	return answer{c, outcome}, nil
}

// countTracks is a copy of cards with their stream counts, and their sum
// when every count is known.
func (s *Service) countTracks(ctx context.Context, cards []TrackCard) ([]TrackCard, *int64) {
	ts := make([]search.Track, len(cards))
	for i, c := range cards {
		ts[i] = c.Track
	}
	out := trackCards(ts, s.Streams.Counts(ctx, trackIDs(ts)))
	var sum int64
	for _, c := range out {
		if c.Streams == nil {
			return out, nil
		}
		sum += *c.Streams
	}
	if len(out) == 0 {
		return out, nil
	}
	return out, &sum
}

// ArtistCard is an artist with their most popular tracks and their albums.
type ArtistCard struct {
	search.Artist
	TrackCount int            `json:"track_count"`
	TopTracks  []TrackCard    `json:"top_tracks"`
	Albums     []search.Album `json:"albums"`
}

func (s *Service) artist(ctx context.Context, r *http.Request) (answer, error) {
	id, err := pathID(r, "artist")
	if err != nil {
		return answer{}, err
	}
	c, outcome, err := hotcache.Get(ctx, s.cache, "artist:"+id, []string{hotcache.Artist(id)}, func(ctx context.Context) (ArtistCard, error) {
		res, err := s.store.Search(ctx, search.Query{Artist: id, Size: search.MaxSize})
		if err != nil {
			return ArtistCard{}, err
		}
		if len(res.Hits) == 0 {
			return ArtistCard{}, notFound("artist", id)
		}
		c := ArtistCard{TrackCount: res.Total, Albums: []search.Album{}}
		for i, h := range res.Hits {
			for _, a := range h.Artists {
				if a.ID == id {
					c.Artist = a
				}
			}
			if i < 10 {
				c.TopTracks = append(c.TopTracks, TrackCard{Track: h.Track})
			}
			if h.Album != nil && !slices.Contains(c.Albums, *h.Album) {
				c.Albums = append(c.Albums, *h.Album)
			}
		}
		return c, nil
	})
	if err != nil {
		return answer{}, err
	}
	c.TopTracks, _ = s.countTracks(ctx, c.TopTracks)
	return answer{s.artistPage(ctx, c), outcome}, nil
}

func (s *Service) genre(ctx context.Context, r *http.Request) (answer, error) {
	id, err := genreParam("id", []string{r.PathValue("id")})
	if err == nil && id == "" {
		err = badParam{"id", "not a genre id"}
	}
	if err != nil {
		return answer{}, err
	}
	q, err := parseQuery(url.Values{"page": r.URL.Query()["page"], "size": r.URL.Query()["size"]})
	if err != nil {
		return answer{}, err
	}
	q.Genre = id
	key := fmt.Sprintf("genre:%q:%d:%d", id, q.Page, q.Size)
	return s.cachedPage(ctx, key, []string{hotcache.Genre(id)}, q)
}
