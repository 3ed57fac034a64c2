package recommend

import (
	"math"
)

// CooccurrenceConfig tunes item-item similarity.
type CooccurrenceConfig struct {
	// K is how many neighbours each item keeps.
	K int
	// Shrink is added to the cosine's denominator so that two rare items
	// that share one listener do not look identical (Koren's shrinkage).
	Shrink float32
	// Workers is how many goroutines compute neighbours.
	Workers int
}

// DefaultCooccurrence keeps 100 neighbours per item with a shrinkage of 10.
func DefaultCooccurrence(workers int) CooccurrenceConfig {
	return CooccurrenceConfig{K: 100, Shrink: 10, Workers: workers}
}

// Neighbours holds each item's top neighbours, most similar first:
// item i's are Idx[i*K : i*K+Len[i]] with similarities in Sim.
type Neighbours struct {
	K   int
	Len []int32
	Idx []int32
	Sim []float32
}

// Of returns item i's neighbours and similarities.
func (n *Neighbours) Of(i int32) ([]int32, []float32) {
	a := int(i) * n.K
	b := a + int(n.Len[i])
	return n.Idx[a:b], n.Sim[a:b]
}

// Bytes is the memory the neighbour lists take.
func (n *Neighbours) Bytes() int64 { return int64(len(n.Len))*4 + int64(len(n.Idx))*8 }

// Dampen is how much a positive weight v counts toward co-occurrence,
// log(1+v): a listener who played a track fifty times counts more than one
// who played it once, but not fifty times more.
func Dampen(v float32) float32 { return float32(math.Log1p(float64(v))) }

// positive returns r's positive entries dampened (Dampen).
func positive(r *Matrix) *Matrix {
	p := &Matrix{Rows: r.Rows, NCols: r.NCols, Ptr: make([]int64, r.Rows+1)}
	n := 0
	for _, v := range r.Vals {
		if v > 0 {
			n++
		}
	}
	p.Cols, p.Vals = make([]int32, 0, n), make([]float32, 0, n)
	for u := 0; u < r.Rows; u++ {
		cols, vals := r.Row(u)
		for k, c := range cols {
			if v := vals[k]; v > 0 {
				p.Cols = append(p.Cols, c)
				p.Vals = append(p.Vals, Dampen(v))
			}
		}
		p.Ptr[u+1] = int64(len(p.Cols))
	}
	return p
}

// neighbours computes the top-K cosine neighbours of every column of the
// listener × item matrix p (positive, dampened weights). With self, each
// item is its own first neighbour with similarity 1.
func neighbours(p *Matrix, cfg CooccurrenceConfig, self bool) *Neighbours {
	ni := p.NCols
	k := cfg.K
	nb := &Neighbours{K: k, Len: make([]int32, ni), Idx: make([]int32, ni*k), Sim: make([]float32, ni*k)}
	pt := p.Transpose()
	norm := make([]float32, ni)
	for i := 0; i < ni; i++ {
		_, vals := pt.Row(i)
		s := float64(0)
		for _, v := range vals {
			s += float64(v) * float64(v)
		}
		norm[i] = float32(math.Sqrt(s))
	}
	parallel(ni, cfg.Workers, func(lo, hi int) {
		acc := make([]float32, ni)
		var touched []int32
		for i := lo; i < hi; i++ {
			users, wi := pt.Row(i)
			touched = touched[:0]
			for x, u := range users {
				items, wu := p.Row(int(u))
				for y, j := range items {
					if int(j) == i {
						continue
					}
					if acc[j] == 0 {
						touched = append(touched, j)
					}
					acc[j] += wi[x] * wu[y]
				}
			}
			scores := make([]Scored, 0, len(touched))
			for _, j := range touched {
				s := acc[j] / (norm[i]*norm[j] + cfg.Shrink)
				acc[j] = 0
				scores = append(scores, Scored{j, s})
			}
			base := i * k
			n := 0
			if self && k > 0 {
				nb.Idx[base], nb.Sim[base] = int32(i), 1
				n = 1
			}
			for _, s := range best(scores, k-n) {
				nb.Idx[base+n], nb.Sim[base+n] = s.Track, s.Score
				n++
			}
			nb.Len[i] = int32(n)
		}
	})
	return nb
}

