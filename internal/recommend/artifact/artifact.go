// Package artifact keeps what the batch recompute trained that serving
// needs between recomputes (issue 14), in PostgreSQL (tables created by
// result.Migrate):
//
//   - recommend_similar: each track's and each artist's co-occurrence
//     neighbours, the top [Keep] — the similar tracks and artists on their
//     pages (internal/query) and the "because you listened" part of one
//     listener's refresh;
//   - recommend_factors: the ALS track factors, which one listener's factors
//     are folded into (recommend.TrackFactors).
//
// [Store.Put] replaces them in one transaction per recompute, only with a
// later one's; [Store.Recommend] computes one listener's result from their
// listens and these, training nothing: a few primary-key reads, one F×F
// solve and one pass over the catalogue. Memory is one copy of the factors
// (tracks × F float32, twice) cached per version.
package artifact

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/recommend"
	"github.com/overture-music/overture/internal/recommend/result"
)

// Kinds of similar items.
const (
	Track  = "track"
	Artist = "artist"
)

// Keep is how many neighbours are stored per item (the recompute keeps 100
// in memory; a page shows ten, a refresh sums over 50 per played track).
const Keep = 50

// ErrNoModel: no recompute has stored its models yet.
var ErrNoModel = errors.New("artifact: no stored models (the batch recompute has not run yet)")

// Trained is what one recompute trained.
type Trained struct {
	Version string
	MadeAt  time.Time
	Data    *recommend.Data
	Tracks  *recommend.Cooccurrence
	Artists *recommend.ArtistCooccurrence
	ALS     *recommend.ALS
	// ALSConfig is the factorisation's settings (α and λ fold listeners in).
	ALSConfig recommend.ALSConfig
}

// Store reads and writes the artifacts. Its methods are safe for
// concurrent use.
type Store struct {
	Pool *pgxpool.Pool

	mu      sync.Mutex
	factors *Factors
}

// Put stores t's neighbours and factors in one transaction, each row only
// over an older one, and deletes the rows of items t did not have (older
// rows). It returns how many similar-items rows it wrote. Put of the same
// recompute again writes nothing.
func (s *Store) Put(ctx context.Context, t Trained) (int64, error) {
	var written int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		flush := func() error {
			if b.Len() == 0 {
				return nil
			}
			res := tx.SendBatch(ctx, &b)
			for range b.Len() {
				tag, err := res.Exec()
				if err != nil {
					_ = res.Close()
					return fmt.Errorf("storing similar items: %w", err)
				}
				written += tag.RowsAffected()
			}
			b = pgx.Batch{}
			return res.Close()
		}
		put := func(kind, key string, ids []string, scores []float32, tracks []string) error {
			b.Queue(`
				INSERT INTO recommend_similar (kind, key, version, made_at, neighbours, scores, tracks) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (kind, key) DO UPDATE SET version = excluded.version, made_at = excluded.made_at,
					neighbours = excluded.neighbours, scores = excluded.scores, tracks = excluded.tracks
				WHERE recommend_similar.made_at < excluded.made_at`, kind, key, t.Version, t.MadeAt, ids, scores, tracks)
			if b.Len() == 1000 {
				return flush()
			}
			return nil
		}
		d := t.Data
		for i := 0; i < d.Tracks.Len(); i++ {
			js, sims := t.Tracks.N.Of(int32(i))
			js, sims = js[:min(len(js), Keep)], sims[:min(len(sims), Keep)]
			if len(js) == 0 {
				continue
			}
			ids := make([]string, len(js))
			for k, j := range js {
				ids[k] = d.Tracks.ID(j)
			}
			if err := put(Track, d.Tracks.ID(int32(i)), ids, sims, nil); err != nil {
				return err
			}
		}
		if t.Artists != nil {
			top := topTracks(d)
			for a := 0; a < d.Artists.Len(); a++ {
				bs, sims := t.Artists.N.Of(int32(a))
				var ids, tracks []string
				var scores []float32
				for k, b := range bs {
					if int(b) == a || top[b] < 0 {
						continue // itself; an artist of no track
					}
					if len(ids) == Keep {
						break
					}
					ids = append(ids, d.Artists.ID(b))
					tracks = append(tracks, d.Tracks.ID(top[b]))
					scores = append(scores, sims[k])
				}
				if len(ids) == 0 {
					continue
				}
				if err := put(Artist, d.Artists.ID(int32(a)), ids, scores, tracks); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recommend_similar WHERE made_at < $1`, t.MadeAt); err != nil {
			return fmt.Errorf("deleting older similar items: %w", err)
		}
		ids := make([]string, d.Tracks.Len())
		for i := range ids {
			ids[i] = d.Tracks.ID(int32(i))
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO recommend_factors (name, version, made_at, factors, lambda, alpha, track_ids, y) VALUES ('als', $1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, made_at = excluded.made_at, factors = excluded.factors,
				lambda = excluded.lambda, alpha = excluded.alpha, track_ids = excluded.track_ids, y = excluded.y
			WHERE recommend_factors.made_at < excluded.made_at`,
			t.Version, t.MadeAt, t.ALS.F, t.ALSConfig.Lambda, t.ALSConfig.Alpha, ids, encode(t.ALS.Y)); err != nil {
			return fmt.Errorf("storing the track factors: %w", err)
		}
		return nil
	})
	return written, err
}

