package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/feed"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/token"
)

// The serving part's shape.
const (
	listensPerListener = 20
	catalogTracks      = 5_000
	catalogArtists     = 500
	warmUp             = 200
	feedFirst          = "GET /v1/me/feed, each listener's first of the day (profile and daily mix made)"
	feedAgain          = "GET /v1/me/feed again (the feed as answered, kept 60 s while its inputs are the same)"
)

// serveFigures are the serving latencies of one way to read a stored result.
type serveFigures struct {
	Name          string
	N             int
	P50, P99, Max time.Duration
	Bytes         int
}

// serve measures GET /v1/me/recommendations (the feed service: token
// verification, one primary-key read, the stored bytes written with their
// ETag) and GET /v1/me/feed (the home feed: the stored result and the daily
// mix by primary key, the listener's last plays, sections from the query
// service's cards through the feed's caches) beside a plain PostgreSQL read
// and a plain Redis GET of the same bytes, for listeners' results stored as
// the recompute stores them, each listener with listens and the tracks in
// a catalogue the query service serves.
func serve(ctx context.Context, listeners, requests int) ([]serveFigures, error) {
	dir, err := os.MkdirTemp("", "overture-bench-feed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // PostgreSQL runs as its own user
		return nil, err
	}
	var group infra.Group
	defer group.Stop() //nolint:errcheck
	pg, err := infra.StartPostgres(ctx, infra.PostgresOptions{Dir: filepath.Join(dir, "pg"), Fast: true})
	if err != nil {
		return nil, err
	}
	group.Add(pg.Process)
	rds, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: filepath.Join(dir, "redis"), MaxMemory: "1gb"})
	if err != nil {
		return nil, err
	}
	group.Add(rds.Process)
	pool, err := postgres.OpenMigrated(ctx, pg.URL("postgres"), result.Migrate)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := stats.Migrate(ctx, pool.Pool); err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(rds.URL(0))
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	// A catalogue the query service serves (a Bleve read model): the
	// stored results and the listens name its tracks.
	rng := rand.New(rand.NewPCG(1, 2))
	cat, err := benchCatalog(ctx, dir, rng)
	if err != nil {
		return nil, err
	}
	defer cat.close()
	randomTrack := func() string { return cat.ids[rng.IntN(len(cat.ids))] }
	statsStore := stats.NewPG(pool.Pool)
	var rows []stats.Row

	// Results shaped as the recompute makes them: two sections of 50.
	store := result.Store{Pool: pool.Pool}
	var batch []result.Result
	size := 0
	for u := range listeners {
		user := fmt.Sprintf("listener-%06d", u)
		b := result.Body{UserID: user, Model: "als+cooccurrence-tracks", Version: "recompute-bench", MadeAt: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
		// The listener played listensPerListener catalogue tracks in the
		// week before; the "because" tracks are among them.
		var played []string
		now := time.Now()
		for k := range listensPerListener {
			id := randomTrack()
			played = append(played, id)
			at := now.Add(-time.Duration(k+1) * 3 * time.Hour)
			rows = append(rows, stats.Row{UserID: user, Listen: eventtype.Listen{ID: fmt.Sprintf("%s-%d", user, k), ListenedAt: at.Unix(),
				ArtistName: cat.artistOf[id], TrackName: "a track", TrackID: id, Stream: true, Scrobble: true}})
		}
		for _, id := range []string{"daily-mix", "because-you-listened"} {
			sec := result.Section{ID: id, Model: id, Reason: "a reason of about the length the real ones have, for the listener"}
			for range 50 {
				t := result.Track{TrackID: randomTrack(), Score: rng.Float32()}
				if id == "because-you-listened" {
					t.Because = played[rng.IntN(4)]
				}
				sec.Tracks = append(sec.Tracks, t)
			}
			b.Sections = append(b.Sections, sec)
		}
		r, err := result.New(b)
		if err != nil {
			return nil, err
		}
		size = len(r.Body)
		batch = append(batch, r)
		if err := rdb.Set(ctx, "bench:rec:"+r.UserID, r.Body, 0).Err(); err != nil {
			return nil, err
		}
		if len(batch) == 1000 || u == listeners-1 {
			if _, err := store.Put(ctx, batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
			if _, err := statsStore.Write(ctx, rows); err != nil {
				return nil, err
			}
			rows = rows[:0]
		}
	}
	if err := statsStore.Rollup(ctx, time.Now().AddDate(0, 0, -7), time.Now()); err != nil {
		return nil, err
	}

	// A token authority like the auth service: a key and its JWKS.
	key, err := token.NewKey("bench")
	if err != nil {
		return nil, err
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(token.JWKS{Keys: []token.JWK{token.PublicJWK(key)}})
	}))
	defer jwks.Close()
	const issuer = "http://overture.bench"
	svc := feed.New()
	svc.Pool, svc.Log = pool.Pool, slog.New(slog.DiscardHandler)
	svc.Verifier = &token.Verifier{Keys: &token.RemoteKeys{URL: jwks.URL}, Issuer: issuer, Audience: "overture"}
	svc.Stats = statsStore
	if err := svc.Start(ctx, map[string]string{"DATABASE_URL": "unused", "PUBLIC_BASE_URL": issuer, "QUERY_URL": cat.srv.URL}); err != nil {
		return nil, err
	}
	defer svc.Stop(ctx) //nolint:errcheck
	srv := httptest.NewServer(svc)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	tokens := map[string]string{}
	tokenOf := func(user string) (string, error) {
		if t, ok := tokens[user]; ok {
			return t, nil
		}
		now := time.Now()
		t, err := token.Sign(key, &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: user, Audience: jwt.ClaimStrings{"overture"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "bench-" + user}, Roles: []string{token.RoleListener}, EntitlementVersion: 1})
		tokens[user] = t
		return t, err
	}
	// Distinct listeners, so the feed's "first of the day" way meets each
	// once; the warm-up reads other listeners.
	order := rng.Perm(listeners)
	if requests+warmUp > listeners {
		return nil, fmt.Errorf("-serve-requests %d needs at least %d listeners", requests, requests+warmUp)
	}
	users, warm := make([]string, requests), make([]string, warmUp)
	for k := range users {
		users[k] = fmt.Sprintf("listener-%06d", order[k])
	}
	for k := range warm {
		warm[k] = fmt.Sprintf("listener-%06d", order[requests+k])
	}
	for _, u := range append(slices.Clone(users), warm...) {
		if _, err := tokenOf(u); err != nil {
			return nil, err
		}
	}
	feedBodies := map[string][]byte{}
	feedETags := map[string]string{}
	getFeed := func(user string, ifNoneMatch string, want int) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me/feed", nil)
		req.Header.Set("Authorization", "Bearer "+tokens[user])
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		res, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != want {
			err = fmt.Errorf("feed answered %d, want %d: %s", res.StatusCode, want, b)
		}
		return res, b, err
	}
	ways := []struct {
		name string
		get  func(user string) (int, error)
	}{
		{"GET /v1/me/recommendations (feed service over HTTP: token check, primary-key read, ETag)", func(user string) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/me/recommendations", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[user])
			res, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("feed answered %d: %s", res.StatusCode, b)
			}
			return len(b), err
		}},
		{"plain PostgreSQL read of the same bytes (pgx, SELECT body … WHERE user_id = $1)", func(user string) (int, error) {
			var b []byte
			err := pool.QueryRow(ctx, `SELECT body FROM recommend_result WHERE user_id = $1`, user).Scan(&b)
			return len(b), err
		}},
		{"plain Redis GET of the same bytes", func(user string) (int, error) {
			b, err := rdb.Get(ctx, "bench:rec:"+user).Bytes()
			return len(b), err
		}},
		{feedFirst, func(user string) (int, error) {
			_, b, err := getFeed(user, "", http.StatusOK)
			return len(b), err
		}},
		{feedAgain, func(user string) (int, error) {
			res, b, err := getFeed(user, "", http.StatusOK)
			if err != nil {
				return 0, err
			}
			feedBodies[user], feedETags[user] = b, res.Header.Get("ETag")
			return len(b), nil
		}},
		{"GET /v1/me/feed with If-None-Match: its ETag (304)", func(user string) (int, error) {
			_, _, err := getFeed(user, feedETags[user], http.StatusNotModified)
			return len(feedBodies[user]), err
		}},
		{"plain PostgreSQL read of the same feed bytes (SELECT body … WHERE user_id = $1)", func(user string) (int, error) {
			var b []byte
			err := pool.QueryRow(ctx, `SELECT body FROM bench_feed WHERE user_id = $1`, user).Scan(&b)
			return len(b), err
		}},
		{"plain Redis GET of the same feed bytes", func(user string) (int, error) {
			b, err := rdb.Get(ctx, "bench:feed:"+user).Bytes()
			return len(b), err
		}},
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_feed (user_id text PRIMARY KEY, body bytea NOT NULL)`); err != nil {
		return nil, err
	}
	var out []serveFigures
	for k, w := range ways {
		if k == 5 { // the references read the bytes the feed answered
			for user, b := range feedBodies {
				if err := rdb.Set(ctx, "bench:feed:"+user, b, 0).Err(); err != nil {
					return nil, err
				}
				if _, err := pool.Exec(ctx, `INSERT INTO bench_feed (user_id, body) VALUES ($1, $2)`, user, b); err != nil {
					return nil, err
				}
			}
		}
		// The feed's later ways read what its second pass made, after the
		// first pass warmed everything up.
		if k <= 3 {
			for _, u := range warm { // warm-up: connections, JWKS, plans, chart
				if _, err := w.get(u); err != nil {
					return nil, err
				}
			}
		}
		lat := make([]time.Duration, 0, len(users))
		n := 0
		for _, u := range users {
			t := time.Now()
			b, err := w.get(u)
			if err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(t))
			n = b
		}
		slices.Sort(lat)
		if w.name != feedFirst && w.name != feedAgain && !strings.HasPrefix(w.name, "GET /v1/me/feed with") && !strings.Contains(w.name, "feed bytes") {
			n = max(n, size)
		}
		out = append(out, serveFigures{Name: w.name, N: len(lat), P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], Max: lat[len(lat)-1], Bytes: n})
	}
	return out, nil
}

func reportServe(listeners int, rows []serveFigures) {
	fmt.Printf("## Serving stored recommendations and the home feed\n\n")
	fmt.Printf("%d listeners' results stored as the recompute stores them (two sections of 50 tracks, %d bytes of JSON each) in PostgreSQL (fsync off) and, for the reference, the same bytes in Redis; each listener has %d listens in the statistics store (PostgreSQL) over the week before, and the results and listens name tracks of a catalogue of %d tracks by %d artists that the query service serves from a Bleve read model (over HTTP, as on the platform). One client on the same machine reads distinct random listeners one at a time (closed loop) after a warm-up of %d other listeners; every service runs in this one process, on GOMAXPROCS=2.\n\n",
		listeners, rows[0].Bytes, listensPerListener, catalogTracks, catalogArtists, warmUp)
	fmt.Println("| read | requests | bytes | p50 | p99 | max |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Printf("| %s | %d | %d | %.2f ms | %.2f ms | %.2f ms |\n", r.Name, r.N, r.Bytes, ms(r.P50), ms(r.P99), ms(r.Max))
	}
	fmt.Println()
	fmt.Printf("- GET /v1/me/recommendations p99 under 10 ms: %s (%.2f ms; the plain PostgreSQL read: %.2f ms, Redis: %.2f ms).\n", verdict(rows[0].P99 < 10*time.Millisecond), ms(rows[0].P99), ms(rows[1].P99), ms(rows[2].P99))
	first, again, pg, rd := rows[3], rows[4], rows[6], rows[7]
	fmt.Printf("- GET /v1/me/feed p99 under 10 ms, a listener's first feed of the day (their profile made, their daily mix made and stored): %s (%.2f ms, %.1f× the plain PostgreSQL read of the same bytes, %.2f ms; %.1f× Redis, %.2f ms).\n",
		verdict(first.P99 < 10*time.Millisecond), ms(first.P99), ratio(first.P99, pg.P99), ms(pg.P99), ratio(first.P99, rd.P99), ms(rd.P99))
	fmt.Printf("- GET /v1/me/feed p99 under 10 ms, again (the same inputs: the feed as answered): %s (%.2f ms, %.1f× PostgreSQL, %.1f× Redis).\n",
		verdict(again.P99 < 10*time.Millisecond), ms(again.P99), ratio(again.P99, pg.P99), ratio(again.P99, rd.P99))
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// benchCatalog is a catalogue in a Bleve read model behind the query
// service: catalogTracks tracks by catalogArtists artists, a tenth of them
// published in the last month (the feed's new releases).
type benchCatalogue struct {
	ids      []string
	artistOf map[string]string
	srv      *httptest.Server
	close    func()
}

func benchCatalog(ctx context.Context, dir string, rng *rand.Rand) (*benchCatalogue, error) {
	st, err := bleve.Open(filepath.Join(dir, "search"))
	if err != nil {
		return nil, err
	}
	c := &benchCatalogue{artistOf: map[string]string{}}
	uuidOf := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
	artists := make([]search.Artist, catalogArtists)
	for k := range artists {
		artists[k] = search.Artist{ID: uuidOf(), Name: fmt.Sprintf("Artist %d", k)}
	}
	var ops []search.Op
	now := time.Now()
	for k := range catalogTracks {
		a := artists[k%catalogArtists]
		published := now.AddDate(-1, 0, -rng.IntN(300))
		if k%10 == 0 {
			published = now.AddDate(0, 0, -rng.IntN(28))
		}
		t := search.Track{ID: uuidOf(), Title: fmt.Sprintf("Track %d", k), Artists: []search.Artist{a}, Album: &search.Album{ID: uuidOf(), Title: fmt.Sprintf("Album %d", k/10)},
			DurationMS: 200_000, Popularity: int64(rng.IntN(100_000)), PublishedAt: published, Renditions: []string{"hls-aac-128"}}
		c.ids = append(c.ids, t.ID)
		c.artistOf[t.ID] = a.Name
		ops = append(ops, search.Upsert(t, 1))
	}
	for part := range slices.Chunk(ops, 1000) {
		if err := st.Apply(ctx, part); err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	c.srv = httptest.NewServer(query.NewWith(st, nil, nil))
	c.close = func() { c.srv.Close(); _ = st.Close() }
	return c, nil
}
