package webapp_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/platformtest"
)

// TestGenrePages: two tracks of a genre, given it through the catalog admin
// API and published (a third stays a draft) → the main navigation's Genres
// lists the genre with its two published tracks → its page lists both, one
// plays (the audio's time advances) → a track page's genre links back to the
// genre's page; accessibility on both pages.
func TestGenrePages(t *testing.T) {
	chromium := browserOrSkip(t)
	p := platformtest.Start(t, platformtest.Options{})
	admin := p.Admin.Access
	p.Call(t, "PUT", "/v1/admin/genres/shoegaze", admin, map[string]any{"name": "Shoegaze"}, http.StatusCreated)

	var tracks []string
	var after string
	for i, title := range []string{"Жанровая первая", "Жанровая вторая", "Жанровый черновик"} {
		// Lengths differ: identical audio would be one track.
		id := p.Ingest(t, platformtest.Tone(t, 40+i, title, "Жанровая группа", "Жанровый альбом")).TrackID
		p.Call(t, "PATCH", "/v1/admin/tracks/"+id, admin, map[string]any{"genre_id": "shoegaze"}, http.StatusOK)
		if i < 2 {
			after = p.Publish(t, id)
			tracks = append(tracks, id)
		}
	}
	p.WaitSearch(t, "жанровая", tracks[0], after)
	p.WaitSearch(t, "жанровая", tracks[1], after)
	var genres struct {
		Genres []struct {
			ID         string `json:"id"`
			Name       string `json:"name"`
			TrackCount int    `json:"track_count"`
		} `json:"genres"`
	}
	p.CallJSON(t, "GET", "/v1/genres?after="+after, "", nil, http.StatusOK, &genres)
	require.Len(t, genres.Genres, 1, "the genre list: %+v", genres)
	require.Equal(t, "Shoegaze", genres.Genres[0].Name)
	require.Equal(t, 2, genres.Genres[0].TrackCount, "the draft is counted")

	me := p.Listener(t, "genres@example.com")
	b := newBrowser(t, chromium)
	b.signInWith(p.GatewayURL(), me)

	// All genres, from the main navigation.
	b.click(`nav.main a[href="/genres"]`)
	b.waitJS("the genre list", `location.pathname === '/genres' && document.querySelector('main a[href="/genre/shoegaze"]') !== null`)
	require.Contains(t, evalIn[string](b, `document.querySelector('main a[href="/genre/shoegaze"]').parentElement.textContent`), "Tracks: 2")
	require.Equal(t, "page", evalIn[string](b, `document.querySelector('nav.main a[href="/genres"]').getAttribute('aria-current')`))
	checkA11y(t, b, "genres page")

	// The genre's page: both published tracks, the draft absent; one plays.
	b.click(`main a[href="/genre/shoegaze"]`)
	rows := fmt.Sprintf(`document.querySelector('li[data-track=%q]') !== null && document.querySelector('li[data-track=%q]') !== null`, tracks[0], tracks[1])
	b.waitJS("both tracks on the genre page", `location.pathname === '/genre/shoegaze' && `+rows)
	require.Equal(t, "Shoegaze", evalIn[string](b, `document.querySelector('main h1').textContent`))
	require.Equal(t, 2, evalIn[int](b, `document.querySelectorAll('main ol.tracks li').length`), "the draft is listed")
	checkA11y(t, b, "genre page")
	b.click(fmt.Sprintf(`li[data-track=%q] button.play`, tracks[1]))
	b.waitJS("the track plays", `document.getElementById('audio').currentTime > 1`)
	at := evalIn[float64](b, `document.getElementById('audio').currentTime`)
	b.waitJS("the audio's time advances", fmt.Sprintf(`document.getElementById('audio').currentTime > %f`, at+0.5))

	// A track page's genre links to the genre's page.
	b.goTo("/track/" + tracks[0])
	b.waitJS("the track page", `document.querySelector('main dd a[href="/genre/shoegaze"]') !== null`)
	b.click(`main dd a[href="/genre/shoegaze"]`)
	b.waitJS("the genre page from the track page", `location.pathname === '/genre/shoegaze' && `+rows)

	// A genre without published tracks says so.
	b.goTo("/genre/no-such-genre")
	b.waitJS("the empty genre page", `location.pathname === '/genre/no-such-genre' && document.querySelector('main').textContent.includes('This genre has no published tracks.')`)
	require.Equal(t, 0, evalIn[int](b, `document.querySelectorAll('main ol.tracks li').length`))
	require.True(t, evalIn[bool](b, `document.querySelector('main a[href="/genres"]') !== null`), "no way back to all genres")
}
