package recommend

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/listengen"
	"github.com/overture-music/overture/internal/listens"
)

// plantedConfig is the planted data at test size: big enough that the
// clusters show (3,000 listeners, 300,000 listens over eight weeks), small
// enough for -race.
func plantedConfig() listengen.Config {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	return listengen.Config{Seed: 7, Listeners: 3000, Artists: 600, Tracks: 8000, Listens: 300_000, Start: start, End: start.AddDate(0, 0, 56), Clusters: 12}
}

// PlantedSplit generates listens with planted taste clusters and splits them
// by time: train before the last test window, test on it.
func plantedSplit(t testing.TB, cfg listengen.Config, test time.Duration) (*listengen.Generator, *Split) {
	t.Helper()
	g, err := listengen.New(cfg)
	require.NoError(t, err)
	cutoff := cfg.End.Add(-test)
	s := NewSplitter(cutoff, test, DefaultWeighting(cutoff))
	tracks := g.Tracks()
	for _, tr := range tracks {
		s.AddTrack(tr.ID, tr.ArtistID)
	}
	require.NoError(t, g.Each(context.Background(), func(l listengen.Listen) error {
		s.Add(Listen{User: l.UserID, Track: l.TrackID, Artist: tracks[l.Track].ArtistID, At: l.At, Scrobble: scrobble(l), Skipped: l.Skipped})
		return nil
	}))
	return g, s.Build()
}

var (
	plantedOnce  sync.Once
	plantedGen   *listengen.Generator
	plantedData  *Split
	plantedModel struct {
		pop     *Popularity
		tracks  *Cooccurrence
		artists *ArtistCooccurrence
		als     *ALS
	}
)

func planted(t *testing.T) *Split {
	t.Helper()
	plantedOnce.Do(func() {
		plantedGen, plantedData = plantedSplit(t, plantedConfig(), 7*24*time.Hour)
		d := plantedData.Data
		plantedModel.pop = TrainPopularity(d.R)
		plantedModel.tracks = TrainCooccurrence(d.R, DefaultCooccurrence(2))
		plantedModel.artists = TrainArtistCooccurrence(d, DefaultCooccurrence(2))
		als, err := TrainALS(context.Background(), d.R, DefaultALS(2))
		if err != nil {
			panic(err)
		}
		plantedModel.als = als
	})
	require.NotNil(t, plantedData, "the planted data failed to build")
	require.NotNil(t, plantedModel.als)
	return plantedData
}

// TestModelsBeatPopularityOnPlantedData is the goal as a test: on
// listens with planted taste clusters, each model's NDCG@10 over the whole
// catalogue (time split, last week held out) is at least 1.5 times the
// charts'.
func TestModelsBeatPopularityOnPlantedData(t *testing.T) {
	s := planted(t)
	ctx := context.Background()
	require.Greater(t, len(s.Users), 1000, "most listeners have history and new scrobbles in the test week")
	base, err := Evaluate(ctx, plantedModel.pop, s, 2)
	require.NoError(t, err)
	t.Log(base)
	require.Greater(t, base.NDCGAt10, 0.01, "the charts find something: the evaluation is not vacuous")
	for _, m := range []Model{plantedModel.tracks, plantedModel.artists, plantedModel.als} {
		r, err := Evaluate(ctx, m, s, 2)
		require.NoError(t, err)
		t.Log(r)
		require.GreaterOrEqual(t, r.NDCGAt10, 1.5*base.NDCGAt10, "%s: NDCG@10 %.4f is not 1.5× popularity's %.4f", m.Name(), r.NDCGAt10, base.NDCGAt10)
		require.Greater(t, r.RecallAt50, base.RecallAt50, "%s: recall@50", m.Name())
		require.Greater(t, r.Coverage, 5*base.Coverage, "%s: a personal model covers far more of the catalogue than one chart", m.Name())
	}
}

// TestBecauseNamesATrackOfTheSameTaste checks that the explanations are
// meaningful on data whose structure is known: the track a co-occurrence
// recommendation is "because of" belongs, mostly, to the same planted taste
// cluster as the recommended track (chance would be about 1 in 12).
func TestBecauseNamesATrackOfTheSameTaste(t *testing.T) {
	s := planted(t)
	cluster := map[string]int{}
	for _, tr := range plantedGen.Tracks() {
		cluster[tr.ID] = tr.Cluster
	}
	c := plantedModel.tracks
	same, total := 0, 0
	var mu sync.Mutex
	require.NoError(t, RecommendAll(context.Background(), c, s.Data.R, s.Users[:500], 10, 2, func(u int, top []Scored) error {
		for _, x := range top {
			because, _, ok := c.Because(u, x.Track)
			require.True(t, ok, "every co-occurrence recommendation has a because")
			_, played := slicesContains(s.Data.R, u, because)
			require.True(t, played, "the because is a track the listener played")
			mu.Lock()
			total++
			if cluster[s.Data.Tracks.ID(because)] == cluster[s.Data.Tracks.ID(x.Track)] {
				same++
			}
			mu.Unlock()
		}
		return nil
	}))
	share := float64(same) / float64(total)
	t.Logf("because-of track in the recommended track's cluster: %d of %d (%.2f)", same, total, share)
	require.Greater(t, share, 0.7)
}

func slicesContains(m *Matrix, u int, c int32) (int, bool) {
	cols, _ := m.Row(u)
	for k, x := range cols {
		if x == c {
			return k, true
		}
	}
	return 0, false
}

// TestTrainingIsDeterministic: the same data and seed give the same model
// and so the same recommendations, whatever the scheduling of the workers.
func TestTrainingIsDeterministic(t *testing.T) {
	s := planted(t)
	ctx := context.Background()
	cfg := DefaultALS(2)
	cfg.Iterations = 3
	a, err := TrainALS(ctx, s.Data.R, cfg)
	require.NoError(t, err)
	b, err := TrainALS(ctx, s.Data.R, cfg)
	require.NoError(t, err)
	require.Equal(t, a.Y, b.Y)
	require.Equal(t, a.X, b.X)
	cfg.Seed++
	c, err := TrainALS(ctx, s.Data.R, cfg)
	require.NoError(t, err)
	require.NotEqual(t, a.Y, c.Y, "another seed starts elsewhere")

	n1 := TrainCooccurrence(s.Data.R, CooccurrenceConfig{K: 20, Shrink: 10, Workers: 2}).N
	n2 := TrainCooccurrence(s.Data.R, CooccurrenceConfig{K: 20, Shrink: 10, Workers: 1}).N
	require.Equal(t, n1, n2, "neighbours do not depend on the number of workers")

	ctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = TrainALS(ctx, s.Data.R, cfg)
	require.ErrorIs(t, err, context.Canceled)
}

// scrobble applies the statistics' counting rule to a generated play.
func scrobble(l listengen.Listen) bool {
	_, s := listens.Counts(l.DurationMS, l.PlayedMS)
	return s
}
