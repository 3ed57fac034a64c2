package recommend

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// movieLensPath is where hack/deps/movielens.sh leaves MovieLens-100K.
const movieLensPath = "../../.cache/movielens/ml-100k.inter"

func readMovieLens(t *testing.T) []Listen {
	t.Helper()
	f, err := os.Open(movieLensPath)
	require.NoError(t, err, "MovieLens-100K is missing: run `bash hack/deps/movielens.sh` (make deps does) to fetch it from the recbole==1.2.1 wheel")
	defer f.Close()
	var all []Listen
	require.NoError(t, ReadInter(f, func(l Listen) error { all = append(all, l); return nil }))
	require.Len(t, all, 100_000, "MovieLens-100K has 100,000 ratings")
	return all
}

// TestMovieLens runs the evaluation on public data as a check of the
// evaluation code itself. Under the protocol of published figures (a random
// 80/20 split of the ratings, every rated movie relevant, training movies
// excluded, full ranking) most-popular scores NDCG@10 ≈ 0.218 and
// precision@10 ≈ 0.19, item-kNN ≈ 0.38 (github.com/Burton-David/
// Recommender-Systems, MovieLens-100K benchmark): the baseline here must land
// near those, and item co-occurrence and ALS must beat it clearly. The time
// split, which is the product's question, is logged: MovieLens ratings are
// entered in bulk, and popularity is known to be hard to beat on it.
func TestMovieLens(t *testing.T) {
	all := readMovieLens(t)
	ctx := context.Background()

	s := NewRandomSplitter(0.2, 1, Weighting{})
	for _, l := range all {
		s.Add(l)
	}
	sp := s.Build()
	require.Equal(t, 943, sp.Data.Users.Len())
	require.Equal(t, 1682, sp.Data.Tracks.Len())
	require.Greater(t, len(sp.Users), 900)
	base, err := Evaluate(ctx, TrainPopularity(sp.Data.R), sp, 2)
	require.NoError(t, err)
	t.Log("random 80/20:", base)
	require.InDelta(t, 0.218, base.NDCGAt10, 0.04, "popularity NDCG@10 far from the published 0.218: the metric or the exclusion is off")
	require.InDelta(t, 0.19, base.PrecisionAt10, 0.04, "popularity precision@10 far from the published 0.19")
	als, err := TrainALS(ctx, sp.Data.R, DefaultALS(2))
	require.NoError(t, err)
	for _, m := range []Model{TrainCooccurrence(sp.Data.R, DefaultCooccurrence(2)), als} {
		r, err := Evaluate(ctx, m, sp, 2)
		require.NoError(t, err)
		t.Log("random 80/20:", r)
		require.GreaterOrEqual(t, r.NDCGAt10, 1.3*base.NDCGAt10, "%s: NDCG@10 %.4f vs popularity %.4f (published item-kNN/popularity: 1.75×)", m.Name(), r.NDCGAt10, base.NDCGAt10)
	}

	// The time split: train on the first 90% of the ratings in time, test on
	// the rest.
	ts := make([]int64, len(all))
	for k, l := range all {
		ts[k] = l.At.Unix()
	}
	slices.Sort(ts)
	cutoff := time.Unix(ts[len(ts)*9/10], 0)
	ts2 := NewSplitter(cutoff, 365*24*time.Hour, Weighting{})
	for _, l := range all {
		ts2.Add(l)
	}
	sp = ts2.Build()
	als, err = TrainALS(ctx, sp.Data.R, DefaultALS(2))
	require.NoError(t, err)
	for _, m := range []Model{TrainPopularity(sp.Data.R), TrainCooccurrence(sp.Data.R, DefaultCooccurrence(2)), als} {
		r, err := Evaluate(ctx, m, sp, 2)
		require.NoError(t, err)
		t.Logf("time split at %s (%d evaluated, %d cold): %s", cutoff.Format(time.DateOnly), len(sp.Users), sp.ColdUsers, r)
	}
}
