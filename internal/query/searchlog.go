package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/token"
)

// The search log: a signed-in listener's last searches, the cold-start
// signal "first searches" of the home feed (internal/feed, issue 14).
//
// It is recorded here, where the searches are answered, rather than by a
// second call from each client: any client that sends its access token
// with GET /v1/search gets its searches remembered, and a search without a
// token (or with one that does not verify) is answered exactly as before
// and recorded nowhere. It is minimal and bounded on purpose:
//   - only searches that found something, with the artists of their first
//     hits (what the feed uses) and the text (so the listener can see what
//     is kept, and the feed can say why);
//   - typing collapses: a query that extends or shortens the newest entry
//     within SearchLogMerge replaces it, so "k", "ki", "kino" is one entry;
//   - at most SearchLogSize entries per listener, expiring SearchLogTTL
//     after the last search; no address, client or anything else;
//   - GET /v1/me/searches shows the listener their log, DELETE forgets it.
//
// It lives in the query service's Redis (REDIS_URL) and is on only when
// the service has both Redis and a token verifier (AUTH_JWKS_URL and
// AUTH_ISSUER, or PUBLIC_BASE_URL).

// Search log bounds.
const (
	SearchLogSize  = 20
	SearchLogTTL   = 30 * 24 * time.Hour
	SearchLogMerge = 30 * time.Second
	// searchLogArtists is how many artists an entry keeps (from the first
	// hits).
	searchLogArtists = 3
	searchLogTimeout = 200 * time.Millisecond
)

// LoggedSearch is one entry of a listener's search log.
type LoggedSearch struct {
	Q       string          `json:"q"`
	At      time.Time       `json:"at"`
	Artists []search.Artist `json:"artists"`
}

// SearchLogConfig is where the search log finds auth's keys; all optional
// (none: the log is off).
type SearchLogConfig struct {
	JWKSURL string
	Issuer  string
}

// Read fills c from r.
func (c *SearchLogConfig) Read(r *config.Reader) {
	base := strings.TrimRight(r.URLOr(token.KeyPublicBaseURL, ""), "/")
	c.JWKSURL = r.URLOr(token.KeyJWKSURL, "")
	if c.JWKSURL == "" && base != "" {
		c.JWKSURL = base + "/.well-known/jwks.json"
	}
	c.Issuer = r.StringOr(token.KeyIssuer, base)
}

// SearchLog keeps listeners' searches in Redis.
type SearchLog struct {
	Redis    *redis.Client
	Verifier *token.Verifier
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func searchLogKey(user string) string { return "query:searches:" + user }

func (l *SearchLog) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// startSearchLog turns the log on when Redis and a verifier are configured.
func (s *Service) startSearchLog(c Config) {
	if c.RedisURL.IsZero() || c.SearchLog.JWKSURL == "" || c.SearchLog.Issuer == "" {
		s.Log.Warn("the search log is off: it needs REDIS_URL and the token settings (AUTH_JWKS_URL and AUTH_ISSUER, or PUBLIC_BASE_URL)")
		return
	}
	opt, _ := redis.ParseURL(c.RedisURL.Reveal()) // Config.Read checked it
	rdb := redis.NewClient(opt)
	s.Hold("search log", rdb.Close, nil)
	s.SearchLog = &SearchLog{Redis: rdb, Verifier: &token.Verifier{Keys: &token.RemoteKeys{URL: c.SearchLog.JWKSURL}, Issuer: c.SearchLog.Issuer, Audience: token.Audience}}
}

// recordSearch records the search r asked for, answered with a, when r
// carries a valid access token; it never fails the search.
func (s *Service) recordSearch(ctx context.Context, r *http.Request, q search.Query, a answer) {
	l := s.SearchLog
	p, ok := a.body.(Page)
	if l == nil || !ok || q.Page > 1 || utf8.RuneCountInString(q.Q) < 2 || len(p.Hits) == 0 || token.Bearer(r) == "" {
		return
	}
	c, err := l.Verifier.Verify(ctx, token.Bearer(r))
	if err != nil {
		return // a search is public: a bad token only means nothing is recorded
	}
	e := LoggedSearch{Q: q.Q, At: l.now().UTC(), Artists: []search.Artist{}}
	for _, h := range p.Hits {
		for _, ar := range h.Artists {
			if len(e.Artists) < searchLogArtists && !containsArtist(e.Artists, ar.ID) {
				e.Artists = append(e.Artists, ar)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), searchLogTimeout)
	defer cancel()
	if err := l.record(ctx, c.Subject, e); err != nil {
		s.Log.WarnContext(ctx, "search log write", "error", err)
	}
}

func containsArtist(as []search.Artist, id string) bool {
	for _, a := range as {
		if a.ID == id {
			return true
		}
	}
	return false
}

// record adds e to user's log, replacing the newest entry when e continues
// its typing.
func (l *SearchLog) record(ctx context.Context, user string, e LoggedSearch) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	key := searchLogKey(user)
	replace := false
	if head, err := l.Redis.LIndex(ctx, key, 0).Bytes(); err == nil {
		var h LoggedSearch
		if json.Unmarshal(head, &h) == nil && e.At.Sub(h.At) < SearchLogMerge &&
			(strings.HasPrefix(strings.ToLower(e.Q), strings.ToLower(h.Q)) || strings.HasPrefix(strings.ToLower(h.Q), strings.ToLower(e.Q))) {
			replace = true
		}
	} else if !errors.Is(err, redis.Nil) {
		return err
	}
	_, err = l.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if replace {
			p.LSet(ctx, key, 0, raw)
		} else {
			p.LPush(ctx, key, raw)
			p.LTrim(ctx, key, 0, SearchLogSize-1)
		}
		p.Expire(ctx, key, SearchLogTTL)
		return nil
	})
	return err
}

// Searches returns user's log, newest first.
func (l *SearchLog) Searches(ctx context.Context, user string) ([]LoggedSearch, error) {
	raws, err := l.Redis.LRange(ctx, searchLogKey(user), 0, SearchLogSize-1).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the search log: %w", err)
	}
	out := make([]LoggedSearch, 0, len(raws))
	for _, raw := range raws {
		var e LoggedSearch
		if json.Unmarshal([]byte(raw), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// meSearches serves GET and DELETE /v1/me/searches.
func (s *Service) meSearches(w http.ResponseWriter, r *http.Request) {
	l := s.SearchLog
	if l == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "search-log-off", "this query service keeps no search log (it needs REDIS_URL and the token settings)"))
		return
	}
	l.Verifier.Middleware(s.Log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := token.FromContext(r.Context())
		if r.Method == http.MethodDelete {
			if err := l.Redis.Del(r.Context(), searchLogKey(c.Subject)).Err(); err != nil {
				problem.Error(w, r, fmt.Errorf("forgetting the search log: %w", err))
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		es, err := l.Searches(r.Context(), c.Subject)
		if err != nil {
			problem.Error(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "private, no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"searches": es})
	})).ServeHTTP(w, r)
}