// topTracks is each artist's most played track (index; -1: none), by the
// charts' count.
func topTracks(d *recommend.Data) []int32 {
	pop := recommend.TrainPopularity(d.R).Score
	top := make([]int32, d.Artists.Len())
	for a := range top {
		top[a] = -1
	}
	for i, a := range d.TrackArtist {
		if a >= 0 && (top[a] < 0 || pop[i] > pop[top[a]]) {
			top[a] = int32(i)
		}
	}
	return top
}

func encode(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for k, f := range v {
		binary.LittleEndian.PutUint32(out[4*k:], math.Float32bits(f))
	}
	return out
}

func decode(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for k := range out {
		out[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
	}
	return out
}

// Similar is an item's stored neighbours, most similar first.
type Similar struct {
	Version    string
	Neighbours []string
	Scores     []float32
	// Tracks is, for artists, each neighbour's most played track.
	Tracks []string
}

// Similar reads the stored neighbours of keys (track ids, or artist names)
// of kind; keys without any are absent.
func (s *Store) Similar(ctx context.Context, kind string, keys []string) (map[string]Similar, error) {
	rows, err := s.Pool.Query(ctx, `SELECT key, version, neighbours, scores, coalesce(tracks, '{}') FROM recommend_similar WHERE kind = $1 AND key = ANY($2)`, kind, keys)
	if err != nil {
		return nil, fmt.Errorf("reading similar %ss: %w", kind, err)
	}
	out := map[string]Similar{}
	var key string
	var sim Similar
	_, err = pgx.ForEachRow(rows, []any{&key, &sim.Version, &sim.Neighbours, &sim.Scores, &sim.Tracks}, func() error {
		out[key] = sim
		sim = Similar{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading similar %ss: %w", kind, err)
	}
	return out, nil
}

// Factors is the stored ALS track side, ready to fold listeners in.
type Factors struct {
	Version string
	MadeAt  time.Time
	IDs     []string
	Index   map[string]int32
	*recommend.TrackFactors
}

// Factors returns the stored factors: the cached copy while its version is
// the stored one, else a fresh read. ErrNoModel when none are stored.
func (s *Store) Factors(ctx context.Context) (*Factors, error) {
	var version string
	err := s.Pool.QueryRow(ctx, `SELECT version FROM recommend_factors WHERE name = 'als'`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoModel
	}
	if err != nil {
		return nil, fmt.Errorf("reading the track factors' version: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.factors != nil && s.factors.Version == version {
		return s.factors, nil
	}
	f := &Factors{}
	var n int
	var alpha, lambda float64
	var y []byte
	err = s.Pool.QueryRow(ctx, `SELECT version, made_at, factors, alpha, lambda, track_ids, y FROM recommend_factors WHERE name = 'als'`).
		Scan(&f.Version, &f.MadeAt, &n, &alpha, &lambda, &f.IDs, &y)
	if err != nil {
		return nil, fmt.Errorf("reading the track factors: %w", err)
	}
	if f.TrackFactors, err = recommend.NewTrackFactors(n, decode(y), alpha, lambda); err != nil {
		return nil, err
	}
	if f.Tracks() != len(f.IDs) {
		return nil, fmt.Errorf("track factors %s: %d tracks' factors for %d ids", f.Version, f.Tracks(), len(f.IDs))
	}
	f.Index = make(map[string]int32, len(f.IDs))
	for i, id := range f.IDs {
		f.Index[id] = int32(i)
	}
	s.factors = f
	return f, nil
}

// Recommend computes listener user's result made at `at` from their listens
// (any order; those outside the window before `at` and those without a
// track id are left out) and the stored models, as the recompute would:
// the same weighting, a daily mix of the ALS top n (the listener folded
// into the stored track factors) and "because you listened" from the
// stored track neighbours, played tracks left out of both. ok is false
// when no listen counts (nothing to recommend from: the listener keeps the
// fallback). ErrNoModel when no recompute stored its models yet.
func (s *Store) Recommend(ctx context.Context, user string, listens []recommend.Listen, at time.Time, window time.Duration, n int) (r result.Result, ok bool, err error) {
	w := recommend.DefaultWeighting(at)
	slices.SortStableFunc(listens, func(a, b recommend.Listen) int { return a.At.Compare(b.At) })
	weight := map[string]float32{}
	var played []string
	for _, l := range listens {
		if l.Track == "" || l.At.Before(at.Add(-window)) || !l.At.Before(at) {
			continue
		}
		v, counts := w.Weight(l)
		if !counts {
			continue
		}
		if _, seen := weight[l.Track]; !seen {
			played = append(played, l.Track)
		}
		weight[l.Track] += v
	}
	if len(played) == 0 {
		return result.Result{}, false, nil
	}
	f, err := s.Factors(ctx)
	if err != nil {
		return result.Result{}, false, err
	}
	mix, err := dailyMix(f, played, weight, n)
	if err != nil {
		return result.Result{}, false, err
	}
	because, err := s.because(ctx, played, weight, n)
	if err != nil {
		return result.Result{}, false, err
	}
	r, err = result.New(result.Body{UserID: user, Model: "als+cooccurrence-tracks", Version: f.Version + "+refresh", MadeAt: at.UTC(),
		Sections: []result.Section{result.DailyMix("als", mix), result.BecauseYouListened("cooccurrence-tracks", because)}})
	return r, err == nil, err
}

// dailyMix folds the listener into f and ranks the catalogue.
func dailyMix(f *Factors, played []string, weight map[string]float32, n int) ([]result.Track, error) {
	var cols []int32
	for _, id := range played {
		if i, ok := f.Index[id]; ok {
			cols = append(cols, i)
		}
	}
	slices.Sort(cols)
	vals := make([]float32, len(cols))
	for k, c := range cols {
		vals[k] = weight[f.IDs[c]]
	}
	x, err := f.FoldIn(cols, vals)
	if err != nil {
		return nil, err
	}
	scores := make([]float32, f.Tracks())
	f.Scores(x, scores)
	out := []result.Track{}
	for _, s := range recommend.TopN(scores, cols, n) {
		out = append(out, result.Track{TrackID: f.IDs[s.Track], Score: s.Score})
	}
	return out, nil
}

// because sums the stored neighbours of what the listener played, each
// weighted by its dampened weight, naming for each candidate the played
// track that contributed most.
func (s *Store) because(ctx context.Context, played []string, weight map[string]float32, n int) ([]result.Track, error) {
	var pos []string
	for _, id := range played {
		if weight[id] > 0 {
			pos = append(pos, id)
		}
	}
	if len(pos) == 0 {
		return []result.Track{}, nil
	}
	sim, err := s.Similar(ctx, Track, pos)
	if err != nil {
		return nil, err
	}
	type cand struct {
		score, best float32
		because     string
	}
	cands := map[string]*cand{}
	for _, i := range pos {
		wi := recommend.Dampen(weight[i])
		ns := sim[i]
		for k, j := range ns.Neighbours {
			if _, p := weight[j]; p {
				continue
			}
			c := cands[j]
			if c == nil {
				c = &cand{}
				cands[j] = c
			}
			v := wi * ns.Scores[k]
			c.score += v
			if c.because == "" || v > c.best {
				c.best, c.because = v, i
			}
		}
	}
	out := make([]result.Track, 0, len(cands))
	for j, c := range cands {
		out = append(out, result.Track{TrackID: j, Score: c.score, Because: c.because})
	}
	slices.SortFunc(out, func(a, b result.Track) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.TrackID, b.TrackID)
	})
	return out[:min(len(out), n)], nil
}
