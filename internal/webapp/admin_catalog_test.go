package webapp_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/testenv"
)

// TestAdminCatalogue is the console's Catalogue in Chromium against the
// whole platform: a published track (ingested from an ffmpeg-made FLAC,
// not through the console's upload) and a draft without audio are in the
// list; the admin finds the published one by typing part of its Cyrillic
// title, opens it, changes its album's year and its artist's biography,
// and unpublishes it; the listener's search then no longer finds it. A
// publish the API refuses (the draft has no audio) is said in the list.
// The accessibility check of a11y_test.go runs on both pages.
func TestAdminCatalogue(t *testing.T) {
	chromium := browserOrSkip(t)
	p := platformtest.Start(t, platformtest.Options{})
	admin := p.Admin.Access

	const title = "Северная каталожная песня"
	up := p.Ingest(t, platformtest.Tone(t, 6, title, "Оркестр каталога", "Альбом каталога"))
	track := up.TrackID
	p.WaitSearch(t, title, track, p.Publish(t, track))
	var artist, draft struct {
		ID string `json:"id"`
	}
	p.CallJSON(t, "POST", "/v1/admin/artists", admin, map[string]any{"name": "Черновой исполнитель"}, http.StatusCreated, &artist)
	p.CallJSON(t, "POST", "/v1/admin/tracks", admin, map[string]any{"title": "Каталожный черновик", "artist_ids": []string{artist.ID}}, http.StatusCreated, &draft)

	b := newBrowser(t, chromium)
	base := p.GatewayURL()
	b.signInForm(base, "/admin", p.Admin.Email, p.Admin.Password)
	b.waitJS("the console", `location.pathname === '/admin' && document.querySelector('#upload-form') !== null`)

	// The Catalogue, from the console's navigation: every track, drafts too.
	b.click(`#admin-nav a[href="/admin/catalog"]`)
	row := func(id string) string { return fmt.Sprintf(`#catalog-tracks tr[data-track=%q]`, id) }
	b.waitJS("both tracks listed", `document.querySelector(`+jsString(row(track))+`) !== null && document.querySelector(`+jsString(row(draft.ID))+`) !== null`)
	require.Equal(t, "page", evalIn[string](b, `document.querySelector('#admin-nav a[href="/admin/catalog"]').getAttribute('aria-current')`))
	require.Equal(t, "draft", evalIn[string](b, `document.querySelector(`+jsString(row(draft.ID))+`).dataset.state`))
	checkA11y(t, b, "catalogue")
	tabReaches(t, b, `#admin-nav a[href="/admin/catalog"]`, "#catalog-q", "#catalog-state", row(track)+" a", row(track)+" button[data-action=unpublish]")

	// The draft has no audio: the API refuses to publish it, and the list
	// says so; the row stays a draft.
	b.click(row(draft.ID) + " button[data-action=publish]")
	b.waitJS("the refusal is shown", `(() => { const s = document.querySelector('#catalog-status .error'); return s !== null && s.textContent.includes('Каталожный черновик') && s.textContent.includes('renditions'); })()`)
	require.Equal(t, "draft", evalIn[string](b, `document.querySelector(`+jsString(row(draft.ID))+`).dataset.state`))

	// Search as you type: part of the title, in Cyrillic and another case;
	// the draft leaves the list, and the address keeps the search.
	b.typeInto("#catalog-q", "КАТАЛОЖНАЯ пес")
	b.waitJS("only the track is left", `document.querySelectorAll('#catalog-tracks tr[data-track]').length === 1 && document.querySelector(`+jsString(row(track))+`) !== null`)
	require.Equal(t, "?q="+url.QueryEscape("КАТАЛОЖНАЯ пес"), evalIn[string](b, `location.search`))
	// The state filter: no draft has that title.
	evalIn[any](b, `(() => { const s = document.getElementById('catalog-state'); s.value = 'draft'; s.dispatchEvent(new Event('change')); return null; })()`)
	b.waitJS("no draft matches", `document.querySelectorAll('#catalog-tracks tr[data-track]').length === 0`)
	evalIn[any](b, `(() => { const s = document.getElementById('catalog-state'); s.value = 'published'; s.dispatchEvent(new Event('change')); return null; })()`)
	b.waitJS("the published track matches", `document.querySelector(`+jsString(row(track)+"[data-state=published]")+`) !== null`)
	b.shot("admin-catalog")

	// Its page: the same forms as an upload's, keyed by the track.
	b.click(row(track) + " a")
	b.waitJS("the track's page", fmt.Sprintf(`location.pathname === '/admin/tracks/%s' && document.getElementById('album-release_year') !== null`, track))
	require.Equal(t, title, evalIn[string](b, `document.getElementById('track-title').value`))
	require.Equal(t, "Альбом каталога", evalIn[string](b, `document.getElementById('album-title').value`))
	require.Equal(t, "Оркестр каталога", evalIn[string](b, `document.getElementById('artist-0-name').value`))
	require.Contains(t, evalIn[string](b, `document.getElementById('track-facts').textContent`), "hls", "the audio the track has is not shown")

	b.typeInto("#album-release_year", "1987")
	b.click("#album-form button[type=submit]")
	b.waitJS("the album is saved", `document.querySelector('#album-form .notice') !== null && document.getElementById('album-release_year').value === '1987'`)
	const bio = "Оркестр, собранный для проверки каталога."
	b.typeInto("#artist-0-bio", bio)
	b.click("#artist-0-form button[type=submit]")
	b.waitJS("the artist is saved", `document.querySelector('#artist-0-form .notice') !== null && document.getElementById('artist-0-bio').value === `+jsString(bio))
	checkA11y(t, b, "catalogue track page")
	b.click("#unpublish")
	b.waitJS("unpublished", `document.querySelector('#track-state[data-state=unpublished]') !== null && document.getElementById('publish') !== null`)
	b.shot("admin-catalog-track")

	var got struct {
		State string `json:"state"`
		Album struct {
			ReleaseYear int `json:"release_year"`
		} `json:"album"`
		Artists []struct {
			Bio string `json:"bio"`
		} `json:"artists"`
	}
	p.CallJSON(t, "GET", "/v1/admin/tracks/"+track, admin, nil, http.StatusOK, &got)
	require.Equal(t, "unpublished", got.State)
	require.Equal(t, 1987, got.Album.ReleaseYear)
	require.Equal(t, bio, got.Artists[0].Bio)

	// Back in the list, the row says unpublished.
	b.click(`#catalog-track-page a[href="/admin/catalog"]`)
	b.waitJS("the list shows it unpublished", `document.querySelector(`+jsString(row(track)+"[data-state=unpublished]")+`) !== null`)

	// The listener's search no longer finds it, once the index has the
	// unpublish.
	require.True(t, testenv.Poll(2*time.Minute, func() bool { return !searchFinds(t, p, title, track) }), "search still finds the unpublished track")
	listener := p.Listener(t, "catalogue-listener@example.com")
	evalIn[any](b, `(() => { localStorage.clear(); return null; })()`)
	b.open(base + "/signin?next=/search")
	b.typeInto("#email", listener.Email)
	b.typeInto("#password", listener.Password)
	b.click("#signin-form button[type=submit]")
	b.waitJS("signed in", `location.pathname === '/search' && document.querySelector('nav.main a[href="/account"]') !== null`)
	b.open(base + "/search?q=" + url.QueryEscape("каталожная песня"))
	b.waitJS("the search answered", `document.getElementById('results').getAttribute('aria-busy') === 'false'`)
	require.Zero(t, evalIn[int](b, `document.querySelectorAll(`+jsString(fmt.Sprintf(`#results li[data-track=%q]`, track))+`).length`), "the listener's search finds the unpublished track")
	require.Empty(t, evalIn[[]string](b, `window.overtureErrors`), "the page had unhandled errors")
}
