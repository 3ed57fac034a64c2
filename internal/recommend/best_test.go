package recommend

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// sortedBest is the reference best replaces: sort every candidate, keep n.
func sortedBest(cands []Scored, n int) []Scored {
	c := slices.Clone(cands)
	slices.SortFunc(c, func(a, b Scored) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return int(a.Track) - int(b.Track)
	})
	return c[:min(n, len(c))]
}

// candidates are m distinct tracks in random order with scores drawn from
// few values, so ties are common.
func candidates(r *rand.Rand, m, values int) []Scored {
	c := make([]Scored, m)
	for i, t := range r.Perm(m * 3)[:m] {
		c[i] = Scored{Track: int32(t), Score: float32(r.IntN(values)) / 7}
	}
	return c
}

func TestBestIsTheSortedPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ m, values, n int }{
		{0, 1, 5}, {3, 1, 5}, {5, 1, 5}, {100, 1, 10}, {100, 3, 10},
		{1000, 50, 100}, {1000, 1000, 100}, {7, 2, 0}, {50, 4, 1},
	} {
		for range 20 {
			c := candidates(r, tc.m, tc.values)
			want := sortedBest(c, tc.n)
			got := best(c, tc.n)
			if len(want) == 0 {
				require.Empty(t, got)
				continue
			}
			require.Equal(t, want, got, "m=%d values=%d n=%d", tc.m, tc.values, tc.n)
		}
	}
}

// BenchmarkNeighbourSelection: keeping a track's top 100 of its
// co-occurring tracks (here 20,000 candidates) by a full sort, as the
// co-occurrence training did, against best's bounded heap.
func BenchmarkNeighbourSelection(b *testing.B) {
	c := candidates(rand.New(rand.NewPCG(3, 4)), 20000, 5000)
	b.Run("sort", func(b *testing.B) {
		for b.Loop() {
			sortedBest(c, 100)
		}
	})
	b.Run("heap", func(b *testing.B) {
		for b.Loop() {
			best(c, 100)
		}
	})
}
