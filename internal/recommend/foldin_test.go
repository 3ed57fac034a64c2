package recommend

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFoldInAgreesWithTraining: folding a trained listener's own row into
// the trained track factors (what a one-listener refresh does, training
// nothing) recommends what training recommended for them — the solve is the
// exact one a sweep approximates with a few CG steps.
func TestFoldInAgreesWithTraining(t *testing.T) {
	s := planted(t)
	d, als := s.Data, plantedModel.als
	cfg := DefaultALS(2)
	tf, err := NewTrackFactors(als.F, als.Y, cfg.Alpha, cfg.Lambda)
	require.NoError(t, err)
	require.Equal(t, d.R.NCols, tf.Tracks())

	trained := make([]float32, d.R.NCols)
	folded := make([]float32, d.R.NCols)
	overlap, users := 0, 0
	for u := 0; u < d.R.Rows && users < 300; u++ {
		cols, vals := d.R.Row(u)
		if len(cols) == 0 {
			continue
		}
		users++
		clear(trained)
		als.Scores(u, trained)
		x, err := tf.FoldIn(cols, vals)
		require.NoError(t, err)
		tf.Scores(x, folded)
		want := map[int32]bool{}
		for _, s := range TopN(trained, cols, 10) {
			want[s.Track] = true
		}
		for _, s := range TopN(folded, cols, 10) {
			if want[s.Track] {
				overlap++
			}
		}
	}
	share := float64(overlap) / float64(users*10)
	t.Logf("fold-in top 10 shares %.3f of training's over %d listeners", share, users)
	require.Greater(t, share, 0.8)

	_, err = NewTrackFactors(32, make([]float32, 33), 1, 1)
	require.ErrorContains(t, err, "not tracks × 32 factors")
}
