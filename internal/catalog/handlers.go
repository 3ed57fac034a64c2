package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
)

var artistFields = []field{
	{name: "name", kind: kText, required: true, min: 1, max: 300, visible: true},
	{name: "country", kind: kText, nullable: true, pattern: countryRE, hint: "an ISO 3166-1 alpha-2 code such as \"RU\""},
	{name: "bio", kind: kText, nullable: true, max: 100_000},
}

var albumFields = []field{
	{name: "title", kind: kText, required: true, min: 1, max: 500, visible: true},
	{name: "artist_id", kind: kUUID, required: true},
	{name: "release_year", kind: kInt, nullable: true, min: 1860, max: 2100},
	{name: "cover_key", kind: kText, nullable: true, min: 1, max: maxObjectKey, key: true},
}

var trackFields = []field{
	{name: "title", kind: kText, required: true, min: 1, max: 500, visible: true},
	{name: "album_id", kind: kUUID, nullable: true},
	{name: "genre_id", kind: kText, nullable: true, pattern: slugRE, hint: "a genre slug such as \"post-punk\""},
	{name: "position", kind: kInt, nullable: true, min: 1, max: 10_000},
	{name: "duration_ms", kind: kInt, nullable: true, min: 1, max: 24 * 3600 * 1000},
	{name: "explicit", kind: kBool},
	{name: "lyrics", kind: kText, nullable: true, max: 200_000},
}

// write runs fn in a transaction, writes the events it returns into the
// outbox in the same transaction, and answers status with body and the
// consistency token read after the commit.
func (s *Service) write(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, tx pgx.Tx) (status int, body any, events []event.Event, err error)) error {
	ctx := r.Context()
	var (
		status int
		body   any
	)
	err := postgres.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		var events []event.Event
		var err error
		status, body, events, err = fn(ctx, tx)
		if err != nil {
			return err
		}
		return outbox.Write(ctx, tx, events...)
	})
	if err != nil {
		return mapDBError(err)
	}
	// The token must be at or past this transaction's commit record.
	// pg_current_wal_lsn() (the write position) can lag behind a commit that
	// was acknowledged with synchronous_commit=off; the insert position
	// cannot, so it is the one read here.
	var pos string
	if err := s.Pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&pos); err != nil {
		return fmt.Errorf("read consistency token: %w", err)
	}
	v, err := lsn.ParseToken(pos)
	if err != nil {
		return fmt.Errorf("read consistency token: %w", err)
	}
	w.Header().Set(HeaderConsistencyToken, lsn.FormatToken(v))
	w.Header().Set("Cache-Control", "no-store")
	if body == nil {
		w.WriteHeader(status)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(body)
}

// mapDBError turns constraint violations that slipped past validation (a
// concurrent delete of a referenced row) into specific problems.
func mapDBError(err error) error {
	var p *problem.Problem
	if errors.As(err, &p) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23503":
			return conflict("a referenced row was changed concurrently (" + pe.ConstraintName + "); retry")
		case "23505":
			return conflict("already exists (" + pe.ConstraintName + ")")
		case "40001", "40P01":
			return problem.New(http.StatusServiceUnavailable, "retry", "a concurrent write conflicted; retry")
		}
	}
	return err
}

func newEvent(typ, key string, data any) (event.Event, error) {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetType(typ)
	e.SetSource(Source)
	e.SetTime(time.Now())
	e.SetExtension("partitionkey", key)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("encode %s: %w", typ, err)
	}
	return e, nil
}

// optionalID reads an optional client-chosen "id" (idempotent creation by
// tools); absent means a new UUID.
func optionalID(obj map[string]json.RawMessage, errs map[string]string) string {
	raw, ok := obj["id"]
	if !ok {
		return uuid.NewString()
	}
	v, msg := field{name: "id", kind: kUUID}.parse(raw)
	if msg != "" {
		errs["id"] = msg
		return ""
	}
	return v.(string)
}

// request is a parsed create or update body.
type request struct {
	id   string
	obj  map[string]json.RawMessage
	cols columns
	errs map[string]string // field → problem, reported together
}

