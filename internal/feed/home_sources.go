package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/stats"
)

// What the home feed reads from other services, and how it keeps it.
//
// The catalog belongs to the query service's read model; the feed reads it
// over HTTP as the query service itself reads stream counts from the
// listens service (internal/query/streams.go), never from the catalog's
// tables: those are the write model admins write to, and the read model
// already carries what a card needs (title, artists with ids, album,
// published_at, the release timestamp). The account's locale belongs to
// auth (GET /v1/auth/me), the search log to the query service (GET
// /v1/me/searches); both are asked with the listener's own token.
//
// Every answer is kept in process for a bounded time and a bounded number
// of entries, so a feed costs its upstreams requests only when something
// is not known yet: cards and artists' tracks for CatalogTTL, the chart for
// ChartTTL, a listener's locale, searches and played artists for
// ProfileTTL (or until their newest listen changes).

// Upstream settings.
const (
	// CatalogTTL is how long a card or an artist's tracks are reused.
	CatalogTTL = 10 * time.Minute
	// ChartTTL is how long the chart is reused.
	ChartTTL = time.Minute
	// ProfileTTL is how long a listener's locale, searches and played
	// artists are reused while their newest listen stays the same.
	ProfileTTL = 10 * time.Minute
	// UpstreamTimeout bounds one request to another service.
	UpstreamTimeout = 2 * time.Second
	// cardBatch is how many ids one GET /v1/tracks carries (the query
	// service's limit).
	cardBatch = 100
	// maxCards and maxListeners bound the caches.
	maxCards     = 100_000
	maxArtists   = 20_000
	maxListeners = 50_000
	// maxMemos bounds the feeds kept as answered (about 25 KB each).
	maxMemos = 10_000
)

// ttlCache is a bounded map whose entries expire.
type ttlCache[V any] struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newCache[V any](ttl time.Duration, max int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, m: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(k string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || now.After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v; a full cache first drops what expired, then an arbitrary
// tenth of its entries.
func (c *ttlCache[V]) put(k string, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if now.After(e.expires) {
				delete(c.m, key)
			}
		}
		drop := len(c.m) - c.max*9/10
		for key := range c.m {
			if drop <= 0 {
				break
			}
			delete(c.m, key)
			drop--
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: now.Add(c.ttl)}
}

// upstream asks the query and auth services.
type upstream struct {
	queryURL, authURL string
	client            *http.Client

	cards   *ttlCache[search.Track]
	artists *ttlCache[[]search.Track]
	popular *ttlCache[[]search.Track]
	chart   *ttlCache[stats.Chart]
	profile *ttlCache[profile]
}

func newUpstream(queryURL, authURL string) *upstream {
	return &upstream{
		queryURL: strings.TrimRight(queryURL, "/"), authURL: strings.TrimRight(authURL, "/"),
		client:  &http.Client{Timeout: UpstreamTimeout},
		cards:   newCache[search.Track](CatalogTTL, maxCards),
		artists: newCache[[]search.Track](CatalogTTL, maxArtists),
		popular: newCache[[]search.Track](CatalogTTL, 1),
		chart:   newCache[stats.Chart](ChartTTL, 1),
		profile: newCache[profile](ProfileTTL, maxListeners),
	}
}

// errNotFound: the upstream answered 404.
var errNotFound = errors.New("not found")

func (u *upstream) getJSON(ctx context.Context, base, path, bearer string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, UpstreamTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := u.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return fmt.Errorf("GET %s: %w", path, errNotFound)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("GET %s answered %s: %s", path, res.Status, b)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode GET %s: %w", path, err)
	}
	return nil
}

// Cards returns the cards of ids that are published tracks, from the cache
// or, for the rest, GET /v1/tracks in batches of cardBatch. A track the
// query service does not know is absent (unpublished since it was
// recommended); an error leaves the missing ones absent and is returned.
func (u *upstream) Cards(ctx context.Context, ids []string, now time.Time) (map[string]search.Track, error) {
	out := make(map[string]search.Track, len(ids))
	var missing []string
	for _, id := range ids {
		if _, done := out[id]; done || id == "" {
			continue
		}
		if t, ok := u.cards.get(id, now); ok {
			out[id] = t
			continue
		}
		if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	for part := range slices.Chunk(missing, cardBatch) {
		q := url.Values{"id": part}
		var body struct {
			Tracks []search.Track `json:"tracks"`
		}
		if err := u.getJSON(ctx, u.queryURL, "/v1/tracks?"+q.Encode(), "", &body); err != nil {
			return out, err
		}
		for _, t := range body.Tracks {
			out[t.ID] = t
		}
		// Unknown ids are remembered as such (an empty card), so an
		// unpublished track costs one request per CatalogTTL.
		for _, id := range part {
			u.cards.put(id, out[id], now)
		}
	}
	for id, t := range out {
		if t.ID == "" {
			delete(out, id)
		}
	}
	return out, nil
}

// ArtistTracks is an artist's published tracks, most popular first (at most
// search.MaxSize): GET /v1/search?artist=.
func (u *upstream) ArtistTracks(ctx context.Context, artistID string, now time.Time) ([]search.Track, error) {
	if ts, ok := u.artists.get(artistID, now); ok {
		return ts, nil
	}
	ts, err := u.browse(ctx, url.Values{"artist": {artistID}, "size": {fmt.Sprint(search.MaxSize)}})
	if err != nil {
		return nil, err
	}
	u.artists.put(artistID, ts, now)
	return ts, nil
}

// Popular is the catalogue's most popular published tracks (one page of
// search.MaxSize): GET /v1/search with no query.
func (u *upstream) Popular(ctx context.Context, now time.Time) ([]search.Track, error) {
	if ts, ok := u.popular.get("", now); ok {
		return ts, nil
	}
	ts, err := u.browse(ctx, url.Values{"size": {fmt.Sprint(search.MaxSize)}})
	if err != nil {
		return nil, err
	}
	u.popular.put("", ts, now)
	return ts, nil
}

func (u *upstream) browse(ctx context.Context, q url.Values) ([]search.Track, error) {
	var page struct {
		Hits []search.Hit `json:"hits"`
	}
	if err := u.getJSON(ctx, u.queryURL, "/v1/search?"+q.Encode(), "", &page); err != nil {
		return nil, err
	}
	ts := make([]search.Track, len(page.Hits))
	for i, h := range page.Hits {
		ts[i] = h.Track
	}
	return ts, nil
}

// Locale is the account's locale (GET /v1/auth/me with the listener's
// token).
func (u *upstream) Locale(ctx context.Context, bearer string) (string, error) {
	var me struct {
		Locale string `json:"locale"`
	}
	if err := u.getJSON(ctx, u.authURL, "/v1/auth/me", bearer, &me); err != nil {
		return "", err
	}
	return me.Locale, nil
}

// searched is one entry of a listener's search log as the feed uses it.
type searched struct {
	Q       string          `json:"q"`
	Artists []search.Artist `json:"artists"`
}

// Searches is the listener's search log, newest first (GET /v1/me/searches
// on the query service with their token).
func (u *upstream) Searches(ctx context.Context, bearer string) ([]searched, error) {
	var body struct {
		Searches []searched `json:"searches"`
	}
	if err := u.getJSON(ctx, u.queryURL, "/v1/me/searches", bearer, &body); err != nil {
		return nil, err
	}
	return body.Searches, nil
}
