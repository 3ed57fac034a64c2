package catalog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/search"
)

// This file is the catalog's write path for ingestion (internal/ingest):
// the same rows and the same outbox events as the admin API, called inside
// the ingester's own transaction so that its upload record and the catalog
// change commit together.

// Audio is what ingestion measured about a track's audio.
type Audio struct {
	DurationMS    int
	ISRC          string
	LoudnessLUFS  float64
	LoudnessRange float64
	TruePeakDBTP  float64
	ReplayGainDB  float64
	CoverKey      string // largest cover image, "" when the file had none
	PeaksKey      string // audiowaveform JSON v2
	SourceObject  string // s3://bucket/key#etag
	Renditions    []AudioRendition
}

// AudioRendition is one stored rendition with its codec and bit rate.
type AudioRendition struct {
	Kind       string
	StorageKey string
	Codec      string
	Bitrate    int
	Premium    bool
	Bytes      int64
}

// AudioTrack is a new track made from an upload: names, not ids, for the
// artists and album, which are matched by NameKey or created.
type AudioTrack struct {
	ID          string
	Title       string
	Artists     []string // in order; at least one
	Album       string   // "" for none
	AlbumArtist string   // "" means the first artist
	Year        int
	Position    int
	Genre       string
	Audio       Audio
}

// NameKey is the key artists and albums are matched by: case, ё/е and the
// Latin/Cyrillic spelling folded the way search folds them («Кино», "KINO"
// and "Kino" are one artist).
func NameKey(name string) string { return search.Translit(name) }

// lockKey serialises the creation of one name across concurrent ingests.
func lockKey(ctx context.Context, tx pgx.Tx, kind, key string) error {
	h := fnv.New64a()
	h.Write([]byte("catalog-name:" + kind + ":" + key))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return fmt.Errorf("lock %s name: %w", kind, err)
	}
	return nil
}

// EnsureArtist returns the artist whose name has name's NameKey, creating
// it (with its ArtistCreated event in the outbox) when there is none.
func EnsureArtist(ctx context.Context, tx pgx.Tx, name string) (string, error) {
	name = strings.TrimSpace(name)
	key := NameKey(name)
	if key == "" {
		return "", fmt.Errorf("artist name %q has no letters or digits", name)
	}
	if err := lockKey(ctx, tx, "artist", key); err != nil {
		return "", err
	}
	// NameKey is Go code (search.Translit), so the artists are read and
	// compared here; the advisory lock above keeps two ingests of one new
	// name from creating it twice. See docs/ingest.md on the cost.
	rows, err := tx.Query(ctx, `SELECT id::text, name FROM artist ORDER BY created_at, id`)
	if err != nil {
		return "", fmt.Errorf("look up artist %q: %w", name, err)
	}
	type cand struct{ id, name string }
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var c cand
		err := r.Scan(&c.id, &c.name)
		return c, err
	})
	if err != nil {
		return "", fmt.Errorf("look up artist %q: %w", name, err)
	}
	for _, c := range all {
		if NameKey(c.name) == key {
			return c.id, nil
		}
	}
	id := uuid.NewString()
	if _, err := tx.Exec(ctx, `INSERT INTO artist (id, name) VALUES ($1, $2)`, id, name); err != nil {
		return "", fmt.Errorf("create artist %q: %w", name, err)
	}
	e, err := newEvent(eventtype.ArtistCreated, "artist:"+id, eventtype.ArtistData{ArtistID: id, Name: name})
	if err != nil {
		return "", err
	}
	return id, outbox.Write(ctx, tx, e)
}