// createRequest reads a create body: an optional client "id" and fields;
// extra names body members the handler parses itself.
func createRequest(r *http.Request, fields []field, extra ...string) (request, error) {
	obj, err := readObject(r)
	if err != nil {
		return request{}, err
	}
	q := request{obj: obj, errs: map[string]string{}}
	q.id = optionalID(obj, q.errs)
	q.cols = parse(obj, fields, true, append([]string{"id"}, extra...), q.errs)
	return q, nil
}

// updateRequest reads an update of the entity the path names.
func updateRequest(r *http.Request, entity string, fields []field, extra ...string) (request, error) {
	id, err := pathID(r, entity)
	if err != nil {
		return request{}, err
	}
	obj, err := readObject(r)
	if err != nil {
		return request{}, err
	}
	q := request{id: id, obj: obj, errs: map[string]string{}}
	q.cols = parse(obj, fields, false, extra, q.errs)
	return q, nil
}

// check reports the body's problems: 422 with every field's, or 400 when an
// update changes nothing (empty), naming what it could send.
func (q request) check(empty bool, could string) error {
	if empty && len(q.errs) == 0 {
		return problem.BadRequest("the body changes nothing; send at least one of " + could)
	}
	return validation(q.errs)
}

// insertNew inserts the row of a create request, refusing an id in use.
func insertNew(ctx context.Context, tx pgx.Tx, table, what string, q request) (pgx.Row, error) {
	if ok, err := exists(ctx, tx, table, q.id); err != nil || ok {
		return nil, cmpErr(err, conflict(what+" with id "+q.id+" already exists"))
	}
	sql, args := insertSQL(table, q.id, q.cols)
	return tx.QueryRow(ctx, sql, args...), nil
}

// updateRow applies the columns of an update request; scan reads the row.
func updateRow[T any](ctx context.Context, tx pgx.Tx, table string, q request, scan func(pgx.Row) (T, error)) (T, error) {
	sql, args := updateSQL(table, q.id, q.cols)
	v, err := scan(tx.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, notFound(table, q.id)
	}
	if err != nil {
		return v, fmt.Errorf("update %s: %w", table, err)
	}
	return v, nil
}

func insertSQL(table, id string, c columns) (string, []any) {
	names := append([]string{"id"}, c.names...)
	args := append([]any{id}, c.values...)
	ph := make([]string, len(names))
	for i := range names {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ") RETURNING " + selectCols[table], args
}

func updateSQL(table, id string, c columns) (string, []any) {
	set := make([]string, 0, len(c.names)+1)
	args := make([]any, 0, len(c.names)+1)
	for i, n := range c.names {
		args = append(args, c.values[i])
		set = append(set, n+" = $"+strconv.Itoa(len(args)))
	}
	set = append(set, "updated_at = now()")
	args = append(args, id)
	return "UPDATE " + table + " SET " + strings.Join(set, ", ") + " WHERE id = $" + strconv.Itoa(len(args)) + " RETURNING " + selectCols[table], args
}

var selectCols = map[string]string{
	"artist": "id::text, name, country, bio, created_at, updated_at",
	"album":  "id::text, title, artist_id::text, release_year, cover_key, created_at, updated_at",
	"track":  "id::text, title, album_id::text, genre_id, position, duration_ms, explicit, lyrics, popularity, state, published_at, created_at, updated_at",
}

// entity is what the create, update and delete handlers of a plain catalog
// row (an artist or an album: one table, no child rows) need to know of it.
type entity[T any] struct {
	table, what string // "album", "an album"
	fields      []field
	updatable   string // what an update that changes nothing is told it could send
	scan        func(pgx.Row) (T, error)
	// created, updated and deleted are the event types; data is their data.
	created, updated, deleted string
	data                      func(id string, v T) any
	// inUse refuses (409) to delete a row that others still reference.
	inUse func(ctx context.Context, tx pgx.Tx, id string) error
}

var artistEntity = entity[Artist]{
	table: "artist", what: "an artist", fields: artistFields, updatable: "name, country, bio", scan: scanArtist,
	created: eventtype.ArtistCreated, updated: eventtype.ArtistUpdated, deleted: eventtype.ArtistDeleted,
	data: func(id string, a Artist) any { return eventtype.ArtistData{ArtistID: id, Name: a.Name} },
	inUse: func(ctx context.Context, tx pgx.Tx, id string) error {
		var albums, tracks int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM album WHERE artist_id = $1), (SELECT count(*) FROM track_artist WHERE artist_id = $1)`, id).Scan(&albums, &tracks); err != nil {
			return fmt.Errorf("count artist references: %w", err)
		}
		if albums > 0 || tracks > 0 {
			return conflict(fmt.Sprintf("artist %s still has %d albums and %d tracks; delete or reassign them first", id, albums, tracks))
		}
		return nil
	},
}

var albumEntity = entity[Album]{
	table: "album", what: "an album", fields: albumFields, updatable: "title, artist_id, release_year, cover_key", scan: scanAlbum,
	created: eventtype.AlbumCreated, updated: eventtype.AlbumUpdated, deleted: eventtype.AlbumDeleted,
	data: func(id string, a Album) any {
		return eventtype.AlbumData{AlbumID: id, Title: a.Title, ArtistID: a.ArtistID}
	},
	inUse: func(ctx context.Context, tx pgx.Tx, id string) error {
		var tracks int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM track WHERE album_id = $1`, id).Scan(&tracks); err != nil {
			return fmt.Errorf("count album tracks: %w", err)
		}
		if tracks > 0 {
			return conflict(fmt.Sprintf("album %s still has %d tracks; delete them or move them to another album first", id, tracks))
		}
		return nil
	},
}

