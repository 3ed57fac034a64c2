package recommend

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Split is a time split of listens: the training matrix of everything
// before the cutoff, and each listener's test set — the tracks they
// scrobbled in the window after the cutoff that they had not played before
// it (a recommender never recommends what was played, so only new tracks can
// be hits).
type Split struct {
	Data *Data
	// Test is each listener's test tracks, ascending (nil for most).
	Test [][]int32
	// Users are the evaluated listeners: history before the cutoff and at
	// least one test track.
	Users []int
	// ColdUsers counts listeners with test tracks and no history (the
	// fallback serves them; they are not evaluated).
	ColdUsers int
	// TrainListens and TestListens count the counted listens of each side.
	TrainListens, TestListens int
}

// Splitter builds a [Split] from listens in any order.
type Splitter struct {
	cutoff, end time.Time
	// random split: each listen goes to test with probability share
	rng    *rand.Rand
	share  float64
	b      *Builder
	tu, ti []int32
	test   int
}

// NewSplitter trains on listens before cutoff and tests on [cutoff,
// cutoff+window). The weighting's Now is set to the cutoff.
func NewSplitter(cutoff time.Time, window time.Duration, w Weighting) *Splitter {
	w.Now = cutoff
	return &Splitter{cutoff: cutoff, end: cutoff.Add(window), b: NewBuilder(w)}
}

// NewRandomSplitter puts each listen into the test set with probability
// share, drawn from a PCG seeded with seed in the order listens are added:
// the protocol of most published MovieLens figures (a random 80/20 split),
// kept to compare this evaluation with them. Recommendations are made from
// the past, so the time split is the one that measures the product; this
// one lets a listener's test tracks come from before their training ones.
func NewRandomSplitter(share float64, seed uint64, w Weighting) *Splitter {
	return &Splitter{rng: rand.New(rand.NewPCG(seed, 0x5eed5)), share: share, b: NewBuilder(w)}
}

// AddTrack puts a track of the catalogue into the index.
func (s *Splitter) AddTrack(track, artist string) { s.b.AddTrack(track, artist) }

// Add sorts one listen into training, test, or neither.
func (s *Splitter) Add(l Listen) {
	train, test := l.At.Before(s.cutoff), !l.At.Before(s.cutoff) && l.At.Before(s.end)
	if s.rng != nil {
		test = s.rng.Float64() < s.share
		train = !test
	}
	switch {
	case train:
		s.b.Add(l)
	case test:
		i := s.b.AddTrack(l.Track, l.Artist)
		if !l.Scrobble {
			return
		}
		s.tu = append(s.tu, s.b.AddUser(l.User))
		s.ti = append(s.ti, i)
		s.test++
	default:
		s.b.AddTrack(l.Track, l.Artist)
	}
}

// Build finishes the split.
func (s *Splitter) Build() *Split {
	train := s.b.Listens()
	d := s.b.Build()
	sp := &Split{Data: d, Test: make([][]int32, d.R.Rows), TrainListens: train, TestListens: s.test}
	for k, u := range s.tu {
		seen, _ := d.R.Row(int(u))
		if _, played := slices.BinarySearch(seen, s.ti[k]); played {
			continue
		}
		sp.Test[u] = append(sp.Test[u], s.ti[k])
	}
	s.tu, s.ti = nil, nil
	for u, t := range sp.Test {
		if len(t) == 0 {
			continue
		}
		slices.Sort(t)
		sp.Test[u] = slices.Compact(t)
		if d.R.Ptr[u+1] > d.R.Ptr[u] {
			sp.Users = append(sp.Users, u)
		} else {
			sp.ColdUsers++
		}
	}
	return sp
}

// hits counts the first k of rec that are in relevant (ascending).
func hits(rec []int32, relevant []int32, k int) int {
	n := 0
	for _, r := range rec[:min(k, len(rec))] {
		if _, ok := slices.BinarySearch(relevant, r); ok {
			n++
		}
	}
	return n
}

