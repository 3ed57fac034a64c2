package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/steering/steeringtest"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestProbePicksTheFastestSteadyPOP(t *testing.T) {
	t.Parallel()
	keys := urlsign.Keys{"k1": []byte("probe-test-secret-xx")}
	auth := tokentest.New(t)
	var pops []steering.POP
	// near but jittery, far and steady, near and steady (the right answer).
	shapes := []struct {
		name         string
		base, spread time.Duration
	}{{"jittery", 2 * time.Millisecond, 60 * time.Millisecond}, {"far", 50 * time.Millisecond, 0}, {"best", 3 * time.Millisecond, time.Millisecond}}
	for _, sh := range shapes {
		e, err := edge.New(edge.Config{Name: sh.name, Region: "r-" + sh.name, Addr: "127.0.0.1:0", S3Endpoint: "http://127.0.0.1:1",
			S3AccessKey: "x", S3SecretKey: "y", SigningKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Stop(context.Background()) })
		pops = append(pops, steering.POP{Name: sh.name, Region: "r-" + sh.name, URL: "http://" + steeringtest.DelayProxy(t, e.Addr(), sh.base, sh.spread)})
	}
	// The catalog decides what steering signs: one published track.
	const track = "00000000-0000-4000-8000-0000000000bb"
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := catalog.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `WITH t AS (INSERT INTO track (id, title, state) VALUES ($1, 'x', 'published'))
		INSERT INTO track_rendition (track_id, kind, storage_key) VALUES ($1, 'hls', 'tracks/' || $1 || '/v1/hls/index.m3u8')`, track); err != nil {
		t.Fatal(err)
	}
	svc, err := steering.NewWithConfig(steering.Config{POPs: pops, Keys: keys, Verifier: auth.Verifier(), PollInterval: -1,
		Catalog: &steering.Catalog{Pool: pool}})
	if err != nil {
		t.Fatal(err)
	}
	svc.Poll(context.Background())
	h := httptest.NewServer(svc)
	defer h.Close()
	client := &http.Client{Transport: &http.Transport{}}
	best, all, err := Best(context.Background(), client, h.URL, auth.Token(t, "u1", tokentest.Options{}), track, "hls/index.m3u8", 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("%d results", len(all))
	}
	for _, r := range all {
		t.Logf("%s: mean %v jitter %v", r.POP, r.MeanRTT, r.Jitter)
	}
	if best.POP != "best" {
		t.Fatalf("picked %s, want best", best.POP)
	}
	if far := find(all, "far"); far.MeanRTT < 45*time.Millisecond {
		t.Fatalf("far measured %v, want ≥ 45ms", far.MeanRTT)
	}
	if j := find(all, "jittery"); j.Jitter <= find(all, "best").Jitter {
		t.Fatalf("jitter not detected: jittery %v, best %v", j.Jitter, find(all, "best").Jitter)
	}
}

func find(rs []Result, pop string) Result {
	for _, r := range rs {
		if r.POP == pop {
			return r
		}
	}
	return Result{}
}

func TestProbeRanksFailingCandidateLast(t *testing.T) {
	t.Parallel()
	dead := steering.Candidate{POP: "dead", ProbeURL: "http://127.0.0.1:1/health/liveness"}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer ok.Close()
	res := Measure(context.Background(), http.DefaultClient, []steering.Candidate{dead, {POP: "ok", ProbeURL: ok.URL}}, 3)
	if res[0].POP != "ok" || res[1].Err == nil {
		t.Fatalf("results: %+v", res)
	}
}
