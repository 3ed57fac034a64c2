package catalog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/problem"
)

// Paging of GET /v1/admin/tracks.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	maxQuery     = 200 // characters of q
)

// TrackView is a track as the catalog has it now, drafts included, with
// its album, artists, genre and renditions spelled out: what the admin
// console shows and edits (through PATCH of the track, its album and its
// artists). GET /v1/admin/tracks[/{id}] answer it, and the ingest admin API
// adds it to each upload (LoadTracks). The writes answer Track, the row
// with ids.
type TrackView struct {
	ID          string             `json:"id"`
	Title       string             `json:"title"`
	State       string             `json:"state"`
	Explicit    bool               `json:"explicit"`
	Position    *int               `json:"position,omitempty"`
	DurationMS  *int               `json:"duration_ms,omitempty"`
	PublishedAt *time.Time         `json:"published_at,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
	Album       *TrackAlbum        `json:"album,omitempty"`
	Artists     []TrackArtist      `json:"artists"`
	Genre       *TrackGenre        `json:"genre,omitempty"`
	Renditions  []RenditionSummary `json:"renditions"`
}

// TrackAlbum is the album of a TrackView.
type TrackAlbum struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	ReleaseYear *int   `json:"release_year,omitempty"`
}

// TrackArtist is one artist of a TrackView, in credit order. Bio is left
// out of list pages (GET the track for it): a biography may be 100,000
// characters.
type TrackArtist struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Country *string `json:"country,omitempty"`
	Bio     *string `json:"bio,omitempty"`
}

// TrackGenre is the genre of a TrackView.
type TrackGenre struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// RenditionSummary is one rendition of a TrackView: its kind, whether it
// is premium, and its size when known (the storage key is in Track).
type RenditionSummary struct {
	Kind    string `json:"kind"`
	Premium bool   `json:"premium"`
	Bytes   *int64 `json:"bytes,omitempty"`
}

// Querier is what the reads need of a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// viewSQL selects TrackViews from track t; $1 says whether artists' bios
// are included.
const viewSQL = `
SELECT t.id::text, t.title, t.state, t.explicit, t.position, t.duration_ms, t.published_at, t.created_at, t.updated_at,
       al.id::text, al.title, al.release_year, g.id, g.name,
       coalesce((SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'country', a.country,
                                                   'bio', CASE WHEN $1::bool THEN a.bio END) ORDER BY ta.position, a.id)
                   FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
                  WHERE ta.track_id = t.id), '[]'::json),
       coalesce((SELECT json_agg(json_build_object('kind', r.kind, 'premium', r.premium, 'bytes', r.bytes) ORDER BY r.kind)
                   FROM track_rendition r WHERE r.track_id = t.id), '[]'::json)
  FROM track t LEFT JOIN album al ON al.id = t.album_id LEFT JOIN genre g ON g.id = t.genre_id`

// views runs viewSQL with the rest of the query (WHERE, ORDER BY…) and
// its arguments from $2 on.
func views(ctx context.Context, q Querier, bios bool, rest string, args ...any) ([]TrackView, error) {
	rows, err := q.Query(ctx, viewSQL+"\n"+rest, append([]any{bios}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read tracks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (TrackView, error) {
		var (
			t                  TrackView
			albumID, albumName *string
			year               *int
			genreID, genreName *string
		)
		err := row.Scan(&t.ID, &t.Title, &t.State, &t.Explicit, &t.Position, &t.DurationMS, &t.PublishedAt, &t.CreatedAt, &t.UpdatedAt,
			&albumID, &albumName, &year, &genreID, &genreName, &t.Artists, &t.Renditions)
		if err != nil {
			return t, err
		}
		if albumID != nil {
			t.Album = &TrackAlbum{ID: *albumID, Title: *albumName, ReleaseYear: year}
		}
		if genreID != nil {
			t.Genre = &TrackGenre{ID: *genreID, Name: *genreName}
		}
		return t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tracks: %w", err)
	}
	return out, nil
}

// LoadTracks returns the catalog's tracks among ids by id, with the
// artists' bios; ids the catalog does not hold (deleted tracks) are
// missing. The ingest admin API answers each upload's track with it.
func LoadTracks(ctx context.Context, q Querier, ids []string) (map[string]TrackView, error) {
	out := map[string]TrackView{}
	if len(ids) == 0 {
		return out, nil
	}
	vs, err := views(ctx, q, true, `WHERE t.id = ANY($2::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		out[v.ID] = v
	}
	return out, nil
}