// Cooccurrence recommends tracks similar to those a listener played: the
// score of track j for listener u is Σ_i w(u,i)·sim(i,j) over the tracks i
// u played (w the dampened decayed weight), sim the cosine over listeners
// kept for i's top K neighbours.
type Cooccurrence struct {
	// N are the tracks' neighbours.
	N *Neighbours
	p *Matrix
}

// TrainCooccurrence computes the track neighbours of the listener × track
// matrix r.
func TrainCooccurrence(r *Matrix, cfg CooccurrenceConfig) *Cooccurrence {
	p := positive(r)
	return &Cooccurrence{N: neighbours(p, cfg, false), p: p}
}

// Name implements [Model].
func (c *Cooccurrence) Name() string { return "cooccurrence-tracks" }

// Scores implements [Model].
func (c *Cooccurrence) Scores(u int, dst []float32) {
	if u >= c.p.Rows {
		return
	}
	items, w := c.p.Row(u)
	for x, i := range items {
		js, sims := c.N.Of(i)
		for y, j := range js {
			dst[j] += w[x] * sims[y]
		}
	}
}

// Because names the track listener u played that contributes most to
// track j's score — the X of "because you listened to X" — and that
// contribution; ok is false when nothing they played is similar to j.
func (c *Cooccurrence) Because(u int, j int32) (x int32, contribution float32, ok bool) {
	if u >= c.p.Rows {
		return 0, 0, false
	}
	items, w := c.p.Row(u)
	for k, i := range items {
		js, sims := c.N.Of(i)
		for y, jj := range js {
			if jj == j {
				if s := w[k] * sims[y]; !ok || s > contribution {
					x, contribution, ok = i, s, true
				}
				break
			}
		}
	}
	return x, contribution, ok
}

// ArtistCooccurrence recommends the best tracks of artists similar to the
// ones a listener plays: the artist's score is Σ_a w(u,a)·sim(a,b) over the
// artists a the listener played (each artist its own neighbour with
// similarity 1), and a track's score is its artist's score times the track's
// popularity relative to the artist's most popular track.
type ArtistCooccurrence struct {
	// N are the artists' neighbours (each artist first in its own list).
	N           *Neighbours
	p           *Matrix
	trackArtist []int32
	share       []float32
}

// TrainArtistCooccurrence computes artist neighbours from d.
func TrainArtistCooccurrence(d *Data, cfg CooccurrenceConfig) *ArtistCooccurrence {
	p := positive(d.ArtistMatrix())
	pop := TrainPopularity(d.R).Score
	top := make([]float32, d.Artists.Len())
	for t, a := range d.TrackArtist {
		if a >= 0 {
			top[a] = max(top[a], pop[t])
		}
	}
	share := make([]float32, len(pop))
	for t, a := range d.TrackArtist {
		if a >= 0 && top[a] > 0 {
			share[t] = pop[t] / top[a]
		}
	}
	return &ArtistCooccurrence{N: neighbours(p, cfg, true), p: p, trackArtist: d.TrackArtist, share: share}
}

// Name implements [Model].
func (c *ArtistCooccurrence) Name() string { return "cooccurrence-artists" }

// Scores implements [Model].
func (c *ArtistCooccurrence) Scores(u int, dst []float32) {
	if u >= c.p.Rows {
		return
	}
	artist := make([]float32, c.p.NCols)
	items, w := c.p.Row(u)
	for x, a := range items {
		bs, sims := c.N.Of(a)
		for y, b := range bs {
			artist[b] += w[x] * sims[y]
		}
	}
	for t, a := range c.trackArtist {
		if a >= 0 {
			dst[t] = artist[a] * c.share[t]
		}
	}
}

// Because names the artist listener u played that contributes most to
// artist b's score.
func (c *ArtistCooccurrence) Because(u int, b int32) (a int32, contribution float32, ok bool) {
	if u >= c.p.Rows {
		return 0, 0, false
	}
	items, w := c.p.Row(u)
	for k, x := range items {
		bs, sims := c.N.Of(x)
		for y, bb := range bs {
			if bb == b {
				if s := w[k] * sims[y]; !ok || s > contribution {
					a, contribution, ok = x, s, true
				}
				break
			}
		}
	}
	return a, contribution, ok
}
