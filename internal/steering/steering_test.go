package steering

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var keys = urlsign.Keys{"k1": []byte("steering-test-secret-1")}

// startPOP starts a real edge POP (its origin need not be reachable for
// steering tests that only read /stats).
func startPOP(t *testing.T, name, region, s3 string) *edge.Server {
	t.Helper()
	if s3 == "" {
		s3 = "http://127.0.0.1:1"
	}
	e, err := edge.New(edge.Config{Name: name, Region: region, Addr: "127.0.0.1:0", S3Endpoint: s3,
		S3AccessKey: "x", S3SecretKey: "y", SigningKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// clock is a manual clock for dwell-time tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type fixture struct {
	svc  *Service
	pops map[string]*edge.Server
	clk  *clock
	auth *tokentest.Authority
	// catalog is the fixture's catalog (newFixtureS3).
	catalog *Catalog
}

// latency is the configured matrix of the tests, in ms. The gaps are far
// wider than loopback RTT noise on a loaded machine (a slow poll can take
// tens of ms), so the expected order never depends on scheduling luck.
var latency = map[string]float64{
	"eu-west>eu-central": 200, "eu-west>ru-central": 500, "eu-west>us-east": 800,
	"eu-central>ru-central": 300, "eu-central>us-east": 1000, "ru-central>us-east": 1300,
}

func newFixture(t *testing.T, s3 string, tweak func(*Config), pops ...POP) *fixture {
	t.Helper()
	f := &fixture{pops: map[string]*edge.Server{}, clk: &clock{time.Unix(1_800_000_000, 0)}, auth: tokentest.New(t)}
	var cfgPOPs []POP
	for _, p := range pops {
		e := startPOP(t, p.Name, p.Region, s3)
		f.pops[p.Name] = e
		cfgPOPs = append(cfgPOPs, POP{Name: p.Name, Region: p.Region, URL: e.URL()})
	}
	cfg := Config{POPs: cfgPOPs, Latency: latency, Keys: keys, Verifier: f.auth.Verifier(), PollInterval: -1,
		MinDwell: time.Minute, Now: f.clk.now, Catalog: testCatalog(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	svc, err := NewWithConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// rounds polls n times, advancing the clock by a second each time.
func (f *fixture) rounds(n int) {
	for range n {
		f.clk.t = f.clk.t.Add(time.Second)
		f.svc.Poll(context.Background())
	}
}

func (f *fixture) choice(region string) string {
	_, ch := f.svc.HealthMap()
	return ch[region]
}

var fivePOPs = []POP{{Name: "west-a", Region: "eu-west"}, {Name: "west-b", Region: "eu-west"},
	{Name: "central", Region: "eu-central"}, {Name: "ru", Region: "ru-central"}, {Name: "us", Region: "us-east"}}

func TestSelectionFollowsTheRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", func(c *Config) { c.MinDwell = time.Millisecond }, fivePOPs...)
	f.rounds(1)
	if got := f.choice("eu-west"); got != "eu-west" {
		t.Fatalf("idle: eu-west listeners go to %q, want their own region", got)
	}
	if got := f.choice("ru-central"); got != "ru-central" {
		t.Fatalf("idle: ru-central listeners go to %q", got)
	}
	// The nearest region carries more network load than the next: after the
	// challenger has won SwitchSamples rounds, listeners move.
	f.pops["west-a"].SetSyntheticLoad(0.2, 0.5)
	f.pops["west-b"].SetSyntheticLoad(0.2, 0.5)
	f.pops["central"].SetSyntheticLoad(0.2, 0.1)
	f.pops["ru"].SetSyntheticLoad(0.2, 0.3)
	f.rounds(2)
	if got := f.choice("eu-west"); got != "eu-west" {
		t.Fatalf("switched after 2 rounds (needs 3): %q", got)
	}
	f.rounds(1)
	if got := f.choice("eu-west"); got != "eu-central" {
		t.Fatalf("eu-west listeners: %q, want eu-central (least network load of the 3 nearest)", got)
	}
	// us-east is idle but not among the 3 nearest regions: never chosen.
	f.pops["central"].SetSyntheticLoad(0.2, 0.6)
	f.pops["ru"].SetSyntheticLoad(0.2, 0.6)
	f.rounds(5)
	if got := f.choice("eu-west"); got == "us-east" {
		t.Fatal("a region outside the 3 nearest was chosen")
	}
	// Above 80% load a region is dropped (after Fall=3 samples) and listeners
	// leave at once, without waiting for the switch rule.
	for _, p := range []string{"west-a", "west-b", "central", "ru", "us"} {
		f.pops[p].SetSyntheticLoad(0.1, 0.1)
	}
	f.rounds(4)
	cur := f.choice("eu-west")
	for _, p := range fivePOPs {
		if p.Region == cur {
			f.pops[p.Name].SetSyntheticLoad(0.9, 0.1)
		}
	}
	f.rounds(2)
	if got := f.choice("eu-west"); got != cur {
		t.Fatalf("dropped after 2 overloaded samples (Fall=3): %q", got)
	}
	f.rounds(1)
	if got := f.choice("eu-west"); got == cur || got == "" {
		t.Fatalf("overloaded region %q still chosen (%q)", cur, got)
	}
	pops, _ := f.svc.HealthMap()
	for _, p := range pops {
		if p.Region == cur && !p.Overloaded {
			t.Fatalf("%s not marked overloaded: %+v", p.Name, p)
		}
	}
}

func TestFailingPOPIsMarkedDownAndRecoversWithRise(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", nil, POP{Name: "a", Region: "eu-west"}, POP{Name: "b", Region: "eu-central"})
	f.rounds(1)
	a := f.pops["a"]
	url := a.URL()
	_ = a.Stop(context.Background())
	f.rounds(2)
	if pops, _ := f.svc.HealthMap(); !pops[0].Healthy {
		t.Fatal("marked down after 2 failed polls (Fall=3)")
	}
	f.rounds(1)
	pops, ch := f.svc.HealthMap()
	if pops[0].Healthy || pops[0].LastError == "" || ch["eu-west"] != "eu-central" {
		t.Fatalf("after 3 failed polls: %+v, choice %q", pops[0], ch["eu-west"])
	}
	// Bring a POP back on the same address: Rise=2 good polls bring it back.
	back := startPOPAt(t, "a", "eu-west", url)
	_ = back
	f.rounds(1)
	if pops, _ := f.svc.HealthMap(); pops[0].Healthy {
		t.Fatal("healthy after 1 good poll (Rise=2)")
	}
	f.rounds(1)
	if pops, _ := f.svc.HealthMap(); !pops[0].Healthy {
		t.Fatal("not healthy after 2 good polls")
	}
}

func startPOPAt(t *testing.T, name, region, url string) *edge.Server {
	t.Helper()
	e, err := edge.New(edge.Config{Name: name, Region: region, Addr: strings.TrimPrefix(url, "http://"),
		S3Endpoint: "http://127.0.0.1:1", S3AccessKey: "x", S3SecretKey: "y", SigningKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

func TestDoesNotFlap(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", func(c *Config) { c.MinDwell = 10 * time.Second },
		POP{Name: "w", Region: "eu-west"}, POP{Name: "c", Region: "eu-central"})
	f.rounds(1)
	start := f.choice("eu-west")
	f.pops["c"].SetSyntheticLoad(0.1, 0.2)
	// Alternating samples: load and CPU swing across the thresholds every
	// round; no rule is met for long enough, so nothing switches.
	for i := range 30 {
		if i%2 == 0 {
			f.pops["w"].SetSyntheticLoad(0.9, 0.6)
		} else {
			f.pops["w"].SetSyntheticLoad(0.1, 0.0)
		}
		f.rounds(1)
		if got := f.choice("eu-west"); got != start {
			t.Fatalf("round %d: flapped from %q to %q", i, start, got)
		}
	}
	// A consistent advantage switches only once the dwell time has passed.
	f.svc.mu.Lock()
	f.svc.choices["eu-west"].since = f.clk.t
	f.svc.mu.Unlock()
	f.pops["w"].SetSyntheticLoad(0.1, 0.6)
	f.rounds(5) // 5 s < 10 s dwell
	if got := f.choice("eu-west"); got != start {
		t.Fatalf("switched before the minimum dwell time: %q", got)
	}
	f.rounds(6)
	if got := f.choice("eu-west"); got != "eu-central" {
		t.Fatalf("consistent advantage after dwell: %q, want eu-central", got)
	}
}

func TestRendezvousSpreadsAndIsStable(t *testing.T) {
	t.Parallel()
	var pops []*popState
	for i := range 4 {
		pops = append(pops, &popState{POP: POP{Name: fmt.Sprintf("pop-%d", i)}})
	}
	owner := map[string]string{}
	count := map[string]int{}
	for i := range 4000 {
		tr := fmt.Sprintf("track-%d", i)
		o := rendezvous(tr, pops)[0].Name
		owner[tr] = o
		count[o]++
	}
	for name, n := range count {
		if n < 800 || n > 1200 {
			t.Fatalf("%s owns %d of 4000 tracks; want about 1000", name, n)
		}
	}
	// pop-2 goes down: only its tracks move, and they spread over the rest.
	rest := []*popState{pops[0], pops[1], pops[3]}
	moved := 0
	for tr, o := range owner {
		n := rendezvous(tr, rest)[0].Name
		if o != "pop-2" && n != o {
			t.Fatalf("%s moved from healthy %s to %s", tr, o, n)
		}
		if o == "pop-2" {
			moved++
		}
	}
	if moved != count["pop-2"] {
		t.Fatalf("moved %d, want %d", moved, count["pop-2"])
	}
}

// End to end with a real S3 origin and real POPs: mode B redirects to a
// signed URL the chosen POP serves; mode A offers working candidates; only
// published tracks of the catalog are signed, with the catalog's premium flag.
func TestPlayAndCandidatesEndToEnd(t *testing.T) {
	t.Parallel()
	ep, access, secret := testenv.S3(t)
	const tr1, draft = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
	dir := "tracks/" + tr1 + "/v1/"
	putObjects(t, ep, access, secret, map[string]string{
		dir + "hls-aac-128/index.m3u8":   "#EXTM3U\n",
		dir + "flac/full.flac":           "lossless",
		"tracks/" + draft + "/v1/a.m3u8": "#EXTM3U\n",
	})
	f := newFixtureS3(t, ep, access, secret)
	addTrack(t, f.catalog, tr1, "published", rendition{kind: "hls-aac-128", key: dir + "hls-aac-128/index.m3u8"},
		rendition{kind: "flac", key: dir + "flac/full.flac", premium: true})
	addTrack(t, f.catalog, draft, "draft", rendition{kind: "hls", key: "tracks/" + draft + "/v1/a.m3u8"})
	f.rounds(1)
	h := httptest.NewServer(f.svc)
	defer h.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	listener := f.auth.Token(t, "listener-1", tokentest.Options{})
	get := func(u, bearer, region string) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if region != "" {
			req.Header.Set(RegionHeader, region)
		}
		r, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Body.Close() })
		return r
	}
	play := h.URL + "/v1/cdn/play/" + tr1 + "/hls-aac-128"
	if r := get(play, "", "eu-west"); r.StatusCode != 401 {
		t.Fatalf("play without a token: %d", r.StatusCode)
	}
	if r := get(h.URL+"/v1/cdn/play/"+tr1+"/../etc/passwd", listener, "eu-west"); r.StatusCode == 302 {
		t.Fatal("path traversal redirected")
	}
	for _, id := range []string{draft, "00000000-0000-4000-8000-000000000009", "not-a-uuid"} {
		if r := get(h.URL+"/v1/cdn/play/"+id+"/hls", listener, "eu-west"); r.StatusCode != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("play %s (not published): %d", id, r.StatusCode)
		}
	}
	for region, pop := range map[string]string{"eu-west": "pop-eu-west", "ru-central": "pop-ru-central"} {
		r := get(play, listener, region)
		if r.StatusCode != 302 || r.Header.Get("X-Overture-POP") != pop {
			t.Fatalf("%s: %d via %q, want 302 via %s", region, r.StatusCode, r.Header.Get("X-Overture-POP"), pop)
		}
		loc := r.Header.Get("Location")
		if !strings.HasPrefix(loc, f.pops[pop].URL()+"/media/"+dir+"hls-aac-128/index.m3u8?t=") {
			t.Fatalf("Location %s", loc)
		}
		if body := fetch(t, loc, ""); body != "#EXTM3U\n" {
			t.Fatalf("following the redirect: %q", body)
		}
	}
	// Mode A: 3 candidates, each a working signed URL; the token covers the
	// track's media prefix, so any other object of it works with it.
	r := get(h.URL+"/v1/cdn/candidates?track="+tr1+"&rendition=hls-aac-128/index.m3u8", listener, "eu-central")
	var c Candidates
	decode(t, r, &c)
	if len(c.Candidates) != 3 || c.Candidates[0].Region != "eu-central" || c.Region != "eu-central" {
		t.Fatalf("candidates: %+v", c)
	}
	for _, cand := range c.Candidates {
		if body := fetch(t, cand.URL, ""); body != "#EXTM3U\n" {
			t.Fatalf("%s: %q", cand.POP, body)
		}
	}
	// The catalog marks flac premium: a free listener gets no URL for it, and
	// the free listener's token does not open it at the POP either.
	if r := get(h.URL+"/v1/cdn/play/"+tr1+"/flac", listener, "eu-west"); r.StatusCode != 403 || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("premium rendition for a free listener: %d", r.StatusCode)
	}
	if code := status(t, c.Candidates[0].BaseURL+"flac/full.flac?t="+c.Token, ""); code != 403 {
		t.Fatalf("premium object with a free listener's token: %d", code)
	}
	prem := f.auth.Token(t, "listener-2", tokentest.Options{Premium: true})
	r = get(h.URL+"/v1/cdn/play/"+tr1+"/flac", prem, "eu-west")
	if r.StatusCode != 302 {
		t.Fatalf("premium rendition for a premium listener: %d", r.StatusCode)
	}
	if body := fetch(t, r.Header.Get("Location"), ""); body != "lossless" {
		t.Fatalf("premium rendition: %q", body)
	}
	if r := get(h.URL+"/v1/cdn/candidates?rendition=x", listener, ""); r.StatusCode != 422 {
		t.Fatalf("candidates without track: %d", r.StatusCode)
	}
}

func fetch(t *testing.T, u, bearer string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, r.StatusCode, b)
	}
	return string(b)
}

