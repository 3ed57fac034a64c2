package catalog_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// readBundle is a catalog with a published track by a Russian artist, a
// draft by a second artist and an unpublished track, written through the
// API.
type readBundle struct {
	*bundle
	kino, guest, album                 string
	published, draft, unpublished, odd string
}

func setupReads(t *testing.T) readBundle {
	t.Helper()
	b := setup(t)
	create := func(path string, body map[string]any) string {
		t.Helper()
		r := b.admin(t, "POST", path, body)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		return r.body["id"].(string)
	}
	ok := func(method, path string, body any) {
		t.Helper()
		r := b.admin(t, method, path, body)
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.status, r.raw)
	}
	rb := readBundle{bundle: b}
	ok("PUT", "/v1/admin/genres/post-punk", map[string]any{"name": "Post-punk"})
	rb.kino = create("/v1/admin/artists", map[string]any{"name": "Кино", "country": "RU", "bio": "Ленинградская группа"})
	rb.guest = create("/v1/admin/artists", map[string]any{"name": "Гость"})
	rb.album = create("/v1/admin/albums", map[string]any{"title": "Группа крови", "artist_id": rb.kino, "release_year": 1988})
	rb.published = create("/v1/admin/tracks", map[string]any{"title": "Звезда по имени Солнце", "album_id": rb.album, "genre_id": "post-punk",
		"position": 3, "duration_ms": 225000, "explicit": false, "artist_ids": []string{rb.kino, rb.guest}})
	ok("PUT", "/v1/admin/tracks/"+rb.published+"/renditions", map[string]any{"renditions": []map[string]any{
		{"kind": "hls-aac-128", "storage_key": "tracks/" + rb.published + "/hls/128/master.m3u8", "bytes": 1234},
		{"kind": "hls-aac-256", "storage_key": "tracks/" + rb.published + "/hls/256/master.m3u8", "premium": true},
	}})
	ok("POST", "/v1/admin/tracks/"+rb.published+"/publish", nil)
	rb.draft = create("/v1/admin/tracks", map[string]any{"title": "Черновик", "artist_ids": []string{rb.guest}})
	rb.unpublished = create("/v1/admin/tracks", map[string]any{"title": "Снятая песня", "artist_ids": []string{rb.kino}})
	ok("PUT", "/v1/admin/tracks/"+rb.unpublished+"/renditions", map[string]any{"renditions": []map[string]any{
		{"kind": "file-mp3", "storage_key": "tracks/" + rb.unpublished + "/a.mp3"}}})
	ok("POST", "/v1/admin/tracks/"+rb.unpublished+"/publish", nil)
	ok("POST", "/v1/admin/tracks/"+rb.unpublished+"/unpublish", nil)
	// LIKE's wildcards in a title, to be matched literally.
	rb.odd = create("/v1/admin/tracks", map[string]any{"title": "100% _pure_"})
	return rb
}

func (rb readBundle) list(t *testing.T, query string) catalog.TrackPage {
	t.Helper()
	r := rb.admin(t, "GET", "/v1/admin/tracks"+query, nil)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var page catalog.TrackPage
	require.NoError(t, json.Unmarshal([]byte(r.raw), &page))
	return page
}

func ids(page catalog.TrackPage) []string {
	out := []string{}
	for _, tr := range page.Tracks {
		out = append(out, tr.ID)
	}
	return out
}