// EnsureAlbum returns artistID's album whose title has title's NameKey,
// creating it (AlbumCreated) when there is none; year and coverKey fill in
// what the album lacks.
func EnsureAlbum(ctx context.Context, tx pgx.Tx, title, artistID string, year int, coverKey string) (string, error) {
	title = strings.TrimSpace(title)
	key := NameKey(title)
	if key == "" {
		return "", fmt.Errorf("album title %q has no letters or digits", title)
	}
	if err := lockKey(ctx, tx, "album:"+artistID, key); err != nil {
		return "", err
	}
	rows, err := tx.Query(ctx, `SELECT id::text, title FROM album WHERE artist_id = $1 ORDER BY created_at, id`, artistID)
	if err != nil {
		return "", fmt.Errorf("look up album %q: %w", title, err)
	}
	type cand struct{ id, title string }
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var c cand
		err := r.Scan(&c.id, &c.title)
		return c, err
	})
	if err != nil {
		return "", fmt.Errorf("look up album %q: %w", title, err)
	}
	for _, c := range all {
		if NameKey(c.title) == key {
			return c.id, nil
		}
	}
	id := uuid.NewString()
	if _, err := tx.Exec(ctx, `INSERT INTO album (id, title, artist_id, release_year, cover_key) VALUES ($1, $2, $3, $4, $5)`,
		id, title, artistID, nonZero(year), nonEmpty(coverKey)); err != nil {
		return "", fmt.Errorf("create album %q: %w", title, err)
	}
	e, err := newEvent(eventtype.AlbumCreated, "album:"+id, eventtype.AlbumData{AlbumID: id, Title: title, ArtistID: artistID})
	if err != nil {
		return "", err
	}
	return id, outbox.Write(ctx, tx, e)
}

// ensureGenre returns the slug of genre, creating the genre row when new
// (genres have no domain event; CDC carries the row).
func ensureGenre(ctx context.Context, tx pgx.Tx, genre string) (*string, error) {
	slug := strings.Join(strings.Fields(NameKey(genre)), "-")
	if slug == "" || !slugRE.MatchString(slug) || len(slug) > 64 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO genre (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, slug, strings.TrimSpace(genre)); err != nil {
		return nil, fmt.Errorf("create genre %q: %w", genre, err)
	}
	return &slug, nil
}

func nonZero(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateAudioTrack creates t as a draft with its artists, album, genre and
// renditions, and writes TrackCreated (and ArtistCreated/AlbumCreated for
// new names) into the outbox, all in tx.
func CreateAudioTrack(ctx context.Context, tx pgx.Tx, t AudioTrack) (Track, error) {
	if t.ID == "" || strings.TrimSpace(t.Title) == "" || len(t.Artists) == 0 {
		return Track{}, errors.New("catalog: an audio track needs an id, a title and an artist")
	}
	var artistIDs []string
	for _, name := range t.Artists {
		id, err := EnsureArtist(ctx, tx, name)
		if err != nil {
			return Track{}, err
		}
		if !containsStr(artistIDs, id) {
			artistIDs = append(artistIDs, id)
		}
	}
	var albumID *string
	if strings.TrimSpace(t.Album) != "" {
		owner := artistIDs[0]
		if t.AlbumArtist != "" {
			id, err := EnsureArtist(ctx, tx, t.AlbumArtist)
			if err != nil {
				return Track{}, err
			}
			owner = id
		}
		id, err := EnsureAlbum(ctx, tx, t.Album, owner, t.Year, t.Audio.CoverKey)
		if err != nil {
			return Track{}, err
		}
		albumID = &id
	}
	genre, err := ensureGenre(ctx, tx, t.Genre)
	if err != nil {
		return Track{}, err
	}
	a := t.Audio
	if _, err := tx.Exec(ctx, `INSERT INTO track (id, title, album_id, genre_id, position, duration_ms,
		isrc, loudness_lufs, loudness_range, true_peak_dbtp, replay_gain_db, cover_key, peaks_key, source_object)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		t.ID, strings.TrimSpace(t.Title), albumID, genre, nonZero(t.Position), nonZero(a.DurationMS),
		nonEmpty(a.ISRC), a.LoudnessLUFS, a.LoudnessRange, a.TruePeakDBTP, a.ReplayGainDB,
		nonEmpty(a.CoverKey), nonEmpty(a.PeaksKey), nonEmpty(a.SourceObject)); err != nil {
		return Track{}, fmt.Errorf("create track: %w", err)
	}
	if err := setArtists(ctx, tx, t.ID, artistIDs); err != nil {
		return Track{}, err
	}
	if err := insertAudioRenditions(ctx, tx, t.ID, a.Renditions); err != nil {
		return Track{}, err
	}
	return writeTrackEvent(ctx, tx, t.ID, eventtype.TrackCreated)
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func insertAudioRenditions(ctx context.Context, tx pgx.Tx, id string, rs []AudioRendition) error {
	for _, r := range rs {
		if _, err := tx.Exec(ctx, `INSERT INTO track_rendition (track_id, kind, storage_key, premium, bytes, codec, bitrate)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, r.Kind, r.StorageKey, r.Premium, r.Bytes, nonEmpty(r.Codec), nonZero(r.Bitrate)); err != nil {
			return fmt.Errorf("add rendition %s: %w", r.Kind, err)
		}
	}
	return nil
}

