package edge

import (
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/testenv"
)

const testMaster = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="hi",NAME="lossless",URI="flac/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=70400,CODECS="mp4a.40.2"
aac64/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS="mp4a.40.2"
aac128/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=281600,CODECS="mp4a.40.2"
aac256/index.m3u8
`

func testVariant(extra string) string {
	return "#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-TARGETDURATION:2\r\n" + extra +
		"#EXT-X-MAP:URI=\"init_0.mp4\"\r\n#EXTINF:2.0,\r\nseg0.m4s\r\n#EXTINF:2.0,\r\nseg1.m4s?v=2&t=stale#frag\r\n" +
		"#EXTINF:1.0,\r\n../../other/seg.m4s\r\n#EXTINF:1.0,\r\nhttps://elsewhere.example/seg.m4s\r\n#EXT-X-ENDLIST\r\n"
}

// uris lists the URIs of a playlist (lines and URI attributes).
func uris(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if u, ok := uriAttr(line); ok {
			out = append(out, u)
		} else if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func TestRewritePlaylistURIs(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{PremiumMarkers: []string{"/premium/"}}}
	tok := urlsign.Token{Prefix: "tracks/a/v1/", PremiumPaths: []string{"aac256/", "flac/"}}
	key := "tracks/a/v1/aac128/index.m3u8"
	got := string(s.rewritePlaylist(key, []byte(testVariant("#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x1\r\n")), tok, "TOK"))
	want := []string{"key.bin?t=TOK", "init_0.mp4?t=TOK", "seg0.m4s?t=TOK", "seg1.m4s?v=2&t=TOK#frag", "../../other/seg.m4s", "https://elsewhere.example/seg.m4s"}
	if g := uris(got); strings.Join(g, " ") != strings.Join(want, " ") {
		t.Fatalf("variant URIs:\n got %q\nwant %q", g, want)
	}
	if !strings.Contains(got, "\r\n#EXT-X-ENDLIST\r\n") || strings.Count(got, "\n") != strings.Count(testVariant("#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x1\r\n"), "\n") {
		t.Fatalf("line structure changed:\n%s", got)
	}
	// A free listener's master lists only the free variants.
	free := uris(string(s.rewritePlaylist("tracks/a/v1/master.m3u8", []byte(testMaster), tok, "F")))
	if strings.Join(free, " ") != "aac64/index.m3u8?t=F aac128/index.m3u8?t=F" {
		t.Fatalf("free master: %q", free)
	}
	tok.ListenerPremium = true
	prem := uris(string(s.rewritePlaylist("tracks/a/v1/master.m3u8", []byte(testMaster), tok, "P")))
	if strings.Join(prem, " ") != "flac/index.m3u8?t=P aac64/index.m3u8?t=P aac128/index.m3u8?t=P aac256/index.m3u8?t=P" {
		t.Fatalf("premium master: %q", prem)
	}
}

// Two listeners read the same cached playlist: each response carries only
// its own token, is private, and every URI in it plays; another track's
// keys stay closed to the token; any change to a rewritten URI's token is
// refused.
func TestPlaylistRewriteThroughPOP(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t)
	s := startEdge(t, o, nil)
	dir := "tracks/pl1/v1/"
	o.put(t, dir+"master.m3u8", []byte(testMaster))
	for _, v := range []string{"aac64", "aac128", "aac256", "flac"} {
		o.put(t, dir+v+"/index.m3u8", []byte(testVariant("")))
		o.put(t, dir+v+"/init_0.mp4", randBytes(700))
		o.put(t, dir+v+"/seg0.m4s", randBytes(40<<10))
		o.put(t, dir+v+"/seg1.m4s", randBytes(40<<10))
	}
	o.put(t, "tracks/pl2/v1/aac64/seg0.m4s", randBytes(100))
	paths := func(tk *urlsign.Token) { tk.PremiumPaths = []string{"aac256/", "flac/"} }
	alice := signed(t, s, dir+"master.m3u8", dir, paths)
	bob := signed(t, s, dir+"master.m3u8", dir, func(tk *urlsign.Token) {
		paths(tk)
		tk.ListenerPremium = true
		tk.Expires = tk.Expires.Add(time.Second)
	})
	tokOf := func(u string) string { p, _ := url.Parse(u); return p.Query().Get("t") }
	for i, c := range []struct {
		u, cache string
		n        int
	}{{alice, "MISS", 2}, {bob, "HIT", 4}, {alice, "HIT", 2}} {
		r := do(t, "GET", c.u, nil)
		if r.status != 200 || r.header.Get("Cache-Control") != rewriteCC || r.header.Get("X-Cache") != c.cache || r.header.Get("Etag") != "" {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
		mine, other := tokOf(c.u), tokOf(alice)
		if c.u == alice {
			other = tokOf(bob)
		}
		if strings.Contains(string(r.body), other) || strings.Count(string(r.body), mine) != c.n {
			t.Fatalf("request %d: playlist carries the wrong tokens:\n%s", i, r.body)
		}
		// Every variant, init section and segment opens through the URIs as
		// written, resolved the way a player resolves them.
		base, _ := url.Parse(c.u)
		for _, v := range uris(string(r.body)) {
			vu := base.ResolveReference(mustURL(t, v)).String()
			vr := do(t, "GET", vu, nil)
			if vr.status != 200 {
				t.Fatalf("%s: %d %s", vu, vr.status, vr.body)
			}
			vbase := mustURL(t, vu)
			for _, seg := range uris(string(vr.body)) {
				su := vbase.ResolveReference(mustURL(t, seg)).String()
				want := 200
				if strings.Contains(seg, "other/") {
					want = 403 // another track: no token was added, none works
					if strings.Contains(seg, "t=") {
						t.Fatalf("token leaked to another track: %s", seg)
					}
				}
				if strings.HasPrefix(seg, "https:") {
					continue
				}
				if sr := do(t, "GET", su, nil); sr.status != want {
					t.Fatalf("%s: %d, want %d", su, sr.status, want)
				}
			}
		}
	}
	// The free listener cannot open premium objects even by typing the path.
	if r := do(t, "GET", s.URL()+MediaPrefix+dir+"aac256/seg0.m4s?t="+tokOf(alice), nil); r.status != 403 || !strings.Contains(string(r.body), "premium-required") {
		t.Fatalf("premium segment for a free listener: %d %s", r.status, r.body)
	}
	// Tampering with the token of a rewritten URI, in each field.
	r := do(t, "GET", alice, nil)
	seg := mustURL(t, alice).ResolveReference(mustURL(t, "aac64/seg0.m4s?t="+tokOf(alice))).String()
	if do(t, "GET", seg, nil).status != 200 {
		t.Fatal("untampered segment refused")
	}
	f := strings.Split(tokOf(alice), ".")
	for i := 1; i < len(f); i++ {
		g := append([]string(nil), f...)
		switch i {
		case 4:
			g[i] = "l" // raise the listener's tier
		case 6:
			g[i] = "" // drop the premium paths
		case 7:
			g[i] = "MTI3LjAuMC4x" // bind to 127.0.0.1, the test's own address
		default:
			g[i] = strings.ToUpper(g[i][:1]) + g[i][1:] + "0"
		}
		for _, u := range []string{seg, strings.Replace(alice, "?t=", "?x=", 1)} {
			tu := strings.Replace(u, tokOf(alice), strings.Join(g, "."), 1)
			if u == alice {
				tu = alice[:strings.Index(alice, "?")] + "?t=" + strings.Join(g, ".")
			}
			if rr := do(t, "GET", tu, nil); rr.status != 403 {
				t.Fatalf("field %d tampered (%s): %d", i, tu, rr.status)
			}
		}
	}
	_ = r
	// A token of one track never opens another track's objects.
	if rr := do(t, "GET", s.URL()+MediaPrefix+"tracks/pl2/v1/aac64/seg0.m4s?t="+tokOf(alice), nil); rr.status != 403 {
		t.Fatalf("other track with this token: %d", rr.status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A revocation stops tokens issued before it, for cached and uncached
// objects alike, and purges the cache; a token issued afterwards works.
func TestRevokeRefusesEarlierTokens(t *testing.T) {
	t.Parallel()
	o := newTestOrigin(t)
	// Not t.TempDir: a fill finishing after the POP stopped may still write
	// a slice file; testenv.Main removes its directory at the end.
	disk, err := os.MkdirTemp(testenv.Dir(), "revoke-")
	if err != nil {
		t.Fatal(err)
	}
	s := startEdge(t, o, func(c *Config) { c.DiskDir = disk; c.DiskBytes = 1 << 30 })
	dir := "tracks/rv1/v1/"
	o.put(t, dir+"a.m4s", randBytes(1000))
	o.put(t, dir+"b.m4s", randBytes(1000))
	old := signed(t, s, dir+"a.m4s", dir, nil)
	if r := do(t, "GET", old, nil); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	res := s.Revoke(RevokeRequest{Prefixes: []string{"tracks/rv1/"}})
	if res.Revoked != 1 || res.Purged != 1 {
		t.Fatalf("revoke: %+v", res)
	}
	for _, k := range []string{"a.m4s", "b.m4s"} {
		u := strings.Replace(old, "/a.m4s?", "/"+k+"?", 1)
		if r := do(t, "GET", u, nil); r.status != 403 || !strings.Contains(string(r.body), "revoked") {
			t.Fatalf("%s after revoke: %d %s", k, r.status, r.body)
		}
	}
	fresh := signed(t, s, dir+"a.m4s", dir, func(tk *urlsign.Token) { tk.Issued = time.Unix(res.At, 0) })
	if r := do(t, "GET", fresh, nil); r.status != 200 {
		t.Fatalf("token issued after the revocation: %d", r.status)
	}
	// The list survives a restart of the POP (it lives with the disk tier).
	s2 := startEdge(t, o, func(c *Config) { c.DiskDir = s.cfg.DiskDir; c.DiskBytes = 1 << 30 })
	if r := do(t, "GET", strings.Replace(old, s.URL(), s2.URL(), 1), nil); r.status != 403 {
		t.Fatalf("after restart: %d", r.status)
	}
	// Through the admin API.
	other := signed(t, s, "tracks/rv2/v1/a.m4s", "tracks/rv2/", func(tk *urlsign.Token) { tk.Issued = time.Now().Add(-time.Minute) })
	o.put(t, "tracks/rv2/v1/a.m4s", randBytes(10))
	ac := AdminClient{Secret: "admin-secret"}
	if _, err := ac.Revoke(t.Context(), s.URL(), RevokeRequest{Prefixes: []string{"tracks/rv2/"}}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", other, nil); r.status != 403 {
		t.Fatalf("after a revoke through the admin API: %d", r.status)
	}
	if _, err := (AdminClient{Secret: "wrong"}).Revoke(t.Context(), s.URL(), RevokeRequest{Prefixes: []string{"x/"}}); err == nil {
		t.Fatal("revoke with a wrong secret accepted")
	}
}

func BenchmarkRewritePlaylist(b *testing.B) {
	s := &Server{cfg: Config{PremiumMarkers: []string{"/premium/"}}}
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init_0.mp4\"\n")
	for i := range 150 {
		pl.WriteString("#EXTINF:2.000000,\nindex" + strings.Repeat("1", i%3+1) + ".m4s\n")
	}
	body := []byte(pl.String())
	tok := urlsign.Token{Prefix: "tracks/a/v1/", PremiumPaths: []string{"aac256/"}}
	raw := strings.Repeat("x", 120)
	b.ReportAllocs()
	for b.Loop() {
		s.rewritePlaylist("tracks/a/v1/aac128/index.m3u8", body, tok, raw)
	}
}