// An admin reads every track, drafts and unpublished ones included, with
// its album, artists, genre and renditions; the list searches titles and
// artists' names (Cyrillic, any case), filters by state and pages.
func TestAdminReads(t *testing.T) {
	t.Parallel()
	rb := setupReads(t)

	t.Run("Track", func(t *testing.T) {
		r := rb.admin(t, "GET", "/v1/admin/tracks/"+rb.published, nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		var tr catalog.TrackView
		require.NoError(t, json.Unmarshal([]byte(r.raw), &tr))
		year, pos, dur, ru, bio, size := 1988, 3, 225000, "RU", "Ленинградская группа", int64(1234)
		require.NotNil(t, tr.PublishedAt)
		tr.PublishedAt = nil
		require.False(t, tr.CreatedAt.IsZero())
		require.False(t, tr.UpdatedAt.IsZero())
		tr.CreatedAt, tr.UpdatedAt = tr.CreatedAt.UTC(), tr.UpdatedAt.UTC()
		require.Equal(t, catalog.TrackView{ID: rb.published, Title: "Звезда по имени Солнце", State: "published", Position: &pos, DurationMS: &dur,
			CreatedAt: tr.CreatedAt, UpdatedAt: tr.UpdatedAt,
			Album:      &catalog.TrackAlbum{ID: rb.album, Title: "Группа крови", ReleaseYear: &year},
			Artists:    []catalog.TrackArtist{{ID: rb.kino, Name: "Кино", Country: &ru, Bio: &bio}, {ID: rb.guest, Name: "Гость"}},
			Genre:      &catalog.TrackGenre{ID: "post-punk", Name: "Post-punk"},
			Renditions: []catalog.RenditionSummary{{Kind: "hls-aac-128", Bytes: &size}, {Kind: "hls-aac-256", Premium: true}},
		}, tr)
		require.NotContains(t, r.raw, "storage_key", "the summary names no storage keys")

		r = rb.admin(t, "GET", "/v1/admin/tracks/"+rb.draft, nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, "draft", r.body["state"], "a draft is visible to admins")
		require.Equal(t, []any{}, r.body["renditions"])
		require.NotContains(t, r.body, "album")
	})

	t.Run("AlbumAndArtist", func(t *testing.T) {
		r := rb.admin(t, "GET", "/v1/admin/albums/"+rb.album, nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, "Группа крови", r.body["title"])
		require.Equal(t, float64(1988), r.body["release_year"])
		require.Equal(t, rb.kino, r.body["artist_id"])
		// What PATCH answers, GET answers.
		patched := rb.admin(t, "PATCH", "/v1/admin/artists/"+rb.guest, map[string]any{"bio": "Приглашённый"})
		require.Equal(t, http.StatusOK, patched.status, patched.raw)
		r = rb.admin(t, "GET", "/v1/admin/artists/"+rb.guest, nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, patched.body, r.body)
	})

	t.Run("List", func(t *testing.T) {
		all := rb.list(t, "")
		require.Equal(t, []string{rb.odd, rb.unpublished, rb.draft, rb.published}, ids(all), "newest first, every state")
		require.Empty(t, all.Next)
		for _, tr := range all.Tracks {
			for _, a := range tr.Artists {
				require.Nil(t, a.Bio, "a list leaves biographies out")
			}
		}
		for q, want := range map[string][]string{
			"звезда":    {rb.published},                 // part of a title, another case
			"ИМЕНИ":     {rb.published},                 // upper case
			"кино":      {rb.unpublished, rb.published}, // an artist's name
			"гост":      {rb.draft, rb.published},
			"%":         {rb.odd}, // a wildcard taken literally
			"_pure_":    {rb.odd},
			"  песня  ": {rb.unpublished}, // trimmed
			"nothing":   {},
		} {
			require.Equal(t, want, ids(rb.list(t, "?q="+url.QueryEscape(q))), "q=%q", q)
		}
		require.Equal(t, []string{rb.draft}, ids(rb.list(t, "?state=draft&q=%D0%B3%D0%BE%D1%81%D1%82")))
		require.Equal(t, []string{rb.published}, ids(rb.list(t, "?state=published")))
		require.Equal(t, []string{rb.unpublished}, ids(rb.list(t, "?state=unpublished")))

		// Pages of 3, then the rest.
		first := rb.list(t, "?limit=3")
		require.Equal(t, []string{rb.odd, rb.unpublished, rb.draft}, ids(first))
		require.NotEmpty(t, first.Next)
		second := rb.list(t, "?limit=3&before="+url.QueryEscape(first.Next))
		require.Equal(t, []string{rb.published}, ids(second))
		require.Empty(t, second.Next)
	})
}

// Bad parameters are 400 problems naming the parameter; unknown or
// malformed ids 404; a listener's token 403, none 401. Nothing changes.
func TestAdminReadsRefuse(t *testing.T) {
	t.Parallel()
	rb := setupReads(t)
	before := rb.state(t)
	for _, c := range []struct{ query, param string }{
		{"?state=deleted", "state"},
		{"?state=", "state"},
		{"?state=draft&state=published", "state"},
		{"?limit=0", "limit"},
		{"?limit=201", "limit"},
		{"?limit=ten", "limit"},
		{"?before=yesterday", "before"},
		{"?before=" + url.QueryEscape("MjAyNi0wMS0wMVQwMDowMDowMFogbm90LWEtdXVpZA"), "before"},
		{"?q=", "q"},
		{"?q=" + strings.Repeat("я", 201), "q"},
		{"?sort=title", "sort"},
	} {
		r := rb.admin(t, "GET", "/v1/admin/tracks"+c.query, nil)
		requireProblem(t, r, http.StatusBadRequest)
		require.Contains(t, r.body["detail"], c.param, "%s: the detail does not name the parameter", c.query)
	}
	for _, path := range []string{
		"/v1/admin/tracks/" + uuid.NewString(), "/v1/admin/tracks/not-an-id",
		"/v1/admin/albums/" + uuid.NewString(), "/v1/admin/artists/" + uuid.NewString(),
		"/v1/admin/albums/" + rb.published, // a track's id is no album's
	} {
		r := rb.admin(t, "GET", path, nil)
		requireProblem(t, r, http.StatusNotFound)
	}
	listener := rb.auth.Token(t, "user-1", tokentest.Options{})
	for _, path := range []string{"/v1/admin/tracks", "/v1/admin/tracks/" + rb.draft, "/v1/admin/albums/" + rb.album, "/v1/admin/artists/" + rb.kino} {
		requireProblem(t, rb.call(t, "GET", path, nil, listener), http.StatusForbidden)
		requireProblem(t, rb.call(t, "GET", path, nil, ""), http.StatusUnauthorized)
	}
	other := rb.auth.Token(t, "ops-1", tokentest.Options{Roles: []string{"ops"}})
	requireProblem(t, rb.call(t, "GET", "/v1/admin/tracks", nil, other), http.StatusForbidden)
	require.Equal(t, before, rb.state(t))
}
