package recommend

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Listen is one play as the recommender needs it: who, what, when, and how
// much of it was played.
type Listen struct {
	User string
	// Track is the track's id; Artist its artist's id (optional: the artist
	// models need it, the track models do not).
	Track  string
	Artist string
	At     time.Time
	// Scrobble is the statistics' flag (internal/stats stores it with every
	// listen, by listens.Counts: played at least half the track or four
	// minutes).
	Scrobble bool
	// Skipped is the player's report that the listener skipped the track.
	Skipped bool
}

// Weighting says how listens become matrix values.
type Weighting struct {
	// Now is the reference time for decay (the training cutoff).
	Now time.Time
	// HalfLife halves a listen's weight for every HalfLife of age; zero
	// turns decay off.
	HalfLife time.Duration
	// Skip is what a skip without a scrobble subtracts (before decay).
	Skip float32
}

// DefaultWeighting is what the recompute uses: a 30-day half-life and a skip
// worth a third of a scrobble, against.
func DefaultWeighting(now time.Time) Weighting {
	return Weighting{Now: now, HalfLife: 30 * 24 * time.Hour, Skip: 1.0 / 3}
}

// Weight returns the signed value a listen adds, and whether it adds any.
func (w Weighting) Weight(l Listen) (float32, bool) {
	var v float32
	switch {
	case l.Scrobble:
		v = 1
	case l.Skipped:
		v = -w.Skip
	default:
		return 0, false
	}
	if w.HalfLife > 0 {
		age := w.Now.Sub(l.At)
		if age < 0 {
			age = 0
		}
		v *= float32(math.Exp2(-float64(age) / float64(w.HalfLife)))
	}
	return v, true
}

// Index maps string ids to dense int32 indices, in order of first sight.
type Index struct {
	ids []string
	pos map[string]int32
}

func newIndex() *Index { return &Index{pos: map[string]int32{}} }

// Add returns id's index, adding it if it is new.
func (x *Index) Add(id string) int32 {
	if i, ok := x.pos[id]; ok {
		return i
	}
	i := int32(len(x.ids))
	x.ids = append(x.ids, id)
	x.pos[id] = i
	return i
}

// Lookup returns id's index.
func (x *Index) Lookup(id string) (int32, bool) {
	i, ok := x.pos[id]
	return i, ok
}

// ID returns the id at index i.
func (x *Index) ID(i int32) string { return x.ids[i] }

// Len is the number of ids.
func (x *Index) Len() int { return len(x.ids) }

// Matrix is a sparse rows × columns matrix in compressed sparse rows: row
// r's entries are Cols[Ptr[r]:Ptr[r+1]] (ascending) with Vals alongside.
type Matrix struct {
	Rows, NCols int
	Ptr         []int64
	Cols        []int32
	Vals        []float32
}

// Row returns row r's columns and values (shared, not copied).
func (m *Matrix) Row(r int) ([]int32, []float32) {
	a, b := m.Ptr[r], m.Ptr[r+1]
	return m.Cols[a:b], m.Vals[a:b]
}

// NNZ is the number of stored entries.
func (m *Matrix) NNZ() int { return len(m.Cols) }

// Bytes is the memory the matrix arrays take.
func (m *Matrix) Bytes() int64 {
	return int64(len(m.Ptr))*8 + int64(len(m.Cols))*4 + int64(len(m.Vals))*4
}

// Transpose returns the columns × rows matrix.
func (m *Matrix) Transpose() *Matrix {
	t := &Matrix{Rows: m.NCols, NCols: m.Rows, Ptr: make([]int64, m.NCols+1), Cols: make([]int32, len(m.Cols)), Vals: make([]float32, len(m.Vals))}
	for _, c := range m.Cols {
		t.Ptr[c+1]++
	}
	for c := 0; c < m.NCols; c++ {
		t.Ptr[c+1] += t.Ptr[c]
	}
	next := slices.Clone(t.Ptr[:m.NCols])
	for r := 0; r < m.Rows; r++ {
		cols, vals := m.Row(r)
		for k, c := range cols {
			p := next[c]
			t.Cols[p], t.Vals[p] = int32(r), vals[k]
			next[c]++
		}
	}
	return t
}

// Data is a listener × track interaction matrix with its ids and the
// track → artist map.
type Data struct {
	Users, Tracks, Artists *Index
	// TrackArtist is each track's artist index, -1 when unknown.
	TrackArtist []int32
	// R holds the decayed, signed weights: positive for listened, negative
	// for mostly skipped.
	R *Matrix
}

// Builder accumulates listens into [Data]. It is not safe for concurrent
// use.
type Builder struct {
	w                      Weighting
	users, tracks, artists *Index
	trackArtist            []int32
	// one entry per counted listen, merged by Build
	eu, ei []int32
	ev     []float32
}

// NewBuilder starts an empty matrix. Use the same Builder's indices for the
// test window of a split, so test tracks are part of the catalogue.
func NewBuilder(w Weighting) *Builder {
	return &Builder{w: w, users: newIndex(), tracks: newIndex(), artists: newIndex()}
}

