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
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/feed"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/token"
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
// ETag) beside a plain PostgreSQL read and a plain Redis GET of the same
// bytes, for listeners' results stored as the recompute stores them.
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
	rds, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: filepath.Join(dir, "redis")})
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

	// Results shaped as the recompute makes them: two sections of 50.
	rng := rand.New(rand.NewPCG(1, 2))
	store := result.Store{Pool: pool.Pool}
	var batch []result.Result
	size := 0
	for u := range listeners {
		b := result.Body{UserID: fmt.Sprintf("listener-%06d", u), Model: "als+cooccurrence-tracks", Version: "recompute-bench", MadeAt: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
		for _, id := range []string{"daily-mix", "because-you-listened"} {
			sec := result.Section{ID: id, Model: id, Reason: "a reason of about the length the real ones have, for the listener"}
			for range 50 {
				t := result.Track{TrackID: fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff), Score: rng.Float32()}
				if id == "because-you-listened" {
					t.Because = t.TrackID[:8] + "-because"
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
		}
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
	if err := svc.Start(ctx, map[string]string{"DATABASE_URL": "unused", "PUBLIC_BASE_URL": issuer}); err != nil {
		return nil, err
	}
	defer svc.Stop(ctx) //nolint:errcheck
	srv := httptest.NewServer(svc)
	defer srv.Close()
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
	users := make([]string, requests)
	for k := range users {
		users[k] = fmt.Sprintf("listener-%06d", rng.IntN(listeners))
		if _, err := tokenOf(users[k]); err != nil {
			return nil, err
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
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
	}
	var out []serveFigures
	for _, w := range ways {
		for _, u := range users[:min(200, len(users))] { // warm-up: connections, JWKS, plans
			if _, err := w.get(u); err != nil {
				return nil, err
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
		out = append(out, serveFigures{Name: w.name, N: len(lat), P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], Max: lat[len(lat)-1], Bytes: max(n, size)})
	}
	return out, nil
}

func reportServe(listeners int, rows []serveFigures) {
	fmt.Printf("## Serving stored recommendations\n\n")
	fmt.Printf("%d listeners' results stored as the recompute stores them (two sections of 50 tracks, %d bytes of JSON each) in PostgreSQL (fsync off) and, for the reference, the same bytes in Redis; one client on the same machine reads random listeners' results one at a time (closed loop) after a warm-up of 200.\n\n", listeners, rows[0].Bytes)
	fmt.Println("| read | requests | p50 | p99 | max |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Printf("| %s | %d | %.2f ms | %.2f ms | %.2f ms |\n", r.Name, r.N, ms(r.P50), ms(r.P99), ms(r.Max))
	}
	fmt.Println()
	fmt.Printf("- GET /v1/me/recommendations p99 under 10 ms: %s (%.2f ms; the plain PostgreSQL read: %.2f ms, Redis: %.2f ms).\n", verdict(rows[0].P99 < 10*time.Millisecond), ms(rows[0].P99), ms(rows[1].P99), ms(rows[2].P99))
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
