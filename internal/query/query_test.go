package query_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/applied"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/search/hotcache"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type env struct {
	t     *testing.T
	store search.Store
	pool  *postgres.Pool
	cache *hotcache.Cache
	svc   *query.Service
	url   string

	redisURL string
}

func setup(t *testing.T, withDB bool) *env {
	t.Helper()
	ctx := t.Context()
	st, err := bleve.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	redisURL := testenv.Redis(t)
	cache, err := hotcache.Open(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	e := &env{t: t, store: st, cache: cache, redisURL: redisURL}
	if withDB {
		if e.pool, err = postgres.Open(ctx, testenv.Postgres(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.pool.Close)
		if err := applied.Migrate(ctx, e.pool.Pool); err != nil {
			t.Fatal(err)
		}
	}
	e.svc = query.NewWith(st, e.pool, cache)
	srv := httptest.NewServer(e.svc)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) get(path string) reply {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// apply writes docs and bumps their counters, as the indexer does.
func (e *env) apply(v uint64, docs ...search.Track) {
	e.t.Helper()
	var ops []search.Op
	bumps := []string{hotcache.Search}
	for _, d := range docs {
		ops = append(ops, search.Upsert(d, v))
		bumps = append(bumps, hotcache.Track(d.ID))
		if d.Album != nil {
			bumps = append(bumps, hotcache.Album(d.Album.ID))
		}
		for _, a := range d.Artists {
			bumps = append(bumps, hotcache.Artist(a.ID))
		}
		if d.Genre != nil {
			bumps = append(bumps, hotcache.Genre(d.Genre.ID))
		}
	}
	if err := e.store.Apply(e.t.Context(), ops); err != nil {
		e.t.Fatal(err)
	}
	if err := e.cache.Bump(e.t.Context(), bumps...); err != nil {
		e.t.Fatal(err)
	}
}

var (
	kino    = search.Artist{ID: uuid.NewString(), Name: "Кино"}
	album   = &search.Album{ID: uuid.NewString(), Title: "Группа крови", Year: 1988}
	rock    = &search.Genre{ID: "rock", Name: "Rock"}
	track1  = search.Track{ID: uuid.NewString(), Title: "Группа крови", Album: album, Artists: []search.Artist{kino}, Genre: rock, Popularity: 900}
	track2  = search.Track{ID: uuid.NewString(), Title: "Закрой за мной дверь", Album: album, Artists: []search.Artist{kino}, Genre: rock, Popularity: 500}
	unknown = uuid.NewString()
)

func TestSearchAndCards(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	e.apply(10, track1, track2)

	r := e.get("/v1/search?q=kino")
	if r.status != 200 || r.header.Get("X-Cache") != "miss" {
		t.Fatalf("search: %d %s %s", r.status, r.header.Get("X-Cache"), r.body)
	}
	p := decode[query.Page](t, r)
	if p.Total != 2 || p.Hits[0].ID != track1.ID {
		t.Fatalf("search kino: %+v", p)
	}
	if r := e.get("/v1/search?q=kino"); r.header.Get("X-Cache") != "hit" || decode[query.Page](t, r).Total != 2 {
		t.Fatalf("second search not a cache hit: %s", r.header.Get("X-Cache"))
	}
	if r := e.get("/v1/search?q=%D0%B7%D0%B0%D0%BA%D1%80&size=1"); decode[query.Page](t, r).Hits[0].ID != track2.ID {
		t.Fatalf("as-you-type через API: %s", r.body)
	}

	r = e.get("/v1/tracks/" + track1.ID)
	if r.status != 200 || decode[search.Track](t, r).Title != track1.Title || r.header.Get("X-Cache") != "miss" {
		t.Fatalf("track card: %d %s", r.status, r.body)
	}
	if r := e.get("/v1/tracks/" + track1.ID); r.header.Get("X-Cache") != "hit" {
		t.Fatalf("track card not cached")
	}
	ac := decode[query.AlbumCard](t, e.get("/v1/albums/"+album.ID))
	if ac.Title != album.Title || ac.Year != 1988 || len(ac.Tracks) != 2 || len(ac.Artists) != 1 {
		t.Fatalf("album card: %+v", ac)
	}
	ar := decode[query.ArtistCard](t, e.get("/v1/artists/"+kino.ID))
	if ar.Name != "Кино" || ar.TrackCount != 2 || len(ar.Albums) != 1 || ar.TopTracks[0].ID != track1.ID {
		t.Fatalf("artist card: %+v", ar)
	}
	gp := decode[query.Page](t, e.get("/v1/genres/rock/tracks?size=1&page=2"))
	if gp.Total != 2 || len(gp.Hits) != 1 || gp.Hits[0].ID != track2.ID {
		t.Fatalf("genre browse page 2: %+v", gp)
	}
	for _, path := range []string{"/v1/tracks/" + unknown, "/v1/albums/" + unknown, "/v1/artists/" + unknown} {
		r := e.get(path)
		if r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}

	// A change invalidates the cached card and search page at once.
	renamed := track1
	renamed.Title = "Группа крови (remastered)"
	e.apply(20, renamed)
	if r := e.get("/v1/tracks/" + track1.ID); decode[search.Track](t, r).Title != renamed.Title {
		t.Fatalf("stale card after change: %s (%s)", r.body, r.header.Get("X-Cache"))
	}
	if r := e.get("/v1/albums/" + album.ID); !strings.Contains(string(r.body), "remastered") {
		t.Fatalf("stale album card after a track change: %s", r.body)
	}
	if r := e.get("/v1/search?q=remastered"); decode[query.Page](t, r).Total != 1 {
		t.Fatalf("stale search page after change: %s", r.body)
	}
}

// TestNoStaleCardUnderConcurrency races readers against a writer that keeps
// changing one track: a reader that starts after version k was made
// searchable (and its counters bumped) must never get an older card, hit or
// miss.
func TestNoStaleCardUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	doc := track1
	doc.ID = uuid.NewString()
	e.apply(1, doc)
	var committed atomic.Uint64
	committed.Store(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, hits, stale atomic.Int64
	var firstStale atomic.Value
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := committed.Load()
				resp, err := client.Get(e.url + "/v1/tracks/" + doc.ID)
				if err != nil {
					t.Error(err)
					return
				}
				var got search.Track
				_ = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				reads.Add(1)
				if resp.Header.Get("X-Cache") == "hit" {
					hits.Add(1)
				}
				if got.Version < floor {
					stale.Add(1)
					firstStale.CompareAndSwap(nil, fmt.Sprintf("got v%d after v%d was applied (%s)", got.Version, floor, resp.Header.Get("X-Cache")))
				}
			}
		}()
	}
	for v := uint64(2); v <= 150; v++ {
		doc.Title = fmt.Sprintf("Version %d", v)
		e.apply(v, doc)
		committed.Store(v)
		// Some reads see each version (and fill or hit the cache).
		seen := reads.Load() + 3
		testenv.WaitFor(t, 5*time.Minute, "reads of the new version", func() bool { return reads.Load() >= seen })
	}
	close(stop)
	wg.Wait()
	if stale.Load() > 0 {
		t.Fatalf("%d of %d reads served a card older than an applied change: %v", stale.Load(), reads.Load(), firstStale.Load())
	}
	if hits.Load() == 0 {
		t.Fatalf("no cache hits in %d reads: the test did not exercise the cache", reads.Load())
	}
	t.Logf("%d reads, %d cache hits, none stale", reads.Load(), hits.Load())
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	e.svc.WaitTimeout = 5 * time.Second
	e.apply(10, track1)
	// The watermark moves as the indexer moves it: CDC's snapshot report
	// (0, 1000] with no rows, then a report of WAL without catalog changes.
	report(t, e.pool.Pool, applied.Progress{To: 1000, Snapshot: true})
	// Already applied: answers at once.
	if r := e.get("/v1/tracks/" + track1.ID + "?after=900"); r.status != 200 || r.header.Get("X-Consistency-Token") != "1000" {
		t.Fatalf("after an applied token: %d %v %s", r.status, r.header, r.body)
	}
	// Not yet applied: waits until the indexer gets there.
	done := make(chan reply, 1)
	start := time.Now()
	go func() { done <- e.get("/v1/search?q=kino&after=2000") }()
	select {
	case r := <-done:
		t.Fatalf("answered before the token was applied: %d %s", r.status, r.body)
	case <-time.After(300 * time.Millisecond):
	}
	report(t, e.pool.Pool, applied.Progress{From: 1000, To: 2000})
	r := <-done
	if r.status != 200 || time.Since(start) < 300*time.Millisecond || r.header.Get("X-Consistency-Token") != "2000" {
		t.Fatalf("after waiting: %d %s %v", r.status, r.body, r.header)
	}
	// PostgreSQL's X/Y form is accepted too.
	if r := e.get("/v1/tracks/" + track1.ID + "?after=0/7D0"); r.status != 200 {
		t.Fatalf("X/Y token: %d %s", r.status, r.body)
	}
}