// create handles POST of a new row: its references must exist and its id
// must be unused.
func (e entity[T]) create(s *Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := createRequest(r, e.fields)
		if err != nil {
			return err
		}
		if err := q.check(false, ""); err != nil {
			return err
		}
		return s.write(w, r, func(ctx context.Context, tx pgx.Tx) (int, any, []event.Event, error) {
			if err := checkRefs(ctx, tx, q.cols); err != nil {
				return 0, nil, nil, err
			}
			row, err := insertNew(ctx, tx, e.table, e.what, q)
			if err != nil {
				return 0, nil, nil, err
			}
			v, err := e.scan(row)
			if err != nil {
				return 0, nil, nil, fmt.Errorf("insert %s: %w", e.table, err)
			}
			ev, err := newEvent(e.created, e.table+":"+q.id, e.data(q.id, v))
			return http.StatusCreated, v, []event.Event{ev}, err
		})
	}
}

// update handles PATCH of the row the path names.
func (e entity[T]) update(s *Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := updateRequest(r, e.table, e.fields)
		if err != nil {
			return err
		}
		if err := q.check(len(q.cols.names) == 0, e.updatable); err != nil {
			return err
		}
		return s.write(w, r, func(ctx context.Context, tx pgx.Tx) (int, any, []event.Event, error) {
			if err := checkRefs(ctx, tx, q.cols); err != nil {
				return 0, nil, nil, err
			}
			v, err := updateRow(ctx, tx, e.table, q, e.scan)
			if err != nil {
				return 0, nil, nil, err
			}
			ev, err := newEvent(e.updated, e.table+":"+q.id, e.data(q.id, v))
			return http.StatusOK, v, []event.Event{ev}, err
		})
	}
}

// remove handles DELETE of the row the path names, unless it is in use.
func (e entity[T]) remove(s *Service) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, e.table)
		if err != nil {
			return err
		}
		return s.write(w, r, func(ctx context.Context, tx pgx.Tx) (int, any, []event.Event, error) {
			v, err := e.scan(tx.QueryRow(ctx, `SELECT `+selectCols[e.table]+` FROM `+e.table+` WHERE id = $1 FOR UPDATE`, id))
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, nil, nil, notFound(e.table, id)
			}
			if err != nil {
				return 0, nil, nil, fmt.Errorf("lock %s: %w", e.table, err)
			}
			if err := e.inUse(ctx, tx, id); err != nil {
				return 0, nil, nil, err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+e.table+` WHERE id = $1`, id); err != nil {
				return 0, nil, nil, fmt.Errorf("delete %s: %w", e.table, err)
			}
			ev, err := newEvent(e.deleted, e.table+":"+id, e.data(id, v))
			return http.StatusNoContent, nil, []event.Event{ev}, err
		})
	}
}