// AddTrack puts a track of the catalogue into the index, listened to or not:
// ranking is over the whole catalogue.
func (b *Builder) AddTrack(track, artist string) int32 {
	i := b.tracks.Add(track)
	for int(i) >= len(b.trackArtist) {
		b.trackArtist = append(b.trackArtist, -1)
	}
	if artist != "" && b.trackArtist[i] < 0 {
		b.trackArtist[i] = b.artists.Add(artist)
	}
	return i
}

// AddUser puts a listener into the index.
func (b *Builder) AddUser(user string) int32 { return b.users.Add(user) }

// Add counts one listen. It reports whether the listen counted (a scrobble
// or a skip).
func (b *Builder) Add(l Listen) bool {
	u := b.users.Add(l.User)
	i := b.AddTrack(l.Track, l.Artist)
	v, ok := b.w.Weight(l)
	if !ok {
		return false
	}
	b.eu = append(b.eu, u)
	b.ei = append(b.ei, i)
	b.ev = append(b.ev, v)
	return true
}

// Listens is the number of counted listens so far.
func (b *Builder) Listens() int { return len(b.eu) }

// Build merges the listens into the matrix (one entry per listener and
// track, weights summed) and releases the per-listen buffers. The Builder
// must not be used afterwards.
func (b *Builder) Build() *Data {
	nu, ni := b.users.Len(), b.tracks.Len()
	for len(b.trackArtist) < ni {
		b.trackArtist = append(b.trackArtist, -1)
	}
	// Counting sort by listener, then sort and merge each row.
	ptr := make([]int64, nu+1)
	for _, u := range b.eu {
		ptr[u+1]++
	}
	for u := 0; u < nu; u++ {
		ptr[u+1] += ptr[u]
	}
	next := slices.Clone(ptr[:nu])
	cols := make([]int32, len(b.eu))
	vals := make([]float32, len(b.eu))
	for k, u := range b.eu {
		p := next[u]
		cols[p], vals[p] = b.ei[k], b.ev[k]
		next[u]++
	}
	b.eu, b.ei, b.ev = nil, nil, nil
	type entry struct {
		c int32
		v float32
	}
	var row []entry
	out := int64(0)
	for u := 0; u < nu; u++ {
		a, e := ptr[u], ptr[u+1]
		row = row[:0]
		for p := a; p < e; p++ {
			row = append(row, entry{cols[p], vals[p]})
		}
		// stable: equal tracks are summed in listen order, deterministic
		slices.SortStableFunc(row, func(x, y entry) int { return int(x.c) - int(y.c) })
		ptr[u] = out
		for k := 0; k < len(row); {
			c, v := row[k].c, row[k].v
			k++
			for k < len(row) && row[k].c == c {
				v += row[k].v
				k++
			}
			cols[out], vals[out] = c, v
			out++
		}
	}
	ptr[nu] = out
	m := &Matrix{Rows: nu, NCols: ni, Ptr: ptr, Cols: slices.Clip(cols[:out]), Vals: slices.Clip(vals[:out])}
	if out < int64(len(cols))/2 {
		m.Cols, m.Vals = slices.Clone(cols[:out]), slices.Clone(vals[:out])
	}
	return &Data{Users: b.users, Tracks: b.tracks, Artists: b.artists, TrackArtist: b.trackArtist, R: m}
}

// ArtistMatrix aggregates R by artist: listener × artist with the summed
// weights of the artist's tracks. Tracks without an artist are left out.
func (d *Data) ArtistMatrix() *Matrix {
	na := d.Artists.Len()
	m := &Matrix{Rows: d.R.Rows, NCols: na, Ptr: make([]int64, d.R.Rows+1)}
	acc := make([]float32, na)
	touched := make([]int32, 0, 64)
	for u := 0; u < d.R.Rows; u++ {
		cols, vals := d.R.Row(u)
		touched = touched[:0]
		for k, c := range cols {
			a := d.TrackArtist[c]
			if a < 0 {
				continue
			}
			if acc[a] == 0 {
				touched = append(touched, a)
			}
			acc[a] += vals[k]
			if acc[a] == 0 { // cancelled out exactly: keep it touched
				acc[a] = float32(math.SmallestNonzeroFloat32)
			}
		}
		slices.Sort(touched)
		for _, a := range touched {
			m.Cols = append(m.Cols, a)
			m.Vals = append(m.Vals, acc[a])
			acc[a] = 0
		}
		m.Ptr[u+1] = int64(len(m.Cols))
	}
	return m
}

// String describes the data's size.
func (d *Data) String() string {
	return fmt.Sprintf("%d listeners × %d tracks (%d artists), %d entries, %.1f MB", d.R.Rows, d.R.NCols, d.Artists.Len(), d.R.NNZ(), float64(d.R.Bytes())/1e6)
}
