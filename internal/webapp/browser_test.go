package webapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/webapp"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// browserOrSkip finds Debian's chromium and makes sure the web app is
// built into the binary. Without chromium the test skips, or fails under
// CI=true, where `make deps` must have installed it.
func browserOrSkip(t *testing.T) string {
	t.Helper()
	h, err := webapp.New(nil, nil)
	require.NoError(t, err)
	require.True(t, h.Built(), webapp.ErrNotBuilt.Error())
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing; `make deps` installs it (hack/deps/base.sh)")
		}
		t.Skip("chromium is missing; run `make deps`")
	}
	return chromium
}

// tab is one browser tab the test drives.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts headless Chromium for the test (closed at cleanup): no
// sandbox, since CI runs as root, and autoplay without a user gesture (the
// test clicks Play, but a first load may be too early for Chromium's
// engagement rules).
func newBrowser(t *testing.T, chromium string) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.WindowSize(1280, 900))
	life, cancelLife := context.WithTimeout(context.Background(), 20*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc(); cancelLife() })
	// The first action starts the browser, on ctx itself: a timeout on it
	// would close the browser.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")
	return &tab{t: t, ctx: ctx}
}

// in is the same tab driven by t (a subtest), so a failed wait fails t.
func (b *tab) in(t *testing.T) *tab { return &tab{t: t, ctx: b.ctx} }

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...))
}

func evalIn[T any](b *tab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err, js)
	return v
}

// waitJS polls js (an expression) until it is true. A player error shown
// on the page ends the wait at once. The bound is generous: the machine is
// shared and playback runs in (sped-up) real time.
func (b *tab) waitJS(what, js string) {
	b.t.Helper()
	var perr string
	ok := testenv.Poll(3*time.Minute, func() bool {
		if evalIn[bool](b, "!!("+js+")") {
			return true
		}
		perr = evalIn[string](b, `(document.querySelector('#player .error')||{}).textContent||''`)
		return perr != ""
	})
	switch {
	case perr != "":
		b.t.Fatalf("%s: the player failed: %s", what, perr)
	case !ok:
		body := evalIn[string](b, `document.body.innerText`)
		diag := evalIn[string](b, `JSON.stringify({errors: window.overtureErrors || [], player: document.getElementById('player').dataset, requests: performance.getEntriesByType('resource').slice(-15).map(e => e.name.split('?')[0])})`)
		b.t.Fatalf("%s: not reached in 3 minutes (%s); the page says:\n%s\n%s", what, js, body, diag)
	}
}

func (b *tab) open(url string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url))
	b.waitJS("app ready at "+url, `document.body.dataset.ready === 'true'`)
	// Keep every request for the assertions and failure reports (the
	// default buffer of 250 fills with media segments).
	evalIn[any](b, `(() => { performance.setResourceTimingBufferSize(100000); return null; })()`)
}

// go navigates inside the app (no page load), as a click on a link does.
func (b *tab) goTo(path string) {
	b.t.Helper()
	js, _ := json.Marshal(path)
	evalIn[any](b, fmt.Sprintf(`(() => { const a = document.createElement('a'); a.href = %s; document.body.append(a); a.click(); a.remove(); return null; })()`, js))
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.waitJS(sel+" is shown", `(() => { const el = document.querySelector(`+jsString(sel)+`); return el !== null && el.offsetParent !== null; })()`)
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

func (b *tab) typeInto(sel, text string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	evalIn[any](b, `(() => { const el = document.querySelector(`+jsString(sel)+`); el.value = ''; return null; })()`)
	b.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// shot saves a screenshot of the page as docs/screenshots/<name>.png when
// OVERTURE_SCREENSHOTS names the directory (make screenshots).
func (b *tab) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("OVERTURE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err)
	require.NoError(b.t, os.MkdirAll(dir, 0o755))
	require.NoError(b.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// evalJSON evaluates js, which returns a JSON string, into v.
func evalJSON(b *tab, js string, v any) {
	b.t.Helper()
	require.NoError(b.t, json.Unmarshal([]byte(evalIn[string](b, js)), v), js)
}

// signInWith opens the app at base already signed in as a: the session's
// refresh token goes where the app keeps it, as a sign-in through the page
// would leave it (the journey test signs in through the form).
func (b *tab) signInWith(base string, a platformtest.Account) {
	b.t.Helper()
	b.open(base + "/")
	evalIn[any](b, `(() => { localStorage.setItem('overture.refresh', `+jsString(a.Refresh)+`); localStorage.setItem('overture.lang', 'en'); return null; })()`)
	b.open(base + "/")
	b.waitJS("signed in", `document.querySelector('nav.main a[href="/account"]') !== null`)
}

// signInForm signs in through the page's form, as a person does, and
// lands on next.
func (b *tab) signInForm(base, next, email, password string) {
	b.t.Helper()
	b.open(base + "/signin?next=" + next)
	b.typeInto("#email", email)
	b.typeInto("#password", password)
	b.click("#signin-form button[type=submit]")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
