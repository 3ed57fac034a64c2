package webapp_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/webapp"
)

// The page may PUT upload parts to the storage origin presigned URLs name
// (S3_PUBLIC_ENDPOINT, else S3_ENDPOINT) and to nothing else new; a
// malformed one stops the gateway.
func TestPolicyNamesTheStorageOrigin(t *testing.T) {
	t.Parallel()
	csp := func(cfg map[string]string) string {
		t.Helper()
		h, err := webapp.New(cfg, http.NotFoundHandler())
		require.NoError(t, err)
		require.True(t, h.Built(), webapp.ErrNotBuilt.Error())
		rec := &headerRecorder{h: http.Header{}}
		h.ServeHTTP(rec, &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/admin"}, Header: http.Header{}})
		return rec.h.Get("Content-Security-Policy")
	}
	connect := func(policy string) string {
		for d := range strings.SplitSeq(policy, ";") {
			if d = strings.TrimSpace(d); strings.HasPrefix(d, "connect-src ") {
				return d
			}
		}
		t.Fatalf("no connect-src in %q", policy)
		return ""
	}
	require.Equal(t, "connect-src 'self' http://127.0.0.1:7070",
		connect(csp(map[string]string{"S3_ENDPOINT": "http://127.0.0.1:7070"})))
	require.Equal(t, "connect-src 'self' https://uploads.example.net",
		connect(csp(map[string]string{"S3_ENDPOINT": "http://s3:7070", "S3_PUBLIC_ENDPOINT": "https://uploads.example.net/"})))
	p := csp(map[string]string{"S3_PUBLIC_ENDPOINT": "https://uploads.example.net"})
	require.NotContains(t, strings.Split(p, "; connect-src")[0], "uploads.example.net", "the storage origin is allowed for more than requests")
	_, err := webapp.New(map[string]string{"S3_PUBLIC_ENDPOINT": "uploads.example.net"}, nil)
	require.ErrorContains(t, err, "S3_PUBLIC_ENDPOINT")
}

type headerRecorder struct {
	h    http.Header
	code int
}

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(code int)        { r.code = code }

// TestAdminCatalogJourney is issue 15's admin journey in Chromium against
// the whole platform: an admin signs in, uploads an ffmpeg-made FLAC from
// the browser (presigned parts PUT straight to versitygw, cross-origin),
// watches it become a track, reads the API's field errors next to the
// fields, renames the track, publishes it; a listener then finds it by
// search, gets the "for administrators" page at /admin, and the admin APIs
// refuse them with 403 problems.
func TestAdminCatalogJourney(t *testing.T) {
	chromium := browserOrSkip(t)
	p := platformtest.Start(t, platformtest.Options{})
	audio := platformtest.Tone(t, 8, "Console Tone", "Оркестр консоли", "Первая загрузка")
	b := newBrowser(t, chromium)
	base := p.GatewayURL()

	// Sign in as the admin; the console opens.
	b.signInForm(base, "/admin", p.Admin.Email, p.Admin.Password)
	b.waitJS("the console", `location.pathname === '/admin' && document.querySelector('#upload-form') !== null`)
	for _, link := range []string{"/admin/dead-letters", "/admin/cdn", "/admin/stats"} {
		require.True(t, evalIn[bool](b, `!!document.querySelector('#admin-nav a[href="`+link+`"]')`), "no link to %s", link)
	}
	checkA11y(t, b, "admin console")
	tabReaches(t, b, "#admin-nav a[href='/admin/stats']", "#files", "#folder", "#autopublish", "#upload-form button[type=submit]")

	// Upload in the browser: the file's progress bar fills, the parts went
	// to storage's origin, and the row follows ingestion to a track.
	// Beside it, a text file named .mp3: its row says why it failed.
	bad := filepath.Join(t.TempDir(), "notes.mp3")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Repeat("these are liner notes, not audio\n", 200)), 0o644))
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{audio, bad}))
	b.click("#upload-form button[type=submit]")
	li := `#upload-progress li[data-file="tone.flac"]`
	b.waitJS("ingestion made a track", `document.querySelector(`+jsString(li+`[data-state=ready] a`)+`) !== null`)
	b.waitJS("the text file failed, and the row says why", `(() => { const li = document.querySelector('#upload-progress li[data-file="notes.mp3"][data-state=failed]');
		return li !== null && li.textContent.includes('this is not an audio file (not_audio)'); })()`)
	require.True(t, evalIn[bool](b, `(() => { const p = document.querySelector(`+jsString(li+" progress")+`); return p.value === p.max && p.max > 1000; })()`),
		"the progress bar did not fill")
	puts := evalIn[int](b, fmt.Sprintf(`performance.getEntriesByType('resource').filter(e => e.name.startsWith(%s + '/uploads/') && e.initiatorType === 'xmlhttprequest').length`, jsString(p.S3URL)))
	require.Positive(t, puts, "no part went straight to storage at %s", p.S3URL)
	upload := evalIn[string](b, `document.querySelector(`+jsString(li)+`).dataset.upload`)
	b.waitJS("the uploads table shows it ready", fmt.Sprintf(`document.querySelector('#uploads tr[data-upload=%q][data-state=ready]') !== null`, upload))
	b.shot("admin-uploads")

	// The upload's page: the catalog's draft track, album and artist.
	b.click(li + " a")
	b.waitJS("the track's forms", `document.querySelector('#track-form') !== null && document.querySelector('#track-title').value === 'Console Tone'`)
	require.Equal(t, "draft", evalIn[string](b, `document.getElementById('track-state').dataset.state`))
	require.Equal(t, "Первая загрузка", evalIn[string](b, `document.getElementById('album-title').value`))
	require.Equal(t, "Оркестр консоли", evalIn[string](b, `document.getElementById('artist-0-name').value`))
	trackID := evalIn[string](b, `document.getElementById('track-edit').dataset.track`)

	// The API's validation, next to the field it is about.
	b.typeInto("#artist-0-country", "Russia")
	b.click("#artist-0-form button[type=submit]")
	b.waitJS("the country's error is shown by the field", `(() => { const e = document.getElementById('artist-0-country-error');
		const i = document.getElementById('artist-0-country'); return !e.hidden && e.textContent !== '' && i.getAttribute('aria-invalid') === 'true' && i.getAttribute('aria-describedby') === e.id; })()`)
	require.Equal(t, "artist-0-country", evalIn[string](b, `document.activeElement.id`), "the invalid field does not get the focus")
	evalIn[any](b, `(() => { document.getElementById('track-title').value = ''; return null; })()`)
	b.click("#track-form button[type=submit]")
	b.waitJS("the title's error is shown by the field", `!document.getElementById('track-title-error').hidden`)
	b.shot("admin-track-invalid")
	checkA11y(t, b, "admin track page with field errors")

	// Edit, then publish.
	b.typeInto("#track-title", "Renamed In The Console")
	b.click("#track-form button[type=submit]")
	b.waitJS("the new title is saved", `document.getElementById('publishing-h').textContent.includes('Renamed In The Console') && document.querySelector('#track-form .notice') !== null`)
	b.typeInto("#artist-0-country", "RU")
	b.click("#artist-0-form button[type=submit]")
	b.waitJS("the artist is saved", `document.querySelector('#artist-0-form .notice') !== null && document.getElementById('artist-0-country').value === 'RU'`)
	tabReaches(t, b, "#publish", "#track-title", "#track-position", "#track-explicit", "#album-title", "#album-release_year", "#artist-0-country", "#artist-0-form button[type=submit]")
	b.click("#publish")
	b.waitJS("published", `document.querySelector('#track-state[data-state=published]') !== null && document.getElementById('unpublish') !== null`)
	b.shot("admin-track")
	// On a phone: no sideways scrolling, controls still labelled.
	b.do(chromedp.EmulateViewport(390, 844))
	b.goTo("/admin")
	b.waitJS("the console on a phone", fmt.Sprintf(`document.querySelector('#uploads tr[data-upload=%q]') !== null`, upload))
	checkA11y(t, b, "admin console on a phone")
	b.shot("admin-phone")
	b.do(chromedp.EmulateViewport(1280, 900))
	// In Russian: the console's own texts too.
	setLang := func(l string) {
		evalIn[any](b, `(() => { const s = document.getElementById('lang'); s.value = '`+l+`'; s.dispatchEvent(new Event('change')); return null; })()`)
	}
	setLang("ru")
	b.waitJS("the console speaks Russian", `document.documentElement.lang === 'ru' && document.getElementById('admin-nav').textContent.includes('Загрузки') && document.getElementById('admin-nav').textContent.includes('Каталог')
		&& document.querySelector('#upload-form label[for=files]').textContent === 'Аудиофайлы' && document.getElementById('uploads-h').textContent === 'Последние загрузки'`)
	b.shot("admin-ru")
	setLang("en")
	b.waitJS("back in English", `document.getElementById('uploads-h').textContent === 'Recent uploads'`)

	var got struct {
		Track struct {
			Title   string `json:"title"`
			State   string `json:"state"`
			Artists []struct {
				Country string `json:"country"`
			} `json:"artists"`
		} `json:"track"`
	}
	p.CallJSON(t, "GET", "/v1/admin/uploads/"+upload, p.Admin.Access, nil, http.StatusOK, &got)
	require.Equal(t, "Renamed In The Console", got.Track.Title)
	require.Equal(t, "published", got.Track.State)
	require.Equal(t, "RU", got.Track.Artists[0].Country)

	// A listener: the admin APIs refuse them with a problem.
	listener := p.Listener(t, "listener@example.com")
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/admin/uploads"}, {"GET", "/v1/admin/uploads/" + upload},
		{"POST", "/v1/admin/uploads"}, {"PATCH", "/v1/admin/tracks/" + trackID},
		{"POST", "/v1/admin/tracks/" + trackID + "/unpublish"},
	} {
		var body any
		if c.method != "GET" {
			body = map[string]any{"title": "taken over"}
		}
		resp := p.Do(t, c.method, c.path, listener.Access, body)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %s: %s", c.method, c.path, raw)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "%s %s", c.method, c.path)
		var prob struct {
			Detail string `json:"detail"`
		}
		require.NoError(t, json.Unmarshal(raw, &prob))
		require.NotEmpty(t, prob.Detail, "%s %s: a 403 without a reason", c.method, c.path)
	}

	// The listener finds the published track by its new title (once the
	// search index has the write), and /admin is not for them.
	testenv.WaitFor(t, 2*time.Minute, "search to find the renamed track", func() bool { return searchFinds(t, p, "renamed in the console", trackID) })
	evalIn[any](b, `(() => { localStorage.clear(); return null; })()`)
	b.signInForm(base, "/admin", listener.Email, listener.Password)
	b.waitJS("the page for administrators", `location.pathname === '/admin' && document.querySelector('#admin-forbidden') !== null`)
	require.Zero(t, evalIn[int](b, `document.querySelectorAll('#upload-form, nav.main a[href="/admin"]').length`), "a listener sees the console")
	checkA11y(t, b, "admin page for a listener")
	b.goTo("/search")
	b.typeInto("#q", "renamed in the console")
	b.waitJS("the listener's search finds the track", fmt.Sprintf(`document.querySelector('#results li[data-track=%q]') !== null`, trackID))
	require.Empty(t, evalIn[[]string](b, `window.overtureErrors`), "the page had unhandled errors")
}

// searchFinds reports whether the public search for q lists track id.
func searchFinds(t *testing.T, p *platformtest.Platform, q, id string) bool {
	t.Helper()
	resp := p.Do(t, "GET", "/v1/search?q="+url.QueryEscape(q), "", nil)
	defer resp.Body.Close()
	var page struct {
		Hits []struct {
			ID string `json:"id"`
		} `json:"hits"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&page) != nil {
		return false
	}
	for _, h := range page.Hits {
		if h.ID == id {
			return true
		}
	}
	return false
}
