// Package catalogtest drives the catalog write model for tests and
// benchmarks: a seeded, reproducible workload of mixed writes made directly in
// SQL, as an admin in psql (or any service bypassing the admin API) would, so
// that CDC and the read side are exercised on exactly what the WAL carries.
package catalogtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Stats counts what a workload did.
type Stats struct {
	Transactions int
	// Rows counts row changes (inserts, updates and deletes, including those
	// of cascades) per table.
	Rows map[string]int
}

type track struct {
	id         string
	artists    []string
	renditions int
}

type state struct {
	r       *rand.Rand
	prefix  string
	genres  []string
	artists []string
	albums  []string
	tracks  []track
	seq     int
	stats   Stats
}

// Workload performs n random catalog writes against pool, each in its own
// transaction: creating genres, artists (some with bios large enough to be
// TOASTed), albums and tracks (with artists and renditions), updating them,
// publishing, unpublishing, replacing renditions and deleting tracks. The same
// seed gives the same sequence of writes; workloads with different seeds can
// run concurrently on one database (their rows do not overlap). The catalog
// schema must exist (catalog.Migrate).
func Workload(ctx context.Context, pool *pgxpool.Pool, n int, seed uint64) (Stats, error) {
	s := &state{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), prefix: fmt.Sprintf("w%d", seed), stats: Stats{Rows: map[string]int{}}}
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return s.stats, err
		}
		op := s.pick()
		tx, err := pool.Begin(ctx)
		if err != nil {
			return s.stats, fmt.Errorf("workload write %d: begin: %w", i, err)
		}
		rows, err := op(ctx, tx)
		if err != nil {
			_ = tx.Rollback(ctx)
			return s.stats, fmt.Errorf("workload write %d: %w", i, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return s.stats, fmt.Errorf("workload write %d: commit: %w", i, err)
		}
		s.stats.Transactions++
		for t, c := range rows {
			s.stats.Rows[t] += c
		}
	}
	return s.stats, nil
}

type op func(ctx context.Context, tx pgx.Tx) (map[string]int, error)

// pick chooses the next write, keeping the catalog populated enough for
// every kind of write to happen.
func (s *state) pick() op {
	switch {
	case len(s.genres) < 3:
		return s.createGenre
	case len(s.artists) < 5:
		return s.createArtist
	case len(s.albums) < 3:
		return s.createAlbum
	case len(s.tracks) < 5:
		return s.createTrack
	}
	x := s.r.IntN(100)
	switch {
	case x < 2:
		return s.createGenre
	case x < 8:
		return s.createArtist
	case x < 14:
		return s.updateArtist
	case x < 20:
		return s.createAlbum
	case x < 25:
		return s.updateAlbum
	case x < 45:
		return s.createTrack
	case x < 65:
		return s.updateTrack
	case x < 75:
		return s.publish
	case x < 82:
		return s.replaceRenditions
	case x < 88:
		return s.relinkArtists
	default:
		return s.deleteTrack
	}
}

func (s *state) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var syllables = []string{"ки", "но", "ze", "mfi", "ra", "ак", "ва", "ри", "ум", "lu", "na", "so", "ль", "do", "ре", "ми"}

func (s *state) words(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		var w strings.Builder
		for j := 0; j < 2+s.r.IntN(3); j++ {
			w.WriteString(syllables[s.r.IntN(len(syllables))])
		}
		parts = append(parts, w.String())
	}
	return strings.Join(parts, " ")
}

// bigText is incompressible enough to be stored out of line (TOAST).
func (s *state) bigText() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzабвгдежзийклмнопрстуфхцчшщэюя0123456789"
	rs := []rune(alphabet)
	var b strings.Builder
	for b.Len() < 12_000 {
		b.WriteRune(rs[s.r.IntN(len(rs))])
	}
	return b.String()
}

func (s *state) any(list []string) string { return list[s.r.IntN(len(list))] }

