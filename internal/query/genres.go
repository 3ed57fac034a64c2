package query

import (
	"context"
	"net/http"

	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/hotcache"
)

// Genres is the body of GET /v1/genres.
type Genres struct {
	Genres []search.GenreCount `json:"genres"`
}

// genres is GET /v1/genres: every genre that published tracks carry, with
// how many, sorted by name (then id), from the read model's aggregation
// (search.Store.Genres). Any applied change may publish, unpublish or move a
// track, so the cached list follows the generation every applied batch
// bumps (hotcache.Search), like search pages.
func (s *Service) genres(ctx context.Context, r *http.Request) (answer, error) {
	for k := range r.URL.Query() {
		if k != "after" {
			return answer{}, badParam{k, "unknown (GET /v1/genres takes only after)"}
		}
	}
	g, outcome, err := hotcache.Get(ctx, s.cache, "genres", []string{hotcache.Search}, func(ctx context.Context) (Genres, error) {
		gs, err := s.store.Genres(ctx)
		if gs == nil {
			gs = []search.GenreCount{}
		}
		return Genres{Genres: gs}, err
	})
	if err != nil {
		return answer{}, err
	}
	return answer{g, outcome}, nil
}
