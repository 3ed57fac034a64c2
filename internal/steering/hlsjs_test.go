package steering

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/token/tokentest"
)

// hlsjsVersion is the hls.js release hack/deps/hlsjs.sh unpacks.
const hlsjsVersion = "1.7.4"

// hlsjsPage is the web app's player reduced to what the test needs: hls.js
// attached to a muted <video>, every event the test asserts on recorded in
// window.st, and state() to read it back.
const hlsjsPage = `<!doctype html>
<meta charset="utf-8"><title>hls.js playback</title>
<video id="v" muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
window.st = {parsed: null, frags: [], switched: [], errors: [], fatal: null};
function start(src, startLevel) {
  const v = document.getElementById('v');
  const hls = new Hls({startLevel: startLevel});
  window.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, (e, d) => {
    st.parsed = d.levels.map(l => ({bitrate: l.bitrate, url: l.uri}));
    v.play().catch(err => st.errors.push({type: 'play', details: String(err), fatal: false}));
  });
  hls.on(Hls.Events.FRAG_LOADED, (e, d) => st.frags.push({level: d.frag.level, sn: String(d.frag.sn), url: d.frag.url}));
  hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => st.switched.push({level: d.level, time: v.currentTime}));
  hls.on(Hls.Events.ERROR, (e, d) => {
    const x = {type: d.type, details: d.details, fatal: d.fatal, reason: d.reason || String(d.error || ''),
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || d.url || '', code: d.response ? d.response.code : 0};
    st.errors.push(x);
    if (d.fatal) st.fatal = x;
  });
  hls.loadSource(src);
  hls.attachMedia(v);
}
function state() {
  const v = document.getElementById('v');
  return JSON.stringify(Object.assign({time: v.currentTime, paused: v.paused, ended: v.ended,
    media_error: v.error ? v.error.code + ' ' + v.error.message : ''}, st));
}
</script>
`

// hlsError is an hls.js ERROR event (or a refused video.play()).
type hlsError struct {
	Type    string `json:"type"`
	Details string `json:"details"`
	Fatal   bool   `json:"fatal"`
	Reason  string `json:"reason"`
	URL     string `json:"url"`
	Code    int    `json:"code"`
}

// pageState is what the page recorded, read by state().
type pageState struct {
	Parsed []struct {
		Bitrate int    `json:"bitrate"`
		URL     string `json:"url"`
	} `json:"parsed"`
	Frags []struct {
		Level int    `json:"level"`
		SN    string `json:"sn"`
		URL   string `json:"url"`
	} `json:"frags"`
	Switched []struct {
		Level int     `json:"level"`
		Time  float64 `json:"time"`
	} `json:"switched"`
	Errors     []hlsError `json:"errors"`
	Fatal      *hlsError  `json:"fatal"`
	Time       float64    `json:"time"`
	Paused     bool       `json:"paused"`
	Ended      bool       `json:"ended"`
	MediaError string     `json:"media_error"`
}

// mediaFrags counts the loaded media fragments (not init segments) of level
// (-1: any level).
func (s pageState) mediaFrags(level int) int {
	n := 0
	for _, f := range s.Frags {
		if f.SN != "initSegment" && (level < 0 || f.Level == level) {
			n++
		}
	}
	return n
}

// browserDeps finds Chromium and the unpacked hls.js. Without them the test
// skips, or fails under CI=true, where `make deps` must have installed them.
func browserDeps(t *testing.T) (chromium, hlsjs string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; `make deps` installs it (hack/deps/base.sh, hack/deps/hlsjs.sh)", what)
		}
		t.Skipf("%s is missing; run `make deps` to play HLS in a browser", what)
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		missing("chromium")
	}
	hlsjs, err = filepath.Abs(filepath.Join("..", "..", ".cache", "hlsjs", hlsjsVersion, "package", "dist", "hls.min.js"))
	require.NoError(t, err)
	if _, err := os.Stat(hlsjs); err != nil {
		missing("hls.js " + hlsjsVersion)
	}
	return chromium, hlsjs
}

// browser starts headless Chromium for the test (closed at cleanup): no
// sandbox, since CI runs as root, and autoplay without a user gesture.
func browser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	// One bound for the browser's whole life; every action has its own.
	life, cancelLife := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc(); cancelLife() })
	// The first action starts the browser, on ctx itself: cancelling the
	// context of that first action would close the browser.
	_, err := chromedp.Run(ctx, chromedp.Navigate("about:blank"))
	require.NoError(t, err, "start chromium")
	return ctx
}

// hlsPlayer is one tab of the browser with hlsjsPage open.
type hlsPlayer struct {
	t   *testing.T
	ctx context.Context
}

// openPlayer opens pageURL in a new tab and starts hls.js on src.
func openPlayer(t *testing.T, browserCtx context.Context, pageURL, src string, startLevel int) *hlsPlayer {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	p := &hlsPlayer{t: t, ctx: ctx}
	// The first action opens the tab, on ctx itself (see browser).
	_, err := chromedp.Run(ctx, chromedp.Navigate(pageURL))
	require.NoError(t, err)
	q, _ := json.Marshal(src)
	p.eval(fmt.Sprintf("start(%s, %d)", q, startLevel))
	return p
}

func (p *hlsPlayer) eval(js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[any](js+"; null"))
	require.NoError(p.t, err, js)
}

// evalString evaluates js, awaiting a promise, to a string.
func (p *hlsPlayer) evalString(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	require.NoError(p.t, err, js)
	return v
}

