package webapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/testenv"
)

// TestAdminOperationsPages drives the admin console's operations pages in
// Chromium against the whole platform:
//
//   - dead letters: a published track whose audio is not yet in storage
//     makes cdn-warm fail until the broker gives up (a dead letter, as a real
//     ingest race would leave); once the audio is there, the admin re-drives
//     it from the page, it leaves the list, and the warm reaches the POP;
//   - CDN: the POP is shown with its health and hit ratio, and the admin
//     purges the track from it;
//   - statistics: listens the test submits for the artist appear as bars of
//     the streams-per-day and listeners-per-day charts.
//
// Each page passes the accessibility check of a11y_test.go.
func TestAdminOperationsPages(t *testing.T) {
	chromium := browserOrSkip(t)
	p := platformtest.Start(t, platformtest.Options{})
	admin := p.Admin.Access

	// A track whose rendition is missing from storage, published.
	const artistName = "Ops Test Artist"
	var artist, track struct {
		ID string `json:"id"`
	}
	p.CallJSON(t, "POST", "/v1/admin/artists", admin, map[string]any{"name": artistName}, http.StatusCreated, &artist)
	p.CallJSON(t, "POST", "/v1/admin/tracks", admin, map[string]any{"title": "Dead Letter Song", "artist_ids": []string{artist.ID}, "duration_ms": 200000}, http.StatusCreated, &track)
	key := "tracks/" + track.ID + "/v1/song.mp3"
	p.Call(t, "PUT", "/v1/admin/tracks/"+track.ID+"/renditions", admin,
		map[string]any{"renditions": []map[string]any{{"kind": "file-mp3", "storage_key": key}}}, http.StatusOK)
	p.Publish(t, track.ID)

	// cdn-warm retries 5 times (1+2+4+8+16 s), then the sink stores it.
	var dl struct {
		DeadLetters []struct {
			ID         int64  `json:"id"`
			Subscriber string `json:"subscriber"`
			Type       string `json:"type"`
		} `json:"dead_letters"`
	}
	require.True(t, testenv.Poll(3*time.Minute, func() bool {
		p.CallJSON(t, "GET", "/v1/admin/dead-letters?subscriber=cdn-warm", admin, nil, http.StatusOK, &dl)
		return len(dl.DeadLetters) > 0
	}), "cdn-warm's failure never became a dead letter")
	dead := dl.DeadLetters[0]
	require.Equal(t, "music.overture.catalog.track_published.v1", dead.Type)

	// Fix the cause: the audio arrives in storage.
	_, err := p.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key),
		Body: bytes.NewReader(bytes.Repeat([]byte("ID3 audio "), 4096)), ContentType: aws.String("audio/mpeg")})
	require.NoError(t, err)

	// Listens for the statistics: 3 streams by one listener, 2 by another.
	now := time.Now().Unix()
	for i, who := range []string{"ops-a@example.com", "ops-b@example.com"} {
		l := p.Listener(t, who)
		var items []string
		for j := range 3 - i {
			items = append(items, fmt.Sprintf(`{"listened_at":%d,"track_metadata":{"artist_name":%q,"track_name":"Dead Letter Song","additional_info":{"overture_track_id":%q,"duration_ms":200000,"played_ms":60000,"end_reason":"completed"}}}`,
				now-int64(600*(j+1)), artistName, track.ID))
		}
		p.Call(t, "POST", "/v1/listens", l.Access, json.RawMessage(`{"listen_type":"import","payload":[`+strings.Join(items, ",")+`]}`), http.StatusOK)
	}

	b := newBrowser(t, chromium)
	base := p.GatewayURL()
	b.signInWith(base, p.Admin)

	// Dead letters: re-drive from the page.
	row := fmt.Sprintf(`tr[data-dead-letter="%d"]`, dead.ID)
	b.goTo("/admin/dead-letters")
	b.waitJS("the dead letter is listed", `document.querySelector(`+jsString(row)+`) !== null`)
	require.Contains(t, evalIn[string](b, `document.querySelector(`+jsString(row)+`).innerText`), "cdn-warm")
	checkA11y(t, b, "dead letters")
	b.shot("admin-dead-letters")
	b.click(row + " button.redrive")
	b.waitJS("the re-driven dead letter leaves the list", `document.querySelector(`+jsString(row)+`) === null && document.querySelector('#dlq-status .notice') !== null`)
	// The event went through the broker again: cdn-warm now warms the POP.
	require.True(t, testenv.Poll(2*time.Minute, func() bool { return p.POPServer.Snapshot().Objects > 0 }),
		"the re-driven track_published never warmed the POP")
	p.CallJSON(t, "GET", "/v1/admin/dead-letters?subscriber=cdn-warm", admin, nil, http.StatusOK, &dl)
	require.Empty(t, dl.DeadLetters, "the re-driven event failed again")

	// CDN: the POP's health and hit ratio; purge the track.
	b.goTo("/admin/cdn")
	pop := fmt.Sprintf(`li.pop[data-pop=%q]`, p.POP.Name)
	b.waitJS("the POP is on the map", `document.querySelector(`+jsString(pop+".healthy .hit-ratio")+`) !== null`)
	require.Contains(t, evalIn[string](b, `document.querySelector('#pop-map').innerText`), p.POP.Region)
	checkA11y(t, b, "cdn")
	b.shot("admin-cdn")
	b.typeInto("#cdn-track", track.ID)
	// The form is at the foot of the page: bring it above the fixed player
	// bar, which would otherwise take the click.
	evalIn[any](b, `(() => { document.querySelector('#cdn-purge').scrollIntoView({block: 'center'}); return null; })()`)
	b.click("#cdn-purge")
	b.waitJS("the purge answered", `document.querySelector('#cdn-result ul.outcomes li') !== null`)
	out := evalIn[string](b, `document.querySelector('#cdn-result').innerText`)
	require.Contains(t, out, p.POP.Name)
	require.NotContains(t, out, "error", out)
	require.Zero(t, p.POPServer.Snapshot().Objects, "the POP still caches the purged track")

	// Statistics: once the store has the listens, the charts show them.
	require.True(t, testenv.Poll(2*time.Minute, func() bool {
		var st struct {
			Days []struct {
				Streams int `json:"streams"`
			} `json:"days"`
		}
		p.CallJSON(t, "GET", "/v1/dashboard/streams?artist="+strings.ReplaceAll(artistName, " ", "%20"), admin, nil, http.StatusOK, &st)
		n := 0
		for _, d := range st.Days {
			n += d.Streams
		}
		return n == 5
	}), "the statistics store never counted the 5 streams")
	b.goTo("/admin/stats?artist=" + strings.ReplaceAll(artistName, " ", "%20") + "&days=7")
	b.waitJS("the charts are drawn", `document.querySelector('#chart-streams svg rect.bar') !== null`)
	sum := func(chart string) int {
		return evalIn[int](b, `Array.from(document.querySelectorAll('#`+chart+` rect.bar')).reduce((a, r) => a + Number(r.dataset.value), 0)`)
	}
	maxOf := func(chart string) int {
		return evalIn[int](b, `Math.max(...Array.from(document.querySelectorAll('#`+chart+` rect.bar')).map(r => Number(r.dataset.value)))`)
	}
	require.Equal(t, 5, sum("chart-streams"), "streams per day")
	require.Equal(t, 2, maxOf("chart-listeners"), "unique listeners per day")
	require.Equal(t, 5, maxOf("chart-top"), "the top track's streams")
	require.Equal(t, 7, evalIn[int](b, `document.querySelectorAll('#chart-streams rect.bar').length`), "one bar per day")
	// The text alternatives: the image's name and description, and the table.
	require.Equal(t, "img", evalIn[string](b, `document.querySelector('#chart-streams svg').getAttribute('role')`))
	require.Contains(t, evalIn[string](b, `document.querySelector('#chart-streams svg desc').textContent`), "5")
	require.Equal(t, 7, evalIn[int](b, `document.querySelectorAll('#chart-streams table tbody tr').length`))
	checkA11y(t, b, "statistics")
	b.shot("admin-stats")

	// Russian.
	evalIn[any](b, `(() => { const s = document.getElementById('lang'); s.value = 'ru'; s.dispatchEvent(new Event('change')); return null; })()`)
	b.waitJS("the statistics page in Russian", `document.querySelector('main h1') && document.querySelector('main h1').textContent === 'Статистика' && document.querySelector('#chart-streams svg') !== null`)
}