// Artist is an artist as the admin API shows it.
type Artist struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Country   *string   `json:"country"`
	Bio       *string   `json:"bio"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func scanArtist(row pgx.Row) (Artist, error) {
	var a Artist
	err := row.Scan(&a.ID, &a.Name, &a.Country, &a.Bio, &a.CreatedAt, &a.UpdatedAt)
	return a, err
}

func exists(ctx context.Context, tx pgx.Tx, table, id string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE id = $1)", id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up %s %s: %w", table, id, err)
	}
	return ok, nil
}

// cmpErr returns err if set, else p.
func cmpErr(err error, p *problem.Problem) error {
	if err != nil {
		return err
	}
	return p
}

// Album is an album as the admin API shows it.
type Album struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	ArtistID    string    `json:"artist_id"`
	ReleaseYear *int32    `json:"release_year"`
	CoverKey    *string   `json:"cover_key"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func scanAlbum(row pgx.Row) (Album, error) {
	var a Album
	err := row.Scan(&a.ID, &a.Title, &a.ArtistID, &a.ReleaseYear, &a.CoverKey, &a.CreatedAt, &a.UpdatedAt)
	return a, err
}

// checkRefs reports missing referenced rows as field errors.
func checkRefs(ctx context.Context, tx pgx.Tx, c columns) error {
	errs := map[string]string{}
	for col, table := range map[string]string{"artist_id": "artist", "album_id": "album", "genre_id": "genre"} {
		v, ok := c.get(col)
		if !ok || v == nil {
			continue
		}
		found, err := exists(ctx, tx, table, v.(string))
		if err != nil {
			return err
		}
		if !found {
			errs[col] = "no " + table + " with this id"
		}
	}
	return validation(errs)
}

// Track is a track as the admin API shows it.
type Track struct {
	ID          string                `json:"id"`
	Title       string                `json:"title"`
	AlbumID     *string               `json:"album_id"`
	GenreID     *string               `json:"genre_id"`
	Position    *int32                `json:"position"`
	DurationMS  *int32                `json:"duration_ms"`
	Explicit    bool                  `json:"explicit"`
	Lyrics      *string               `json:"lyrics"`
	Popularity  int64                 `json:"popularity"`
	State       string                `json:"state"`
	PublishedAt *time.Time            `json:"published_at"`
	CreatedAt   time.Time             `json:"created_at"`
	UpdatedAt   time.Time             `json:"updated_at"`
	ArtistIDs   []string              `json:"artist_ids"`
	Renditions  []eventtype.Rendition `json:"renditions"`
}

// loadTrack reads a track with its artists and renditions; lock takes a row
// lock for a state transition.
// scanTrack reads the track columns of selectCols (artists and renditions
// are loaded separately).
func scanTrack(row pgx.Row) (Track, error) {
	var t Track
	err := row.Scan(&t.ID, &t.Title, &t.AlbumID, &t.GenreID, &t.Position, &t.DurationMS, &t.Explicit, &t.Lyrics, &t.Popularity, &t.State, &t.PublishedAt, &t.CreatedAt, &t.UpdatedAt)
	return t, err
}