// writeTrackEvent reloads track id and writes its evType event.
func writeTrackEvent(ctx context.Context, tx pgx.Tx, id, evType string) (Track, error) {
	t, err := loadTrack(ctx, tx, id, false)
	if err != nil {
		return t, err
	}
	e, err := newEvent(evType, "track:"+id, t.data())
	if err != nil {
		return t, err
	}
	return t, outbox.Write(ctx, tx, e)
}

// ReplaceAudio gives existing track id new audio: its renditions are
// replaced (TrackRenditionsReplaced, which purges the old objects from the
// POPs) and its measured facts updated. A missing track is ErrNoTrack.
func ReplaceAudio(ctx context.Context, tx pgx.Tx, id string, a Audio) (Track, error) {
	t, err := loadTrack(ctx, tx, id, true)
	if err != nil {
		var p *problem.Problem
		if errors.As(err, &p) && p.Status == http.StatusNotFound {
			return Track{}, fmt.Errorf("%w: %s", ErrNoTrack, id)
		}
		return Track{}, err
	}
	old := orEmpty(t.Renditions)
	if _, err := tx.Exec(ctx, `DELETE FROM track_rendition WHERE track_id = $1`, id); err != nil {
		return Track{}, fmt.Errorf("remove renditions: %w", err)
	}
	if err := insertAudioRenditions(ctx, tx, id, a.Renditions); err != nil {
		return Track{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE track SET duration_ms = coalesce($2, duration_ms), isrc = coalesce($3, isrc),
		loudness_lufs = $4, loudness_range = $5, true_peak_dbtp = $6, replay_gain_db = $7,
		cover_key = coalesce($8, cover_key), peaks_key = $9, source_object = $10, updated_at = now() WHERE id = $1`,
		id, nonZero(a.DurationMS), nonEmpty(a.ISRC), a.LoudnessLUFS, a.LoudnessRange, a.TruePeakDBTP, a.ReplayGainDB,
		nonEmpty(a.CoverKey), nonEmpty(a.PeaksKey), nonEmpty(a.SourceObject)); err != nil {
		return Track{}, fmt.Errorf("update track audio: %w", err)
	}
	t, err = loadTrack(ctx, tx, id, false)
	if err != nil {
		return t, err
	}
	e, err := newEvent(eventtype.TrackRenditionsReplaced, "track:"+id, eventtype.TrackRenditionsReplacedData{TrackID: id, Old: old, New: orEmpty(t.Renditions)})
	if err != nil {
		return t, err
	}
	return t, outbox.Write(ctx, tx, e)
}

// ErrNoTrack: the track to change does not exist.
var ErrNoTrack = errors.New("catalog: no such track")

// PublishTrack publishes draft or unpublished track id (TrackPublished,
// which warms the CDN); a published track is left as it is.
func PublishTrack(ctx context.Context, tx pgx.Tx, id string) (Track, error) {
	t, err := loadTrack(ctx, tx, id, true)
	if err != nil {
		return t, err
	}
	if t.State == "published" {
		return t, nil
	}
	if len(t.Renditions) == 0 || len(t.ArtistIDs) == 0 {
		return t, fmt.Errorf("catalog: track %s needs renditions and an artist to be published", id)
	}
	if _, err := tx.Exec(ctx, `UPDATE track SET state = 'published', published_at = now(), updated_at = now() WHERE id = $1`, id); err != nil {
		return t, fmt.Errorf("publish track %s: %w", id, err)
	}
	return writeTrackEvent(ctx, tx, id, eventtype.TrackPublished)
}