func (s *state) createGenre(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	s.seq++
	id := fmt.Sprintf("%s-genre-%d", s.prefix, s.seq)
	if _, err := tx.Exec(ctx, `INSERT INTO genre (id, name) VALUES ($1, $2)`, id, s.words(1)); err != nil {
		return nil, fmt.Errorf("insert genre: %w", err)
	}
	s.genres = append(s.genres, id)
	return map[string]int{"genre": 1}, nil
}

func (s *state) createArtist(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	id := s.uuid()
	var bio *string
	if s.r.IntN(4) == 0 {
		b := s.bigText()
		bio = &b
	}
	if _, err := tx.Exec(ctx, `INSERT INTO artist (id, name, country, bio) VALUES ($1, $2, $3, $4)`, id, s.words(2), "RU", bio); err != nil {
		return nil, fmt.Errorf("insert artist: %w", err)
	}
	s.artists = append(s.artists, id)
	return map[string]int{"artist": 1}, nil
}

func (s *state) updateArtist(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	q := `UPDATE artist SET name = $2, updated_at = now() WHERE id = $1`
	arg := any(s.words(2))
	if s.r.IntN(3) == 0 {
		q, arg = `UPDATE artist SET bio = $2, updated_at = now() WHERE id = $1`, s.bigText()
	}
	if _, err := tx.Exec(ctx, q, s.any(s.artists), arg); err != nil {
		return nil, fmt.Errorf("update artist: %w", err)
	}
	return map[string]int{"artist": 1}, nil
}

func (s *state) createAlbum(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	id := s.uuid()
	if _, err := tx.Exec(ctx, `INSERT INTO album (id, title, artist_id, release_year) VALUES ($1, $2, $3, $4)`,
		id, s.words(2), s.any(s.artists), 1960+s.r.IntN(66)); err != nil {
		return nil, fmt.Errorf("insert album: %w", err)
	}
	s.albums = append(s.albums, id)
	return map[string]int{"album": 1}, nil
}

func (s *state) updateAlbum(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	if _, err := tx.Exec(ctx, `UPDATE album SET title = $2, release_year = $3, updated_at = now() WHERE id = $1`,
		s.any(s.albums), s.words(3), 1960+s.r.IntN(66)); err != nil {
		return nil, fmt.Errorf("update album: %w", err)
	}
	return map[string]int{"album": 1}, nil
}

func (s *state) createTrack(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	t := track{id: s.uuid()}
	var lyrics *string
	if s.r.IntN(5) == 0 {
		l := s.bigText()
		lyrics = &l
	}
	if _, err := tx.Exec(ctx, `INSERT INTO track (id, title, album_id, genre_id, position, duration_ms, explicit, lyrics, popularity)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.id, s.words(3), s.any(s.albums), s.any(s.genres), 1+s.r.IntN(20), 60_000+s.r.IntN(400_000), s.r.IntN(5) == 0, lyrics, s.r.Int64N(1_000_000)); err != nil {
		return nil, fmt.Errorf("insert track: %w", err)
	}
	rows := map[string]int{"track": 1}
	for i := 0; i < 1+s.r.IntN(2); i++ {
		a := s.any(s.artists)
		if slices.Contains(t.artists, a) {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO track_artist (track_id, artist_id, position) VALUES ($1, $2, $3)`, t.id, a, i); err != nil {
			return nil, fmt.Errorf("link track artist: %w", err)
		}
		t.artists = append(t.artists, a)
		rows["track_artist"]++
	}
	n, err := s.insertRenditions(ctx, tx, t.id)
	if err != nil {
		return nil, err
	}
	t.renditions = n
	rows["track_rendition"] += n
	s.tracks = append(s.tracks, t)
	return rows, nil
}

var kinds = []string{"hls-aac-128", "hls-aac-256", "mp3-320", "flac"}

