package webapp_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/idp"
	"github.com/overture-music/overture/internal/idp/idptest"
	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/testenv"
)

// codeRecorder keeps the fragment a page was opened with (before the app
// removes it), so the test can replay a sign-in code.
const codeRecorder = `(() => { if (location.hash.includes('oauth_code=')) sessionStorage.setItem('seenCode', location.hash); })()`

// TestListenerApp drives the listener app's parts the journey does not, in
// Chromium: "Sign in with Google" (the stand-in) lands in the app signed
// in, while a forged or replayed sign-in code is refused; the account page
// switches the account's language, and the next email comes in it; the
// home page shows the listener's recommendations with their reasons, each
// track playable, and the refresh button; and on a 375×667 phone screen
// nothing scrolls sideways, the player's controls are on screen and work,
// and the keyboard reaches every control.
func TestListenerApp(t *testing.T) {
	chromium := browserOrSkip(t)
	const email = "google-listener@example.com"
	google, gts := idptest.Start(t, idp.Config{Flavor: idp.FlavorOIDC,
		AutoLogin: &idp.User{Subject: "google-sub-1", Email: email, EmailVerified: true}})
	p := platformtest.Start(t, platformtest.Options{Env: map[string]string{
		"GOOGLE_CLIENT_ID": "overture-web", "GOOGLE_CLIENT_SECRET": "google-secret-value", "GOOGLE_ISSUER": gts.URL,
	}})
	base := p.GatewayURL()
	google.Update(func(c *idp.Config) {
		c.Clients = []idp.Client{{ID: "overture-web", Secret: "google-secret-value", RedirectURIs: []string{base + "/v1/auth/oauth/google/callback"}}}
	})
	id := p.Ingest(t, platformtest.Tone(t, 40, "Восьмиклассница", "Кино", "Начальник Камчатки")).TrackID
	p.WaitSearch(t, "восьмиклассница", id, p.Publish(t, id))

	b := newBrowser(t, chromium)
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: codeRecorder})
		return err
	}))
	signedIn := `document.querySelector('nav.main a[href="/account"]') !== null`
	refused := func(b *tab, what string) {
		b.t.Helper()
		b.waitJS(what+" is refused on the page", `(document.querySelector('#signin-status .error')||{}).textContent`)
		require.False(b.t, evalIn[bool](b, signedIn), "%s signed the browser in", what)
		require.Empty(b.t, evalIn[string](b, `location.hash`), "the code stays in the address bar")
	}

	// storeRecommendations stores what a recompute would for the listener:
	// one section holding the track, with its reason.
	storeRecommendations := func(t *testing.T) {
		var user string
		require.NoError(t, p.DB.QueryRow(context.Background(), `SELECT id::text FROM auth_account WHERE email = $1`, email).Scan(&user))
		r, err := result.New(result.Body{UserID: user, Model: "als+cooccurrence-tracks", Version: "webapp-test", MadeAt: time.Now().UTC(),
			Sections: []result.Section{{ID: "daily-mix", Reason: "Picked for you from what you play", Model: "als", Tracks: []result.Track{{TrackID: id, Score: 1}}}}})
		require.NoError(t, err)
		_, err = result.Store{Pool: p.DB}.Put(context.Background(), []result.Result{r})
		require.NoError(t, err)
	}

	t.Run("ForgedCodeIsRefused", func(t *testing.T) {
		b := b.in(t)
		forged := auth.NewSecret(auth.KindOAuthCode)
		b.open(base + "/signin#oauth_code=" + forged)
		refused(b, "a forged code")
	})

	t.Run("SignInWithGoogle", func(t *testing.T) {
		b := b.in(t)
		b.goTo("/signin?next=%2Fhistory")
		b.waitJS("sign-in page", `document.querySelector('a[data-provider=google]') !== null`)
		b.click("a[data-provider=google]")
		// The stand-in signs in at once; the callback sends the browser back
		// with a code the page exchanges.
		b.waitJS("signed in and sent on", `location.pathname === '/history' && `+signedIn+` && location.hash === ''`)
		b.waitJS("app ready", `document.body.dataset.ready === 'true'`)
		require.Contains(t, evalIn[string](b, `sessionStorage.getItem('seenCode') || ''`), "oauth_code=oac_", "the callback did not hand the app a code")
		b.goTo("/account")
		b.waitJS("signed into the stand-in's account", `(document.getElementById('account-email')||{}).textContent === `+jsString(email))
		// Before the home page is first drawn: the feed keeps a day's mix.
		storeRecommendations(t)
	})

	t.Run("ReplayedCodeIsRefused", func(t *testing.T) {
		b := b.in(t)
		seen := evalIn[string](b, `sessionStorage.getItem('seenCode')`)
		refresh := evalIn[string](b, `localStorage.getItem('overture.refresh')`)
		evalIn[any](b, `(() => { localStorage.removeItem('overture.refresh'); return null; })()`)
		b.open(base + "/signin" + seen)
		refused(b, "a replayed code")
		evalIn[any](b, `(() => { localStorage.setItem('overture.refresh', `+jsString(refresh)+`); return null; })()`)
		b.open(base + "/")
		b.waitJS("signed in again", signedIn)
	})

	t.Run("AccountLanguage", func(t *testing.T) {
		b := b.in(t)
		b.goTo("/account")
		b.waitJS("account page", `document.getElementById('account-lang') !== null && document.getElementById('account-email').textContent === `+jsString(email))
		evalIn[any](b, `(() => { const s = document.getElementById('account-lang'); s.value = 'ru'; s.dispatchEvent(new Event('change')); return null; })()`)
		b.waitJS("the app and the account speak Russian", `document.documentElement.lang === 'ru' && document.querySelector('h1').textContent === 'Ваш аккаунт' &&
			(document.querySelector('#lang-status .notice')||{}).textContent === 'Сохранено: приложение и письма теперь на русском.'`)
		var locale string
		require.NoError(t, p.DB.QueryRow(context.Background(), `SELECT locale FROM auth_account WHERE email = $1`, email).Scan(&locale))
		require.Equal(t, "ru", locale)
		// The next email is in Russian: a reset link.
		p.CallJSON(t, "POST", "/v1/auth/password/forgot", "", map[string]string{"email": email}, http.StatusAccepted, nil)
		testenv.WaitFor(t, 3*time.Minute, "the reset email", func() bool {
			for _, m := range p.Mails(t) {
				if strings.EqualFold(m.To, email) && strings.Contains(m.Text, "reset-password") {
					require.Equal(t, "Сброс пароля Overture", m.Subject, "the reset email is not in the account's language")
					return true
				}
			}
			return false
		})
		checkA11y(t, b, "account in Russian")
		// Back to English for the rest (and the account follows).
		evalIn[any](b, `(() => { const s = document.getElementById('account-lang'); s.value = 'en'; s.dispatchEvent(new Event('change')); return null; })()`)
		b.waitJS("English again", `document.documentElement.lang === 'en' && document.querySelector('h1').textContent !== 'Ваш аккаунт'`)
		testenv.WaitFor(t, time.Minute, "the account's locale back to en", func() bool {
			require.NoError(t, p.DB.QueryRow(context.Background(), `SELECT locale FROM auth_account WHERE email = $1`, email).Scan(&locale))
			return locale == "en"
		})
	})

	t.Run("HomeRecommendations", func(t *testing.T) {
		b := b.in(t)
		b.goTo("/")
		row := fmt.Sprintf(`#feed .feed-section li[data-track=%q]`, id)
		b.waitJS("the home page shows the recommended track", `document.querySelector(`+jsString(row)+`) !== null`)
		var sec struct{ Heading, Reason string }
		evalJSON(b, `(() => { const s = document.querySelector(`+jsString(row)+`).closest('.feed-section');
			return JSON.stringify({heading: s.querySelector('h3').textContent, reason: (s.querySelector('.reason')||{}).textContent || ''}); })()`, &sec)
		require.NotEmpty(t, sec.Reason, "the section's reason is not shown")
		require.NotEmpty(t, sec.Heading)
		require.False(t, strings.HasPrefix(sec.Heading, "feed."), "the section's heading is a text key: %q", sec.Heading)
		b.shot("home")
		checkA11y(t, b, "home with recommendations")
		b.click(row + " button.play")
		b.waitJS("the recommended track plays", `document.getElementById('audio').currentTime > 1`)

		// The refresh button asks for a recomputation (202 and a status
		// URL), follows the job until it ends and says how it went.
		b.click("#refresh-recs")
		b.waitJS("the refresh settles", `(() => { const s = document.querySelector('#refresh-status p'); return s && !s.textContent.includes('Recomputing'); })()`)
		got := evalIn[string](b, `document.querySelector('#refresh-status p').textContent`)
		require.True(t, got == "Your recommendations are up to date." || strings.HasPrefix(got, "The refresh did not finish: "), "the refresh ended with %q", got)
		require.True(t, evalIn[bool](b, `performance.getEntriesByType('resource').some(e => e.name.includes('/v1/me/recommendations/jobs/'))`),
			"the page did not follow the job's status URL")
		b.waitJS("the feed is drawn again", `document.querySelector('#feed').getAttribute('aria-busy') === 'false' && document.querySelector(`+jsString(row)+`) !== null`)
	})

	// A signed-in listener's searches carry the token, so the query service
	// keeps them for the cold-start feed (GET /v1/me/searches); a search
	// sent without it would be answered and recorded nowhere.
	t.Run("SearchesAreRemembered", func(t *testing.T) {
		b := b.in(t)
		var user string
		require.NoError(t, p.DB.QueryRow(context.Background(), `SELECT id::text FROM auth_account WHERE email = $1`, email).Scan(&user))
		b.goTo("/search")
		b.typeInto("#q", "кино")
		b.waitJS("search results", `document.querySelector('#results li') !== null`)
		testenv.WaitFor(t, time.Minute, "the search in the listener's search log", func() bool {
			n, err := p.Redis.LLen(context.Background(), "query:searches:"+user).Result()
			require.NoError(t, err)
			return n > 0
		})
	})

	t.Run("Phone", func(t *testing.T) {
		b := b.in(t)
		b.do(chromedp.EmulateViewport(375, 667))
		defer b.do(chromedp.EmulateViewport(1280, 900))
		b.goTo("/")
		b.waitJS("home on a phone", `document.querySelector('#feed .feed-section') !== null`)
		checkA11y(t, b, "home on a phone")
		b.goTo("/track/" + id)
		b.waitJS("track page on a phone", fmt.Sprintf(`document.querySelector('li[data-track=%q] button.play') !== null`, id))
		checkA11y(t, b, "track page on a phone")
		b.shot("phone-track")
		// Each player control is on screen, not covered, and big enough to
		// tap (44 px is WCAG's target size; 40 px here, the buttons' size).
		for _, sel := range []string{"#prev", "#playpause", "#next", "#seek"} {
			require.True(t, evalIn[bool](b, `(() => { const el = document.querySelector(`+jsString(sel)+`); const r = el.getBoundingClientRect();
				const x = r.left + r.width / 2, y = r.top + r.height / 2;
				const hit = document.elementFromPoint(x, y);
				return r.left >= 0 && r.right <= window.innerWidth && r.top >= 0 && r.bottom <= window.innerHeight &&
					r.height >= 40 && (hit === el || el.contains(hit)); })()`), "%s is not reachable on a phone", sel)
		}
		// Taps on the track's play button and then on play/pause work.
		b.click(fmt.Sprintf(`li[data-track=%q] button.play`, id))
		b.waitJS("playing on a phone", `document.getElementById('audio').currentTime > 0.5 && !document.getElementById('audio').paused`)
		b.click("#playpause")
		b.waitJS("paused by a tap", `document.getElementById('audio').paused`)
		tabReaches(t, b, "a.skip", "nav.main a[href='/account']", "#lang", fmt.Sprintf(`li[data-track=%q] button.play`, id),
			fmt.Sprintf(`li[data-track=%q] button.add`, id), "#prev", "#playpause", "#next", "#seek")
	})
}