func loadTrack(ctx context.Context, tx pgx.Tx, id string, lock bool) (Track, error) {
	q := `SELECT ` + selectCols["track"] + ` FROM track WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	t, err := scanTrack(tx.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, notFound("track", id)
	}
	if err != nil {
		return t, fmt.Errorf("load track %s: %w", id, err)
	}
	rows, err := tx.Query(ctx, `SELECT artist_id::text FROM track_artist WHERE track_id = $1 ORDER BY position, artist_id`, id)
	if err != nil {
		return t, fmt.Errorf("load track artists: %w", err)
	}
	t.ArtistIDs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return t, fmt.Errorf("load track artists: %w", err)
	}
	if t.Renditions, err = loadRenditions(ctx, tx, id); err != nil {
		return t, err
	}
	return t, nil
}

func loadRenditions(ctx context.Context, tx pgx.Tx, id string) ([]eventtype.Rendition, error) {
	rows, err := tx.Query(ctx, `SELECT kind, storage_key, premium FROM track_rendition WHERE track_id = $1 ORDER BY kind`, id)
	if err != nil {
		return nil, fmt.Errorf("load renditions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventtype.Rendition, error) {
		var r eventtype.Rendition
		err := row.Scan(&r.Kind, &r.StorageKey, &r.Premium)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("load renditions: %w", err)
	}
	return out, nil
}

func (t Track) data() eventtype.TrackData {
	d := eventtype.TrackData{TrackID: t.ID, Title: t.Title, ArtistIDs: t.ArtistIDs, Renditions: t.Renditions}
	if t.AlbumID != nil {
		d.AlbumID = *t.AlbumID
	}
	return d
}

// setArtists replaces a track's artists, checking they exist.
func setArtists(ctx context.Context, tx pgx.Tx, id string, artists []string) error {
	if len(artists) > 0 {
		var found []string
		if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(id::text), '{}') FROM artist WHERE id = ANY($1::uuid[])`, artists).Scan(&found); err != nil {
			return fmt.Errorf("look up artists: %w", err)
		}
		var missing []string
		for _, a := range artists {
			if !slices.Contains(found, a) {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			return problem.Validation(map[string]string{"artist_ids": "no artist with id " + strings.Join(missing, ", ")})
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM track_artist WHERE track_id = $1 AND NOT (artist_id = ANY($2::uuid[]))`, id, artists); err != nil {
		return fmt.Errorf("remove track artists: %w", err)
	}
	for i, a := range artists {
		if _, err := tx.Exec(ctx, `INSERT INTO track_artist (track_id, artist_id, position) VALUES ($1, $2, $3)
			ON CONFLICT (track_id, artist_id) DO UPDATE SET position = EXCLUDED.position WHERE track_artist.position <> EXCLUDED.position`, id, a, i); err != nil {
			return fmt.Errorf("add track artist: %w", err)
		}
	}
	return nil
}

func parseArtists(obj map[string]json.RawMessage, errs map[string]string) ([]string, bool) {
	raw, ok := obj["artist_ids"]
	if !ok {
		return nil, false
	}
	ids, msg := parseUUIDList(raw)
	if msg != "" {
		errs["artist_ids"] = msg
	}
	return ids, true
}

func (s *Service) createTrack(w http.ResponseWriter, r *http.Request) error {
	q, err := createRequest(r, trackFields, "artist_ids")
	if err != nil {
		return err
	}
	artists, _ := parseArtists(q.obj, q.errs)
	if err := q.check(false, ""); err != nil {
		return err
	}
	id := q.id
	return s.write(w, r, func(ctx context.Context, tx pgx.Tx) (int, any, []event.Event, error) {
		if err := checkRefs(ctx, tx, q.cols); err != nil {
			return 0, nil, nil, err
		}
		row, err := insertNew(ctx, tx, "track", "a track", q)
		if err != nil {
			return 0, nil, nil, err
		}
		if _, err := scanTrack(row); err != nil {
			return 0, nil, nil, fmt.Errorf("insert track: %w", err)
		}
		if err := setArtists(ctx, tx, id, artists); err != nil {
			return 0, nil, nil, err
		}
		return trackAnswer(ctx, tx, id, eventtype.TrackCreated, http.StatusCreated)
	})
}

func (s *Service) updateTrack(w http.ResponseWriter, r *http.Request) error {
	q, err := updateRequest(r, "track", trackFields, "artist_ids")
	if err != nil {
		return err
	}
	artists, setA := parseArtists(q.obj, q.errs)
	if err := q.check(len(q.cols.names) == 0 && !setA, "the track fields or artist_ids"); err != nil {
		return err
	}
	id, c := q.id, q.cols
	return s.changeTrack(w, r, id, func(ctx context.Context, tx pgx.Tx, cur Track) (int, any, []event.Event, error) {
		if err := checkRefs(ctx, tx, c); err != nil {
			return 0, nil, nil, err
		}
		if setA && len(artists) == 0 && cur.State == "published" {
			return 0, nil, nil, conflict("a published track must keep at least one artist; unpublish it first")
		}
		if len(c.names) > 0 {
			q, args := updateSQL("track", id, c)
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return 0, nil, nil, fmt.Errorf("update track: %w", err)
			}
		} else if _, err := tx.Exec(ctx, `UPDATE track SET updated_at = now() WHERE id = $1`, id); err != nil {
			return 0, nil, nil, fmt.Errorf("touch track: %w", err)
		}
		if setA {
			if err := setArtists(ctx, tx, id, artists); err != nil {
				return 0, nil, nil, err
			}
		}
		return trackAnswer(ctx, tx, id, eventtype.TrackUpdated, http.StatusOK)
	})
}

func (s *Service) deleteTrack(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "track")
	if err != nil {
		return err
	}
	return s.changeTrack(w, r, id, func(ctx context.Context, tx pgx.Tx, t Track) (int, any, []event.Event, error) {
		if _, err := tx.Exec(ctx, `DELETE FROM track WHERE id = $1`, id); err != nil {
			return 0, nil, nil, fmt.Errorf("delete track: %w", err)
		}
		e, err := newEvent(eventtype.TrackDeleted, "track:"+id, t.data())
		return http.StatusNoContent, nil, []event.Event{e}, err
	})
}

func (s *Service) publishTrack(w http.ResponseWriter, r *http.Request) error {
	return s.moveTrack(w, r, eventtype.TrackPublished, `state = 'published', published_at = now()`, func(id string, t Track) error {
		switch {
		case t.State == "published":
			return conflict("track " + id + " is already published")
		case len(t.Renditions) == 0:
			return conflict("track " + id + " has no renditions; upload its audio (PUT /v1/admin/tracks/" + id + "/renditions) before publishing")
		case len(t.ArtistIDs) == 0:
			return conflict("track " + id + " has no artist; set artist_ids before publishing")
		}
		return nil
	})
}

func (s *Service) unpublishTrack(w http.ResponseWriter, r *http.Request) error {
	return s.moveTrack(w, r, eventtype.TrackUnpublished, `state = 'unpublished'`, func(id string, t Track) error {
		if t.State != "published" {
			return conflict("track " + id + " is " + t.State + ", not published")
		}
		return nil
	})
}

// moveTrack changes the state of the track the path names: it locks the row,
// asks allowed (a 409 when the transition is illegal), applies set and
// announces the result as evType.
func (s *Service) moveTrack(w http.ResponseWriter, r *http.Request, evType, set string, allowed func(id string, t Track) error) error {
	id, err := pathID(r, "track")
	if err != nil {
		return err
	}
	return s.changeTrack(w, r, id, func(ctx context.Context, tx pgx.Tx, t Track) (int, any, []event.Event, error) {
		if err := allowed(id, t); err != nil {
			return 0, nil, nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE track SET `+set+`, updated_at = now() WHERE id = $1`, id); err != nil {
			return 0, nil, nil, fmt.Errorf("change state of track %s: %w", id, err)
		}
		return trackAnswer(ctx, tx, id, evType, http.StatusOK)
	})
}

