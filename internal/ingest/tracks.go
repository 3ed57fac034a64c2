package ingest

import (
	"context"
	"fmt"

	"github.com/overture-music/overture/internal/catalog"
)

// withTracks adds each upload's track (when it has one the catalog still
// holds) to the answers: the track as the catalog admin API's GET
// /v1/admin/tracks/{id} answers it (catalog.TrackView), read from the
// catalog's tables in the database ingestion writes them to in the same
// transaction as the upload record (functions/ingest). The admin console
// edits a fresh upload's draft from it.
func (s *Store) withTracks(ctx context.Context, ans []UploadAnswer) error {
	var ids []string
	for _, a := range ans {
		if a.TrackID != "" {
			ids = append(ids, a.TrackID)
		}
	}
	ts, err := catalog.LoadTracks(ctx, s.Pool, ids)
	if err != nil {
		return fmt.Errorf("load tracks of uploads: %w", err)
	}
	for i := range ans {
		if t, ok := ts[ans[i].TrackID]; ok {
			ans[i].Track = &t
		}
	}
	return nil
}