// report records a CDC progress report and advances the watermark.
func report(t *testing.T, pool *pgxpool.Pool, p applied.Progress) {
	t.Helper()
	if err := applied.RecordProgress(t.Context(), pool, p); err != nil {
		t.Fatal(err)
	}
	if _, err := applied.Advance(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
}

func TestReadYourWritesTimesOut(t *testing.T) {
	t.Parallel()
	e := setup(t, true)
	e.svc.WaitTimeout = 200 * time.Millisecond
	e.apply(10, track1)
	start := time.Now()
	r := e.get("/v1/tracks/" + track1.ID + "?after=99999")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Content-Type") != "application/problem+json" || r.header.Get("Retry-After") == "" {
		t.Fatalf("timeout answer: %d %v %s", r.status, r.header, r.body)
	}
	var p map[string]any
	_ = json.Unmarshal(r.body, &p)
	if p["type"] != "/problems/not-yet-consistent" || p["after"] != "99999" || p["applied"] != "0" || !strings.Contains(p["detail"].(string), "not yet 99999") {
		t.Fatalf("problem: %s", r.body)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Fatalf("waited %s, want about 200ms", d)
	}
}

func TestBadParameters(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	e.apply(10, track1)
	long := url.QueryEscape(strings.Repeat("a", 201))
	cases := []struct{ path, mention string }{
		{"/v1/search?size=0", "size"},
		{"/v1/search?size=101", "size"},
		{"/v1/search?size=ten", "size"},
		{"/v1/search?page=0", "page"},
		{"/v1/search?page=500&size=100", "10000"},
		{"/v1/search?year_from=19x", "year_from"},
		{"/v1/search?year_from=2000&year_to=1990", "year_from"},
		{"/v1/search?artist=nope", "artist"},
		{"/v1/search?q=" + long, "q"},
		{"/v1/search?q=kino&after=yesterday", "after"},
		{"/v1/tracks/not-a-uuid", "id"},
		{"/v1/albums/123", "id"},
		{"/v1/genres/rock/tracks?size=-1", "size"},
		{"/v1/search?genre=" + strings.Repeat("g", 65), "genre"},
		{"/v1/search?genre=Rock%0A", "genre"},
		{"/v1/search?genre=rock&genre=pop", "genre"},
		{"/v1/genres/" + strings.Repeat("g", 65) + "/tracks", "id"},
		{"/v1/genres/ROCK%20%27/tracks", "id"},
	}
	for _, c := range cases {
		r := e.get(c.path)
		if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", c.path, r.status, r.body)
			continue
		}
		var p map[string]any
		_ = json.Unmarshal(r.body, &p)
		if d, _ := p["detail"].(string); !strings.Contains(d, c.mention) || p["type"] != "/problems/invalid-parameter" {
			t.Errorf("%s: problem %s should name %q", c.path, r.body, c.mention)
		}
	}
	// ?after= without a database: a clear 503, not a silent stale answer.
	if r := e.get("/v1/search?q=kino&after=5"); r.status != 503 {
		t.Errorf("after without DATABASE_URL: %d %s", r.status, r.body)
	}
}