// changeTrack runs fn in one write on the track id names, read and locked
// for update (a 404 when there is none).
func (s *Service) changeTrack(w http.ResponseWriter, r *http.Request, id string, fn func(ctx context.Context, tx pgx.Tx, t Track) (int, any, []event.Event, error)) error {
	return s.write(w, r, func(ctx context.Context, tx pgx.Tx) (int, any, []event.Event, error) {
		t, err := loadTrack(ctx, tx, id, true)
		if err != nil {
			return 0, nil, nil, err
		}
		return fn(ctx, tx, t)
	})
}

// trackAnswer reloads the track a handler changed and answers it, with its
// domain event of type evType.
func trackAnswer(ctx context.Context, tx pgx.Tx, id, evType string, status int) (int, any, []event.Event, error) {
	t, err := loadTrack(ctx, tx, id, false)
	if err != nil {
		return 0, nil, nil, err
	}
	e, err := newEvent(evType, "track:"+id, t.data())
	return status, t, []event.Event{e}, err
}

// RenditionInput is one rendition in PUT /v1/admin/tracks/{id}/renditions.
type RenditionInput struct {
	Kind       string `json:"kind"`
	StorageKey string `json:"storage_key"`
	Premium    bool   `json:"premium"`
	Bytes      *int64 `json:"bytes"`
}

