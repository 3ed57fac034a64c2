package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// An upload's answer carries its track as the catalog has it now: title,
// state, album, artists in credit order; an upload without a track, or
// whose track was deleted, carries none.
func TestAnswersCarryTheCatalogsTrack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := postgrestest.Pool(t, catalog.Migrate, Migrate)
	s := &Store{Pool: pool}
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	first, second, albumID, trackID := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	exec(`INSERT INTO artist (id, name, country, bio) VALUES ($1, 'Кино', 'RU', 'Ленинград'), ($2, 'Guest', NULL, NULL)`, first, second)
	exec(`INSERT INTO album (id, title, artist_id, release_year) VALUES ($1, 'Группа крови', $2, 1988)`, albumID, first)
	exec(`INSERT INTO track (id, title, album_id, position, explicit, state) VALUES ($1, 'Звезда', $2, 3, true, 'published')`, trackID, albumID)
	// Credit order is position, not insertion order.
	exec(`INSERT INTO track_artist (track_id, artist_id, position) VALUES ($1, $2, 1), ($1, $3, 0)`, trackID, second, first)

	var ans []UploadAnswer
	for _, track := range []string{trackID, "", uuid.NewString()} {
		u, err := s.Announce(ctx, Upload{Bucket: "uploads", Key: "admin/" + uuid.NewString() + "/f.flac", Filename: "f.flac"})
		require.NoError(t, err)
		if track != "" {
			exec(`UPDATE ingest_upload SET state = 'ready', track_id = $2 WHERE id = $1`, u.ID, track)
			u.TrackID = track
		}
		ans = append(ans, UploadAnswer{Upload: u})
	}
	require.NoError(t, s.withTracks(ctx, ans))
	year, pos, ru, bio := 1988, 3, "RU", "Ленинград"
	got := ans[0].Track
	require.NotNil(t, got)
	require.False(t, got.CreatedAt.IsZero())
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	require.Equal(t, &catalog.TrackView{ID: trackID, Title: "Звезда", State: "published", Explicit: true, Position: &pos,
		Album:      &catalog.TrackAlbum{ID: albumID, Title: "Группа крови", ReleaseYear: &year},
		Artists:    []catalog.TrackArtist{{ID: first, Name: "Кино", Country: &ru, Bio: &bio}, {ID: second, Name: "Guest"}},
		Renditions: []catalog.RenditionSummary{}}, got)
	require.Nil(t, ans[1].Track, "an upload without a track")
	require.Nil(t, ans[2].Track, "a deleted track")

	// A track without album or artists (a draft being edited).
	exec(`UPDATE track SET album_id = NULL, position = NULL WHERE id = $1`, trackID)
	exec(`DELETE FROM track_artist WHERE track_id = $1`, trackID)
	one := []UploadAnswer{{Upload: ans[0].Upload}}
	require.NoError(t, s.withTracks(ctx, one))
	require.Nil(t, one[0].Track.Album)
	require.Nil(t, one[0].Track.Position)
	require.Empty(t, one[0].Track.Artists)
	require.NotNil(t, one[0].Track.Artists, "artists must be a list, not null, in JSON")
}
