package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/token"
)

// Verification: what every service pays per request, against the floor of
// one raw Ed25519 verification of the same signing input.
func benchToken(b *testing.B) (token.Key, string, *token.Verifier) {
	k, _ := token.NewKey("bench")
	now := time.Now()
	raw, err := token.Sign(k, &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://overture.test", Subject: "8d0f3c2e-6f7a-4c1e-9d2b-1a2b3c4d5e6f",
		Audience: jwt.ClaimStrings{"overture"}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "4f1e2d3c-b5a6-4789-8abc-def012345678"},
		Roles: []string{"listener"}, Premium: true, PremiumUntil: jwt.NewNumericDate(now.Add(720 * time.Hour)), EntitlementVersion: 3})
	if err != nil {
		b.Fatal(err)
	}
	return k, raw, &token.Verifier{Keys: token.StaticKeys{k.ID: k.Public()}, Issuer: "https://overture.test", Audience: "overture"}
}

// cpuTime is the process's user+system CPU time. Reporting CPU ns per
// operation measures cost per core even when the machine is shared and the
// benchmark's goroutines wait for a CPU (wall-clock ns/op then lies).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkVerifyAccessToken(b *testing.B) {
	_, raw, v := benchToken(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkVerifyRawEd25519(b *testing.B) {
	k, raw, _ := benchToken(b)
	i := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:i])
	sig, _ := base64.RawURLEncoding.DecodeString(raw[i+1:])
	pub := k.Public()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !ed25519.Verify(pub, input, sig) {
				b.Error("bad signature")
				return
			}
		}
	})
}

// latencies records per-operation durations and reports p50/p99.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) report(b *testing.B) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(l.d[min(len(l.d)-1, int(float64(len(l.d))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func post(b *testing.B, c *http.Client, url string, body any) (int, map[string]any) {
	buf, _ := json.Marshal(body)
	res, err := c.Post(url, "application/json", bytes.NewReader(buf))
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

func benchEnv(b *testing.B) *env {
	e := newEnv(b, map[string]string{"AUTH_LOGIN_LIMIT_ACCOUNT": "0/1m", "AUTH_LOGIN_LIMIT_IP": "0/1m",
		"AUTH_REFRESH_LIMIT_ACCOUNT": "0/1m", "AUTH_REFRESH_LIMIT_IP": "0/1m"})
	e.svc.Argon2 = auth.DefaultArgon2
	return e
}

// BenchmarkLogin is a full HTTP password login: rate-limit counters in Redis,
// the account query, argon2id with auth.DefaultArgon2, a new session in Redis
// and a signed access token. Sequential, so p99 is not queueing.
func BenchmarkLogin(b *testing.B) {
	e := benchEnv(b)
	const pw = "benchmark password"
	h, _ := auth.HashPassword(pw, auth.DefaultArgon2)
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO auth_account (id, email, password_hash, confirmed_at) VALUES (gen_random_uuid(), 'bench@example.com', $1, now())`, h); err != nil {
		b.Fatal(err)
	}
	c := &http.Client{}
	var lat latencies
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		t0 := time.Now()
		if st, m := post(b, c, e.srv.URL+"/v1/auth/login", map[string]string{"email": "bench@example.com", "password": pw}); st != 200 {
			b.Fatalf("login %d %v", st, m)
		}
		lat.add(time.Since(t0))
	}
	lat.report(b)
}

// BenchmarkRefresh is a full HTTP refresh: rate-limit counters, the rotation
// script, the account query and a signed access token.
func BenchmarkRefresh(b *testing.B) {
	e := benchEnv(b)
	h, _ := auth.HashPassword("benchmark password", auth.DefaultArgon2)
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO auth_account (id, email, password_hash, confirmed_at) VALUES (gen_random_uuid(), 'bench@example.com', $1, now())`, h); err != nil {
		b.Fatal(err)
	}
	c := &http.Client{}
	_, m := post(b, c, e.srv.URL+"/v1/auth/login", map[string]string{"email": "bench@example.com", "password": "benchmark password"})
	rt, _ := m["refresh_token"].(string)
	var lat latencies
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		t0 := time.Now()
		st, m := post(b, c, e.srv.URL+"/v1/auth/refresh", map[string]string{"refresh_token": rt})
		if st != 200 {
			b.Fatalf("refresh %d %v", st, m)
		}
		lat.add(time.Since(t0))
		rt, _ = m["refresh_token"].(string)
	}
	lat.report(b)
}

// BenchmarkRedisGetSet is the reference for refresh: one bare GET and one SET
// round trip on the same Redis.
func BenchmarkRedisGetSet(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	var lat latencies
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		t0 := time.Now()
		_ = e.rdb.Get(ctx, "bench:key").Err()
		if err := e.rdb.Set(ctx, "bench:key", "v", 0).Err(); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	lat.report(b)
}