func (s *Service) replaceRenditions(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "track")
	if err != nil {
		return err
	}
	obj, err := readObject(r)
	if err != nil {
		return err
	}
	errs := map[string]string{}
	for k := range obj {
		if k != "renditions" {
			errs[k] = "unknown field"
		}
	}
	var in []RenditionInput
	if raw, ok := obj["renditions"]; !ok {
		errs["renditions"] = "is required (an array, possibly empty)"
	} else if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		errs["renditions"] = "must be an array of {kind, storage_key, premium, bytes}"
	}
	seen := map[string]bool{}
	for i, rd := range in {
		p := fmt.Sprintf("renditions[%d].", i)
		switch {
		case !kindRE.MatchString(rd.Kind) || len(rd.Kind) > 40:
			errs[p+"kind"] = "must be a lower-case kind such as \"hls-aac-128\""
		case seen[rd.Kind]:
			errs[p+"kind"] = "kind " + rd.Kind + " is listed twice"
		}
		seen[rd.Kind] = true
		if msg := checkObjectKey(rd.StorageKey); msg != "" {
			errs[p+"storage_key"] = msg
		}
		if rd.Bytes != nil && *rd.Bytes < 0 {
			errs[p+"bytes"] = "must not be negative"
		}
	}
	if len(in) > 32 {
		errs["renditions"] = "at most 32 renditions"
	}
	if err := validation(errs); err != nil {
		return err
	}
	return s.changeTrack(w, r, id, func(ctx context.Context, tx pgx.Tx, t Track) (int, any, []event.Event, error) {
		if len(in) == 0 && t.State == "published" {
			return 0, nil, nil, conflict("a published track must keep at least one rendition; unpublish it first")
		}
		old := t.Renditions
		if _, err := tx.Exec(ctx, `DELETE FROM track_rendition WHERE track_id = $1`, id); err != nil {
			return 0, nil, nil, fmt.Errorf("remove renditions: %w", err)
		}
		for _, rd := range in {
			if _, err := tx.Exec(ctx, `INSERT INTO track_rendition (track_id, kind, storage_key, premium, bytes) VALUES ($1, $2, $3, $4, $5)`,
				id, rd.Kind, rd.StorageKey, rd.Premium, rd.Bytes); err != nil {
				return 0, nil, nil, fmt.Errorf("add rendition: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE track SET updated_at = now() WHERE id = $1`, id); err != nil {
			return 0, nil, nil, fmt.Errorf("touch track: %w", err)
		}
		t, err := loadTrack(ctx, tx, id, false)
		if err != nil {
			return 0, nil, nil, err
		}
		if old == nil {
			old = []eventtype.Rendition{}
		}
		e, err := newEvent(eventtype.TrackRenditionsReplaced, "track:"+id, eventtype.TrackRenditionsReplacedData{TrackID: id, Old: old, New: orEmpty(t.Renditions)})
		return http.StatusOK, t, []event.Event{e}, err
	})
}

func orEmpty(r []eventtype.Rendition) []eventtype.Rendition {
	if r == nil {
		return []eventtype.Rendition{}
	}
	return r
}

// Genre is a genre as the admin API shows it.
type Genre struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	UpdatedAt time.Time `json:"updated_at"`
}

// putGenre creates or renames a genre. Genres have no domain event: their row
// changes reach the read side through CDC.
func (s *Service) putGenre(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	errs := map[string]string{}
	if !slugRE.MatchString(id) || len(id) > 64 {
		errs["id"] = "must be a genre slug such as \"post-punk\" (lower-case letters, digits, single dashes)"
	}
	obj, err := readObject(r)
	if err != nil {
		return err
	}
	c := parse(obj, []field{{name: "name", kind: kText, required: true, min: 1, max: 100, visible: true}}, true, nil, errs)
	if err := validation(errs); err != nil {
		return err
	}
	name, _ := c.get("name")
	return s.write(w, r, func(ctx context.Context, tx pgx.Tx) (int, any, []event.Event, error) {
		var g Genre
		var inserted bool
		err := tx.QueryRow(ctx, `INSERT INTO genre (id, name) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
			RETURNING id, name, updated_at, (xmax = 0)`, id, name).Scan(&g.ID, &g.Name, &g.UpdatedAt, &inserted)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("upsert genre: %w", err)
		}
		if inserted {
			return http.StatusCreated, g, nil, nil
		}
		return http.StatusOK, g, nil, nil
	})
}
