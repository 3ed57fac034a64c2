package catalog_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/eventtype"
)

// TestArtistAndAlbumRows: artists and albums share their create, update and
// delete handlers; each still answers its own row, writes its own events
// (keyed by its own id) and refuses to go while other rows reference it.
func TestArtistAndAlbumRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	create := func(path string, body map[string]any) string {
		t.Helper()
		r := b.admin(t, "POST", path, body)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		return r.body["id"].(string)
	}
	artist := create("/v1/admin/artists", map[string]any{"name": "Кино"})
	album := create("/v1/admin/albums", map[string]any{"title": "Группа крови", "artist_id": artist})
	track := create("/v1/admin/tracks", map[string]any{"title": "Кукушка", "album_id": album})

	// The album first: the artist is referenced by it.
	for _, tc := range []struct {
		name, key, path, field, value, inUse, dependent string
		types                                           []string
	}{
		{"Album", "album:" + album, "/v1/admin/albums/" + album, "title", "Звезда по имени Солнце", "still has 1 tracks", "/v1/admin/tracks/" + track,
			[]string{eventtype.AlbumCreated, eventtype.AlbumUpdated, eventtype.AlbumDeleted}},
		{"Artist", "artist:" + artist, "/v1/admin/artists/" + artist, "name", "KINO", "still has 1 albums and 0 tracks", "",
			[]string{eventtype.ArtistCreated, eventtype.ArtistUpdated, eventtype.ArtistDeleted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.admin(t, "PATCH", tc.path, map[string]any{tc.field: tc.value})
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, tc.value, r.body[tc.field])

			if tc.dependent != "" {
				before := b.state(t)
				r = b.admin(t, "DELETE", tc.path, nil)
				requireProblem(t, r, http.StatusConflict)
				require.Contains(t, r.body["detail"], tc.inUse)
				require.Equal(t, before, b.state(t), "a refused delete changes nothing")
				r = b.admin(t, "DELETE", tc.dependent, nil)
				require.Equal(t, http.StatusNoContent, r.status, r.raw)
			}
			r = b.admin(t, "DELETE", tc.path, nil)
			require.Equal(t, http.StatusNoContent, r.status, r.raw)
			requireToken(t, r)
			requireProblem(t, b.admin(t, "DELETE", tc.path, nil), http.StatusNotFound)

			var types []string
			var last string
			for _, e := range b.events(t) {
				if e.Key == tc.key {
					types, last = append(types, e.Type), string(e.Data)
				}
			}
			require.Equal(t, tc.types, types)
			require.True(t, strings.Contains(last, tc.value), "the deleted event carries the last %s: %s", tc.field, last)
		})
	}
}