// PrecisionAt is the share of the first k recommendations that are relevant
// (ascending); a list shorter than k counts its missing places as misses.
func PrecisionAt(rec, relevant []int32, k int) float64 {
	if k <= 0 {
		return 0
	}
	return float64(hits(rec, relevant, k)) / float64(k)
}

// RecallAt is the share of the relevant items found in the first k
// recommendations.
func RecallAt(rec, relevant []int32, k int) float64 {
	if len(relevant) == 0 {
		return 0
	}
	return float64(hits(rec, relevant, k)) / float64(len(relevant))
}

// NDCGAt is the normalised discounted cumulative gain of the first k
// recommendations with binary relevance: Σ 1/log2(rank+1) over the hits,
// divided by the same sum for a perfect list (min(k, |relevant|) hits on top).
func NDCGAt(rec, relevant []int32, k int) float64 {
	dcg := 0.0
	for r, x := range rec[:min(k, len(rec))] {
		if _, ok := slices.BinarySearch(relevant, x); ok {
			dcg += 1 / math.Log2(float64(r)+2)
		}
	}
	ideal := 0.0
	for r := 0; r < min(k, len(relevant)); r++ {
		ideal += 1 / math.Log2(float64(r)+2)
	}
	if ideal == 0 {
		return 0
	}
	return dcg / ideal
}

// Coverage is the share of the catalogue's n items that appear in at least
// one list.
func Coverage(lists [][]int32, n int) float64 {
	if n == 0 {
		return 0
	}
	seen := make([]bool, n)
	c := 0
	for _, l := range lists {
		for _, x := range l {
			if !seen[x] {
				seen[x] = true
				c++
			}
		}
	}
	return float64(c) / float64(n)
}

// Result is one model's offline evaluation: means over the evaluated
// listeners.
type Result struct {
	Model                               string
	Users                               int
	PrecisionAt10, RecallAt50, NDCGAt10 float64
	// Coverage is the share of the catalogue in anyone's top 10.
	Coverage float64
	// Took is how long ranking took for all evaluated listeners.
	Took time.Duration
}

// String prints the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%-22s users=%d P@10=%.4f R@50=%.4f NDCG@10=%.4f coverage=%.4f (%s)", r.Model, r.Users, r.PrecisionAt10, r.RecallAt50, r.NDCGAt10, r.Coverage, r.Took.Round(time.Millisecond))
}

// Evaluate ranks the whole catalogue for every evaluated listener of s with
// m (without the tracks they played in training) and measures the lists
// against their test tracks.
func Evaluate(ctx context.Context, m Model, s *Split, workers int) (Result, error) {
	start := time.Now()
	pos := make(map[int]int, len(s.Users))
	for k, u := range s.Users {
		pos[u] = k
	}
	p10 := make([]float64, len(s.Users))
	r50 := make([]float64, len(s.Users))
	n10 := make([]float64, len(s.Users))
	top10 := make([][]int32, len(s.Users))
	err := RecommendAll(ctx, m, s.Data.R, s.Users, 50, workers, func(u int, top []Scored) error {
		rec := make([]int32, len(top))
		for k, x := range top {
			rec[k] = x.Track
		}
		k := pos[u]
		rel := s.Test[u]
		p10[k], r50[k], n10[k] = PrecisionAt(rec, rel, 10), RecallAt(rec, rel, 50), NDCGAt(rec, rel, 10)
		top10[k] = rec[:min(10, len(rec))]
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("evaluating %s: %w", m.Name(), err)
	}
	res := Result{Model: m.Name(), Users: len(s.Users), Coverage: Coverage(top10, s.Data.R.NCols), Took: time.Since(start)}
	if len(s.Users) == 0 {
		return res, nil
	}
	for k := range s.Users { // in order: the sums are repeatable
		res.PrecisionAt10 += p10[k]
		res.RecallAt50 += r50[k]
		res.NDCGAt10 += n10[k]
	}
	n := float64(len(s.Users))
	res.PrecisionAt10 /= n
	res.RecallAt50 /= n
	res.NDCGAt10 /= n
	return res, nil
}