func (p *hlsPlayer) state() pageState {
	p.t.Helper()
	raw := p.evalString("state()")
	var s pageState
	require.NoError(p.t, json.Unmarshal([]byte(raw), &s), raw)
	return s
}

// waitFor polls the page until cond holds; a fatal hls.js error or a media
// element error ends the wait at once, and the bound is generous for a
// loaded machine (playback itself runs in real time).
func (p *hlsPlayer) waitFor(what string, cond func(pageState) bool) pageState {
	p.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s := p.state()
		if s.Fatal != nil || s.MediaError != "" {
			p.t.Fatalf("waiting for %s: fatal hls.js error %+v, media error %q; all errors %+v", what, s.Fatal, s.MediaError, s.Errors)
		}
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s; page state %+v", what, s)
		}
		<-tick.C
	}
}

// The master playlist steering signs plays in hls.js in headless Chromium,
// from a page on another origin than the POP (as the web app's is): the free
// listener's player sees only the free variants, loads fragments and plays
// on; the premium listener's player switches to the 256k level and loads
// its fragments. ffmpeg is covered by TestPlaybackWithFFmpeg.
func TestPlaybackWithHLSJS(t *testing.T) {
	t.Parallel()
	chromium, hlsjs := browserDeps(t)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is required (hack/deps installs it)")
	}
	const id = "00000000-0000-4000-8000-0000000000ab"
	f, _, _ := publishedTrack(t, id)
	f.rounds(1)
	api := httptest.NewServer(f.svc)
	defer api.Close()
	masterURL := func(bearer string) string {
		req, _ := http.NewRequest("GET", api.URL+"/v1/tracks/"+id+"/playback", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set(RegionHeader, "eu-west")
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer r.Body.Close()
		var p Playback
		decode(t, r, &p)
		return p.MasterURL
	}
	free := masterURL(f.auth.Token(t, "free-listener", tokentest.Options{}))
	premium := masterURL(f.auth.Token(t, "premium-listener", tokentest.Options{Premium: true}))

	// The web app's page: its own origin, not the POP's.
	page := http.NewServeMux()
	page.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(hlsjsPage))
	})
	page.HandleFunc("GET /hls.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, hlsjs) })
	web := httptest.NewServer(page)
	defer web.Close()
	pu, _ := url.Parse(free)
	require.NotEqual(t, pu.Host, strings.TrimPrefix(web.URL, "http://"), "the page must be on another origin than the POP")

	ctx := browser(t, chromium)

	t.Run("FreeListener", func(t *testing.T) {
		p := openPlayer(t, ctx, web.URL+"/", free, -1)
		s := p.waitFor("MANIFEST_PARSED", func(s pageState) bool { return s.Parsed != nil })
		require.Len(t, s.Parsed, 2, "a free listener's master lists the free variants only: %+v", s.Parsed)
		for _, l := range s.Parsed {
			require.NotContains(t, l.URL, "aac256", "free listener")
			require.Contains(t, l.URL, "t=", "variant URLs carry the token")
		}
		s = p.waitFor("several fragments and 3 s of playback", func(s pageState) bool { return s.mediaFrags(-1) >= 3 && s.Time > 3 })
		for _, fr := range s.Frags {
			require.Contains(t, fr.URL, "t=", "fragment URLs carry the token")
			require.NotContains(t, fr.URL, "aac256")
		}
		// A seek-style ranged read from the page, with a header that is not
		// CORS-safelisted: the browser preflights, and the page may read
		// Content-Range.
		seg := s.Frags[len(s.Frags)-1].URL
		q, _ := json.Marshal(seg)
		got := p.evalString(fmt.Sprintf(`fetch(%s, {headers: {Range: 'bytes=0-99', 'If-None-Match': '"other"'}}).then(async r =>
			JSON.stringify({status: r.status, range: r.headers.get('Content-Range'), len: (await r.arrayBuffer()).byteLength}))`, q))
		var rr struct {
			Status int    `json:"status"`
			Range  string `json:"range"`
			Len    int    `json:"len"`
		}
		require.NoError(t, json.Unmarshal([]byte(got), &rr), got)
		require.Equal(t, 206, rr.Status, got)
		require.Regexp(t, `^bytes 0-99/\d+$`, rr.Range, got)
		require.Equal(t, 100, rr.Len, got)
	})

	t.Run("PremiumListenerSwitchesTo256k", func(t *testing.T) {
		p := openPlayer(t, ctx, web.URL+"/", premium, 0)
		s := p.waitFor("fragments of the lowest level", func(s pageState) bool { return s.mediaFrags(0) >= 1 })
		require.Len(t, s.Parsed, 3, "a premium listener's master lists every variant: %+v", s.Parsed)
		top := -1
		for i, l := range s.Parsed {
			if strings.Contains(l.URL, "aac256/") {
				top = i
			}
		}
		require.NotEqual(t, -1, top, "no 256k level in %+v", s.Parsed)
		p.eval(fmt.Sprintf("hls.currentLevel = %d", top))
		s = p.waitFor("fragments of the 256k level and a second of playback on it", func(s pageState) bool {
			if len(s.Switched) == 0 {
				return false
			}
			last := s.Switched[len(s.Switched)-1]
			return s.mediaFrags(top) >= 2 && last.Level == top && s.Time > last.Time+1
		})
		for _, fr := range s.Frags {
			if fr.Level == top {
				require.Contains(t, fr.URL, "aac256/")
			}
		}
	})
}