func (s *state) insertRenditions(ctx context.Context, tx pgx.Tx, id string) (int, error) {
	n := 1 + s.r.IntN(len(kinds))
	for _, k := range kinds[:n] {
		if _, err := tx.Exec(ctx, `INSERT INTO track_rendition (track_id, kind, storage_key, premium, bytes) VALUES ($1, $2, $3, $4, $5)`,
			id, k, fmt.Sprintf("tracks/%s/%s/%d", id, k, s.r.IntN(1000)), k == "flac", s.r.Int64N(50_000_000)); err != nil {
			return 0, fmt.Errorf("insert rendition: %w", err)
		}
	}
	return n, nil
}

func (s *state) pickTrack() *track { return &s.tracks[s.r.IntN(len(s.tracks))] }

func (s *state) updateTrack(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	t := s.pickTrack()
	var err error
	switch s.r.IntN(3) {
	case 0:
		_, err = tx.Exec(ctx, `UPDATE track SET title = $2, updated_at = now() WHERE id = $1`, t.id, s.words(3))
	case 1:
		_, err = tx.Exec(ctx, `UPDATE track SET popularity = popularity + $2 WHERE id = $1`, t.id, 1+s.r.IntN(1000))
	default:
		_, err = tx.Exec(ctx, `UPDATE track SET explicit = NOT explicit, genre_id = $2, updated_at = now() WHERE id = $1`, t.id, s.any(s.genres))
	}
	if err != nil {
		return nil, fmt.Errorf("update track: %w", err)
	}
	return map[string]int{"track": 1}, nil
}

func (s *state) publish(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	t := s.pickTrack()
	if _, err := tx.Exec(ctx, `UPDATE track SET
			state = CASE WHEN state = 'published' THEN 'unpublished' ELSE 'published' END,
			published_at = CASE WHEN state = 'published' THEN published_at ELSE now() END,
			updated_at = now()
		WHERE id = $1`, t.id); err != nil {
		return nil, fmt.Errorf("publish track: %w", err)
	}
	return map[string]int{"track": 1}, nil
}

func (s *state) replaceRenditions(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	t := s.pickTrack()
	if _, err := tx.Exec(ctx, `DELETE FROM track_rendition WHERE track_id = $1`, t.id); err != nil {
		return nil, fmt.Errorf("delete renditions: %w", err)
	}
	n, err := s.insertRenditions(ctx, tx, t.id)
	if err != nil {
		return nil, err
	}
	rows := map[string]int{"track_rendition": t.renditions + n}
	t.renditions = n
	return rows, nil
}

func (s *state) relinkArtists(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	t := s.pickTrack()
	a := s.any(s.artists)
	rows := map[string]int{}
	if slices.Contains(t.artists, a) {
		if _, err := tx.Exec(ctx, `DELETE FROM track_artist WHERE track_id = $1 AND artist_id = $2`, t.id, a); err != nil {
			return nil, fmt.Errorf("unlink artist: %w", err)
		}
		t.artists = slices.DeleteFunc(t.artists, func(x string) bool { return x == a })
	} else {
		if _, err := tx.Exec(ctx, `INSERT INTO track_artist (track_id, artist_id, position) VALUES ($1, $2, $3)`, t.id, a, len(t.artists)); err != nil {
			return nil, fmt.Errorf("link artist: %w", err)
		}
		t.artists = append(t.artists, a)
	}
	rows["track_artist"] = 1
	return rows, nil
}

func (s *state) deleteTrack(ctx context.Context, tx pgx.Tx) (map[string]int, error) {
	i := s.r.IntN(len(s.tracks))
	t := s.tracks[i]
	if _, err := tx.Exec(ctx, `DELETE FROM track WHERE id = $1`, t.id); err != nil {
		return nil, fmt.Errorf("delete track: %w", err)
	}
	s.tracks = slices.Delete(s.tracks, i, i+1)
	return map[string]int{"track": 1, "track_artist": len(t.artists), "track_rendition": t.renditions}, nil
}