func status(t *testing.T, u, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func TestNoHealthyPOPIs503ButServiceStaysReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", nil, POP{Name: "only", Region: "eu-west"})
	f.rounds(1)
	_ = f.pops["only"].Stop(context.Background())
	f.rounds(3)
	if ok, err := f.svc.Ready(context.Background()); !ok {
		t.Fatalf("not ready with every POP down: %v", err)
	}
	h := httptest.NewServer(f.svc)
	defer h.Close()
	req, _ := http.NewRequest("GET", h.URL+"/v1/cdn/play/trk/hls/index.m3u8", nil)
	req.Header.Set("Authorization", "Bearer "+f.auth.Token(t, "u", tokentest.Options{}))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 503 || r.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), "no CDN POP") {
		t.Fatalf("%d %s %s", r.StatusCode, r.Header.Get("Content-Type"), b)
	}
}

func TestAllOverloadedStillServesRatherThanRefusing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", nil, POP{Name: "w", Region: "eu-west"}, POP{Name: "c", Region: "eu-central"})
	f.pops["w"].SetSyntheticLoad(0.9, 0.5)
	f.pops["c"].SetSyntheticLoad(0.9, 0.2)
	f.rounds(4)
	pops, _ := f.svc.HealthMap()
	if !pops[0].Overloaded || !pops[1].Overloaded {
		t.Fatalf("not overloaded: %+v", pops)
	}
	f.svc.mu.Lock()
	got := f.svc.pick("eu-west", "trk", 2)
	f.svc.mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("all POPs overloaded: %d offered, want both (degraded beats refusing)", len(got))
	}
}
