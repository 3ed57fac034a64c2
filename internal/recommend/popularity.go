package recommend

// Popularity is the baseline: the training window's recency-weighted charts,
// the same ranking for every listener (minus what they already played). A
// track's score is the sum over listeners of their decayed positive weight
// for it, so a track played a lot last week outranks one played as much a
// year ago.
type Popularity struct {
	// Score is each track's popularity.
	Score []float32
}

// TrainPopularity counts the charts of r.
func TrainPopularity(r *Matrix) *Popularity {
	p := &Popularity{Score: make([]float32, r.NCols)}
	for k, c := range r.Cols {
		if v := r.Vals[k]; v > 0 {
			p.Score[c] += v
		}
	}
	return p
}

// Name implements [Model].
func (p *Popularity) Name() string { return "popularity" }

// Scores implements [Model].
func (p *Popularity) Scores(_ int, dst []float32) { copy(dst, p.Score) }