// TrackPage is GET /v1/admin/tracks.
type TrackPage struct {
	Tracks []TrackView `json:"tracks"`
	// Next is the cursor of the following page (pass it as before=);
	// absent on the last page.
	Next string `json:"next,omitempty"`
}

// trackStates are the values of a track's state, the list's filter.
var trackStates = []string{"draft", "published", "unpublished"}

// cursor is the position after the last track of a page: tracks are
// listed newest first, (created_at, id) descending.
type cursor struct {
	created time.Time
	id      string
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.created.UTC().Format(time.RFC3339Nano) + " " + c.id))
}

func parseCursor(s string) (cursor, error) {
	bad := problem.BadRequest("before: " + strconv.Quote(s) + " is not a cursor this API gave out (the next of a page)")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	at, id, ok := strings.Cut(string(raw), " ")
	created, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || uuid.Validate(id) != nil {
		return cursor{}, bad
	}
	return cursor{created: created, id: id}, nil
}

// likePattern matches text containing s, with LIKE's wildcards in s
// taken literally.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// listTracks is GET /v1/admin/tracks?q=&state=&limit=&before=: tracks in
// every state, newest first; q matches part of the title or of an
// artist's name, case-insensitively.
func (s *Service) listTracks(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	if err := problem.Params(qs, "q", "state", "limit", "before"); err != nil {
		return err
	}
	text, err := problem.Param(qs, "q")
	if err != nil {
		return err
	}
	text = strings.TrimSpace(text)
	if !utf8.ValidString(text) || utf8.RuneCountInString(text) > maxQuery || strings.ContainsRune(text, 0) {
		return problem.BadRequest(fmt.Sprintf("q: at most %d characters of text", maxQuery))
	}
	state, err := problem.Param(qs, "state")
	if err != nil {
		return err
	}
	if state != "" && !slices.Contains(trackStates, state) {
		return problem.BadRequest("state: " + strconv.Quote(state) + " is not one of " + strings.Join(trackStates, ", "))
	}
	limit := DefaultLimit
	if v, err := problem.Param(qs, "limit"); err != nil {
		return err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return problem.BadRequest(fmt.Sprintf("limit: %q is not a whole number from 1 to %d", v, MaxLimit))
		}
		limit = n
	}
	var after *cursor
	if v, err := problem.Param(qs, "before"); err != nil {
		return err
	} else if v != "" {
		c, err := parseCursor(v)
		if err != nil {
			return err
		}
		after = &c
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)+1) // $1 is viewSQL's
	}
	if text != "" {
		p := arg(likePattern(text))
		where = append(where, `(t.title ILIKE `+p+` OR EXISTS (SELECT 1 FROM track_artist ta JOIN artist a ON a.id = ta.artist_id
  WHERE ta.track_id = t.id AND a.name ILIKE `+p+`))`)
	}
	if state != "" {
		where = append(where, `t.state = `+arg(state))
	}
	if after != nil {
		where = append(where, `(t.created_at, t.id) < (`+arg(after.created)+`, `+arg(after.id)+`::uuid)`)
	}
	rest := ""
	if len(where) > 0 {
		rest = "WHERE " + strings.Join(where, " AND ") + "\n"
	}
	rest += "ORDER BY t.created_at DESC, t.id DESC LIMIT " + arg(limit+1)
	vs, err := views(r.Context(), s.Pool, false, rest, args...)
	if err != nil {
		return err
	}
	page := TrackPage{Tracks: append([]TrackView{}, vs...)}
	if len(page.Tracks) > limit {
		page.Tracks = page.Tracks[:limit]
		last := page.Tracks[limit-1]
		page.Next = cursor{created: last.CreatedAt, id: last.ID}.String()
	}
	return writeJSON(w, page)
}

// getTrack is GET /v1/admin/tracks/{id}.
func (s *Service) getTrack(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "track")
	if err != nil {
		return err
	}
	vs, err := views(r.Context(), s.Pool, true, `WHERE t.id = $2`, id)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return notFound("track", id)
	}
	return writeJSON(w, vs[0])
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(v)
}

// getRow answers GET of a plain row (an artist or an album) as its writes
// answer it.
func getRow[T any](e entity[T], s *Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, e.table)
		if err != nil {
			return err
		}
		v, err := e.scan(s.Pool.QueryRow(r.Context(), `SELECT `+selectCols[e.table]+` FROM `+e.table+` WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(e.table, id)
		}
		if err != nil {
			return fmt.Errorf("read %s %s: %w", e.table, id, err)
		}
		return writeJSON(w, v)
	}
}
