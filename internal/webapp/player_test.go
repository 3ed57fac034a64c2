package webapp_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/media"
	"github.com/overture-music/overture/internal/platformtest"
)

// urlTTL is the signed URLs' lifetime in TestPlayer: short, so the player
// must renew them while a track plays.
const urlTTL = 15 * time.Second

// mediaSessionRecorder runs before the app in every document: it keeps the
// Media Session action handlers the app sets, so the test can invoke them
// as the system's media keys would.
const mediaSessionRecorder = `(() => {
  if (!('mediaSession' in navigator) || window.__msHandlers) return;
  window.__msHandlers = {};
  const set = navigator.mediaSession.setActionHandler.bind(navigator.mediaSession);
  navigator.mediaSession.setActionHandler = (action, f) => { window.__msHandlers[action] = f; return set(action, f); };
})()`

// TestPlayer covers what the listener journey does not: the signed URLs
// renewed before they expire while a track plays (the platform signs them
// for 15 s), the Media Session (metadata of the playing track, play, pause
// and next invoked as the system would), and the loudness gain the player
// applies from the ingested track's measured loudness.
func TestPlayer(t *testing.T) {
	chromium := browserOrSkip(t)
	p := platformtest.Start(t, platformtest.Options{Env: map[string]string{"CDN_URL_TTL": urlTTL.String()}})

	// A track long enough to outlive two URL lifetimes, and a short one, by
	// another artist, to skip to.
	long := p.Ingest(t, platformtest.Tone(t, 90, "Кукушка", "Кино", "Чёрный альбом")).TrackID
	short := p.Ingest(t, platformtest.Tone(t, 20, "Город золотой", "Аквариум", "Равноденствие")).TrackID
	p.Publish(t, long)
	after := p.Publish(t, short)
	p.WaitSearch(t, "кукушка", long, after)
	p.WaitSearch(t, "город золотой", short, after)
	me := p.Listener(t, "player@example.com")
	// The last recompute found the short track similar to the long one, and
	// their artists similar (what internal/recommend/artifact stores; the
	// query API puts them on the pages).
	_, err := p.DB.Exec(context.Background(), `INSERT INTO recommend_similar (kind, key, version, made_at, neighbours, scores, tracks)
		VALUES ('track', $1, 'webapp-test', now(), ARRAY[$2], ARRAY[0.8::real], NULL),
		       ('artist', 'Кино', 'webapp-test', now(), ARRAY['Аквариум'], ARRAY[0.7::real], ARRAY[$2])`, long, short)
	require.NoError(t, err)
	var card struct {
		Artists []struct{ ID, Name string } `json:"artists"`
	}
	p.CallJSON(t, "GET", "/v1/tracks/"+short, "", nil, http.StatusOK, &card)
	require.NotEmpty(t, card.Artists)
	aquarium := card.Artists[0].ID
	p.CallJSON(t, "GET", "/v1/tracks/"+long, "", nil, http.StatusOK, &card)
	require.NotEmpty(t, card.Artists)
	kino := card.Artists[0].ID

	b := newBrowser(t, chromium)
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: mediaSessionRecorder})
		return err
	}))
	b.signInWith(p.GatewayURL(), me)

	// The long track's page lists the similar one; the long track plays.
	b.goTo("/track/" + long)
	b.waitJS("the similar track on the page", fmt.Sprintf(`document.querySelector('#similar li[data-track=%q] button.play') !== null`, short))
	b.click(fmt.Sprintf(`h1 ~ ol li[data-track=%q] button.play`, long))
	b.waitJS("the long track plays", `document.getElementById('audio').currentTime > 1`)
	start := time.Now()
	b.goTo("/track/" + short)
	b.click(fmt.Sprintf(`li[data-track=%q] button.add`, short))
	b.waitJS("the short track is queued", `document.getElementById('player').dataset.queue === '0/2'`)

	ms := `navigator.mediaSession`
	invoke := func(b *tab, action string) {
		b.t.Helper()
		require.True(b.t, evalIn[bool](b, `typeof (window.__msHandlers||{})[`+jsString(action)+`] === 'function'`), "no %s handler", action)
		evalIn[any](b, `(() => { window.__msHandlers[`+jsString(action)+`]({action: `+jsString(action)+`}); return null; })()`)
	}

	t.Run("MediaSessionMetadataPlayPause", func(t *testing.T) {
		b := b.in(t)
		b.waitJS("metadata of the playing track", ms+`.metadata && `+ms+`.metadata.title === 'Кукушка' && `+ms+`.metadata.artist === 'Кино' && `+ms+`.metadata.album === 'Чёрный альбом'`)
		b.waitJS("playing", ms+`.playbackState === 'playing'`)
		for _, a := range []string{"previoustrack", "seekto", "seekforward", "seekbackward"} {
			require.True(t, evalIn[bool](b, `typeof (window.__msHandlers||{})[`+jsString(a)+`] === 'function'`), "no %s handler", a)
		}
		invoke(b, "pause")
		b.waitJS("paused by the media key", `document.getElementById('audio').paused && `+ms+`.playbackState === 'paused'`)
		// A second pause leaves it paused: the keys do not toggle.
		invoke(b, "pause")
		at := evalIn[float64](b, `document.getElementById('audio').currentTime`)
		require.True(t, evalIn[bool](b, `document.getElementById('audio').paused`))
		invoke(b, "play")
		b.waitJS("playing again", fmt.Sprintf(`!document.getElementById('audio').paused && document.getElementById('audio').currentTime > %f && %s.playbackState === 'playing'`, at+0.5, ms))
	})

	t.Run("LoudnessGain", func(t *testing.T) {
		b := b.in(t)
		// The gain is ReplayGain 2.0's: the reference loudness minus the
		// loudness ingestion measured, in dB; the audio path multiplies by
		// 10^(dB/20) in a GainNode and leaves the element's volume at the
		// listener's 1.
		var lufs, gainDB float64
		require.NoError(t, p.DB.QueryRow(context.Background(), `SELECT loudness_lufs, replay_gain_db FROM track WHERE id = $1`, long).Scan(&lufs, &gainDB))
		require.InDelta(t, media.ReferenceLUFS-lufs, gainDB, 0.01, "the stored gain is not reference − measured loudness")
		require.Greater(t, math.Abs(gainDB), 0.5, "the test tone needs a gain that is not close to 0 dB (measured %.2f LUFS)", lufs)
		want := math.Pow(10, gainDB/20)
		b.waitJS("the gain is applied", fmt.Sprintf(`Math.abs(Number(document.getElementById('player').dataset.gainApplied) - %f) < 0.002`, want))
		require.InDelta(t, 1.0, evalIn[float64](b, `document.getElementById('audio').volume`), 1e-9, "the gain went to the element's volume, not the GainNode")
		// The volume slider scales what the gain node applies.
		evalIn[any](b, `(() => { const v = document.getElementById('volume'); v.value = '0.5'; v.dispatchEvent(new Event('input')); return null; })()`)
		b.waitJS("half volume", fmt.Sprintf(`Math.abs(Number(document.getElementById('player').dataset.gainApplied) - %f) < 0.002`, want/2))
		evalIn[any](b, `(() => { const v = document.getElementById('volume'); v.value = '1'; v.dispatchEvent(new Event('input')); return null; })()`)
	})

	t.Run("SignedURLsRenewed", func(t *testing.T) {
		b := b.in(t)
		// The first URLs expire about 15 s after playback began; the player
		// asks steering again before that, twice over 30 s, and the
		// segments hls.js fetches after the first expiry carry the new
		// token and load. Playback goes on throughout.
		first := evalIn[string](b, `document.getElementById('player').dataset.expires`)
		expires, err := time.Parse(time.RFC3339, first)
		require.NoError(t, err, "expires %q", first)
		require.WithinDuration(t, start.Add(urlTTL), expires, urlTTL, "the platform did not sign for %s", urlTTL)
		b.waitJS("two renewals", `Number(document.getElementById('player').dataset.renewals) >= 2`)
		b.waitJS("the first URLs expired", fmt.Sprintf(`Date.now() > %d`, expires.Add(time.Second).UnixMilli()))
		at := evalIn[float64](b, `document.getElementById('audio').currentTime`)
		b.waitJS("playback goes on after the first URLs expired", fmt.Sprintf(`!document.getElementById('audio').paused && document.getElementById('audio').currentTime > %f`, at+2))
		var got struct {
			Playbacks int    `json:"playbacks"`
			Later     int    `json:"later"`
			LaterOld  int    `json:"laterOld"`
			Refused   int    `json:"refused"`
			NetErrors string `json:"netErrors"`
		}
		b.waitJS("a segment fetched after the first URLs expired", fmt.Sprintf(`performance.getEntriesByType('resource').some(e =>
			e.name.startsWith(%q) && e.name.includes('.m4s') && performance.timeOrigin + e.startTime > %d)`, p.POP.URL, expires.UnixMilli()))
		evalJSON(b, fmt.Sprintf(`(() => {
			const rs = performance.getEntriesByType('resource');
			const pbs = rs.filter(e => e.name.includes('/v1/tracks/' + %q + '/playback'));
			const segs = rs.filter(e => e.name.startsWith(%q) && e.name.includes('.m4s'));
			const tok = (u) => new URL(u).searchParams.get('t');
			const firstToken = tok(segs[0].name);
			const later = segs.filter(e => performance.timeOrigin + e.startTime > %d);
			return JSON.stringify({playbacks: pbs.length, later: later.length, laterOld: later.filter(e => tok(e.name) === firstToken).length,
				refused: segs.filter(e => e.responseStatus >= 400).length, netErrors: document.getElementById('player').dataset.networkErrors});
		})()`, long, p.POP.URL, expires.UnixMilli()), &got)
		require.GreaterOrEqual(t, got.Playbacks, 3, "the player did not ask steering again: %+v", got)
		require.Positive(t, got.Later, "no segment was fetched after the first URLs expired, so the renewal was not exercised: %+v", got)
		require.Zero(t, got.LaterOld, "segments fetched after the expiry still carried the expired token: %+v", got)
		require.Zero(t, got.Refused, "the POP refused segments: %+v", got)
		require.Equal(t, "0", got.NetErrors, "hls.js saw failed loads: %+v", got)
		// Renewing was needed: the POP now refuses the first URLs.
		status := evalIn[int](b, fmt.Sprintf(`(async () => {
			const seg = performance.getEntriesByType('resource').find(e => e.name.startsWith(%q) && e.name.includes('.m4s'));
			return (await fetch(seg.name, {cache: 'no-store'})).status; })()`, p.POP.URL))
		require.GreaterOrEqual(t, status, 400, "the POP still serves the first, expired URLs")
	})

	t.Run("MediaSessionNextTrack", func(t *testing.T) {
		b := b.in(t)
		require.Equal(t, "0/2", evalIn[string](b, `document.getElementById('player').dataset.queue`), "the long track is no longer the one playing")
		invoke(b, "nexttrack")
		b.waitJS("the next track plays", ms+`.metadata.title === 'Город золотой' && `+ms+`.metadata.artist === 'Аквариум' && document.getElementById('player').dataset.queue === '1/2' && document.getElementById('audio').currentTime > 0.5`)
	})

	t.Run("SimilarArtists", func(t *testing.T) {
		b := b.in(t)
		b.goTo("/artist/" + kino)
		b.waitJS("the similar artist on the artist page", fmt.Sprintf(`(document.querySelector('#similar a[href="/artist/%s"]')||{}).textContent === 'Аквариум'`, aquarium))
		checkA11y(t, b, "artist page with similar artists")
	})
}
