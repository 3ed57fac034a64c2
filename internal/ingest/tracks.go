package ingest

import (
	"context"
	"fmt"
)

// Track is an upload's track as the catalog has it now: title, state,
// album and artists with their ids. The admin console edits a fresh
// upload's metadata from it (through the catalog admin API) while the
// track is still a draft, which no public read API shows. It is read from
// the catalog's tables, in the database ingestion writes them to in the
// same transaction as the upload record (functions/ingest).
type Track struct {
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	State    string        `json:"state"`
	Explicit bool          `json:"explicit"`
	Position *int          `json:"position,omitempty"`
	Album    *TrackAlbum   `json:"album,omitempty"`
	Artists  []TrackArtist `json:"artists"`
}

// TrackAlbum is the album of an upload's track.
type TrackAlbum struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	ReleaseYear *int   `json:"release_year,omitempty"`
}

// TrackArtist is one artist of an upload's track, in credit order.
type TrackArtist struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Country *string `json:"country,omitempty"`
	Bio     *string `json:"bio,omitempty"`
}

// tracks returns the catalog's tracks among ids by id; a deleted track is
// missing.
func (s *Store) tracks(ctx context.Context, ids []string) (map[string]Track, error) {
	out := map[string]Track{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.Pool.Query(ctx, `
SELECT t.id::text, t.title, t.state, t.explicit, t.position, al.id::text, al.title, al.release_year,
       coalesce((SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'country', a.country, 'bio', a.bio)
                                 ORDER BY ta.position, a.id)
                   FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                  WHERE ta.track_id = t.id), '[]'::json)
  FROM track t LEFT JOIN album al ON al.id = t.album_id
 WHERE t.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("load tracks of uploads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t                  Track
			albumID, albumName *string
			year               *int
		)
		if err := rows.Scan(&t.ID, &t.Title, &t.State, &t.Explicit, &t.Position, &albumID, &albumName, &year, &t.Artists); err != nil {
			return nil, fmt.Errorf("load tracks of uploads: %w", err)
		}
		if albumID != nil {
			t.Album = &TrackAlbum{ID: *albumID, Title: *albumName, ReleaseYear: year}
		}
		out[t.ID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load tracks of uploads: %w", err)
	}
	return out, nil
}

// withTracks adds each upload's track (when it has one the catalog still
// holds) to the answers.
func (s *Store) withTracks(ctx context.Context, ans []UploadAnswer) error {
	var ids []string
	for _, a := range ans {
		if a.TrackID != "" {
			ids = append(ids, a.TrackID)
		}
	}
	ts, err := s.tracks(ctx, ids)
	if err != nil {
		return err
	}
	for i := range ans {
		if t, ok := ts[ans[i].TrackID]; ok {
			ans[i].Track = &t
		}
	}
	return nil
}