// The attack: anonymous requests with a new, long genre each (/v1/search
// ?genre= and /v1/genres/{id}/tracks) each left a cache entry in Redis for 5
// minutes, keyed by the genre: memory grew with the attacker's bytes. Now an
// unfit genre is a 400 naming it, and a genre (or query) that matches nothing
// is answered without being cached, so Redis holds only what the catalog has.
func TestMadeUpGenresDoNotFillTheCache(t *testing.T) {
	t.Parallel()
	e := setup(t, false)
	e.apply(10, track1, track2)
	opt, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := t.Context()
	dbsize := func() int64 {
		n, err := rdb.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// And Redis itself is bounded (internal/infra.StartRedis).
	cfg, err := rdb.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["maxmemory"] == "0" || cfg["maxmemory"] == "" || cfg["maxmemory-policy"] != "volatile-ttl" {
		t.Fatalf("redis runs with maxmemory %q, policy %q", cfg["maxmemory"], cfg["maxmemory-policy"])
	}
	before := dbsize()
	for i := range 200 {
		g := fmt.Sprintf("made-up-%d", i)
		for _, p := range []string{"/v1/search?q=kino&genre=" + g, "/v1/genres/" + g + "/tracks"} {
			r := e.get(p)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", p, r.status, r.body)
			}
			if pg := decode[query.Page](t, r); pg.Total != 0 {
				t.Fatalf("%s: %d hits for a genre nobody has", p, pg.Total)
			}
		}
	}
	huge := strings.Repeat("x", 60<<10)
	if r := e.get("/v1/search?genre=" + huge); r.status != 400 || !strings.Contains(string(r.body), "genre") {
		t.Fatalf("a 60 KiB genre: %d %.200s", r.status, r.body)
	}
	if grew := dbsize() - before; grew != 0 {
		t.Fatalf("made-up genres left %d keys in Redis", grew)
	}
	// A real genre is still cached: the second read is a hit.
	e.get("/v1/genres/rock/tracks")
	if r := e.get("/v1/genres/rock/tracks"); r.header.Get("X-Cache") != "hit" || decode[query.Page](t, r).Total != 2 {
		t.Fatalf("a real genre: X-Cache %q, %s", r.header.Get("X-Cache"), r.body)
	}
}
