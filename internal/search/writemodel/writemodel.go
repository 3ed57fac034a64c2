// Package writemodel reads track documents from the catalog's write model
// (PostgreSQL). The indexer fetches the current rows of the tracks a change
// touched rather than trusting the change's own payload ("fetch on change"):
// the document it writes is then always at least as new as the change that
// triggered it, whatever order changes arrive in, and an album or artist
// rename reaches every track that carries its name. Reindex uses the same
// query to copy the whole catalog.
package writemodel

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/search"
)

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const docSelect = `
SELECT t.id::text, t.title, t.state, coalesce(t.duration_ms, 0), t.popularity, t.explicit, t.published_at,
       al.id::text, al.title, al.release_year, g.id, g.name,
       coalesce((SELECT json_agg(json_build_object('id', a.id::text, 'name', a.name) ORDER BY ta.position, a.name)
                   FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                  WHERE ta.track_id = t.id), '[]'::json),
       coalesce((SELECT array_agg(r.kind ORDER BY r.kind) FROM track_rendition r WHERE r.track_id = t.id), '{}'::text[])
  FROM track t
  LEFT JOIN album al ON al.id = t.album_id
  LEFT JOIN genre g ON g.id = t.genre_id`

func scanDocs(rows pgx.Rows, fn func(search.Track, bool)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			t             search.Track
			state         string
			published     *time.Time
			alID, alTitle *string
			alYear        *int32
			gID, gName    *string
			artists       []byte
			renditions    []string
		)
		if err := rows.Scan(&t.ID, &t.Title, &state, &t.DurationMS, &t.Popularity, &t.Explicit, &published,
			&alID, &alTitle, &alYear, &gID, &gName, &artists, &renditions); err != nil {
			return fmt.Errorf("read track row: %w", err)
		}
		if published != nil {
			t.PublishedAt = published.UTC()
		}
		if alID != nil {
			t.Album = &search.Album{ID: *alID, Title: deref(alTitle)}
			if alYear != nil {
				t.Album.Year = int(*alYear)
			}
		}
		if gID != nil {
			t.Genre = &search.Genre{ID: *gID, Name: deref(gName)}
		}
		if err := json.Unmarshal(artists, &t.Artists); err != nil {
			return fmt.Errorf("track %s artists: %w", t.ID, err)
		}
		t.Renditions = renditions
		if t.Renditions == nil {
			t.Renditions = []string{}
		}
		fn(t, state == "published")
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read track rows: %w", err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Load returns the current documents of the published tracks among ids; a
// track missing from the result is deleted, unpublished or still a draft.
func Load(ctx context.Context, q Querier, ids []string) (map[string]search.Track, error) {
	out := make(map[string]search.Track, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, docSelect+` WHERE t.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d tracks: %w", len(ids), err)
	}
	err = scanDocs(rows, func(t search.Track, published bool) {
		if published {
			out[t.ID] = t
		}
	})
	return out, err
}

// TracksOf returns the ids of the tracks whose document carries the row
// (table, id) of a parent table: an album, an artist or a genre.
func TracksOf(ctx context.Context, q Querier, table, id string) ([]string, error) {
	var sql string
	switch table {
	case "album":
		sql = `SELECT id::text FROM track WHERE album_id = $1::uuid`
	case "artist":
		sql = `SELECT track_id::text FROM track_artist WHERE artist_id = $1::uuid`
	case "genre":
		sql = `SELECT id::text FROM track WHERE genre_id = $1`
	default:
		return nil, fmt.Errorf("tracks of %s: not a parent table", table)
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return nil, fmt.Errorf("tracks of %s %s: %w", table, id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("tracks of %s %s: %w", table, id, err)
	}
	return ids, nil
}

// Scan calls fn with every published track, page by page in id order. Run it
// in a REPEATABLE READ transaction to see one consistent snapshot.
func Scan(ctx context.Context, q Querier, page int, fn func([]search.Track) error) error {
	after := "00000000-0000-0000-0000-000000000000"
	for {
		rows, err := q.Query(ctx, docSelect+` WHERE t.state = 'published' AND t.id > $1::uuid ORDER BY t.id LIMIT $2`, after, page)
		if err != nil {
			return fmt.Errorf("scan tracks after %s: %w", after, err)
		}
		var docs []search.Track
		if err := scanDocs(rows, func(t search.Track, _ bool) { docs = append(docs, t) }); err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		if err := fn(docs); err != nil {
			return err
		}
		after = docs[len(docs)-1].ID
	}
}
