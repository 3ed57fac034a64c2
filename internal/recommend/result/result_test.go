package result

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/recommend"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func store(t *testing.T) Store {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, Migrate(ctx, pool))
	return Store{Pool: pool}
}

// models trains on a small hand-made history: listeners of a and b, of a and
// c, and one of a alone.
func models(t *testing.T) Models {
	t.Helper()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := recommend.NewBuilder(recommend.Weighting{Now: now})
	for u := range 30 {
		user := fmt.Sprintf("u%02d", u)
		b.Add(recommend.Listen{User: user, Track: "a", At: now, Scrobble: true})
		switch {
		case u < 20:
			b.Add(recommend.Listen{User: user, Track: "b", At: now, Scrobble: true})
		case u < 29:
			b.Add(recommend.Listen{User: user, Track: "c", At: now, Scrobble: true})
		}
	}
	b.AddTrack("d", "")
	d := b.Build()
	als, err := recommend.TrainALS(context.Background(), d.R, recommend.ALSConfig{Factors: 4, Iterations: 5, Alpha: 5, Lambda: 1, CGSteps: 3, Seed: 1, Workers: 2})
	require.NoError(t, err)
	return Models{Data: d, Tracks: recommend.TrainCooccurrence(d.R, recommend.DefaultCooccurrence(2)), ALS: als}
}

// TestStoredResultIsServedAsMade: Make's result for a listener is stored and
// read back byte for byte, with its model, version, time and ETag; the
// sections leave out what the listener played and say why each track is
// there.
func TestStoredResultIsServedAsMade(t *testing.T) {
	ctx := context.Background()
	s := store(t)
	m := models(t)
	made := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	var (
		mu  sync.Mutex
		all []Result
	)
	require.NoError(t, Make(ctx, m, "run-1", made, 10, 2, func(r Result) error {
		mu.Lock()
		defer mu.Unlock()
		all = append(all, r)
		return nil
	}))
	require.Len(t, all, 30, "every listener with history gets a result")
	n, err := s.Put(ctx, all)
	require.NoError(t, err)
	require.EqualValues(t, 30, n)

	got, err := s.Get(ctx, "u29") // played a alone
	require.NoError(t, err)
	require.Equal(t, "run-1", got.Version)
	require.True(t, got.MadeAt.Equal(made))
	require.Regexp(t, `^"[0-9a-f]{24}"$`, got.ETag)
	var body Body
	require.NoError(t, json.Unmarshal(got.Body, &body))
	require.Equal(t, "u29", body.UserID)
	require.Len(t, body.Sections, 2)
	because := body.Sections[1]
	require.Equal(t, "because-you-listened", because.ID)
	require.NotEmpty(t, because.Reason)
	require.Equal(t, []string{"b", "c"}, trackIDs(because.Tracks), "b shares more listeners with a than c does; d none")
	for _, tr := range because.Tracks {
		require.Equal(t, "a", tr.Because, "because you listened to a")
	}
	for _, sec := range body.Sections {
		require.NotContains(t, trackIDs(sec.Tracks), "a", "%s recommends a track already played", sec.ID)
	}

	_, err = s.Get(ctx, "nobody")
	require.ErrorIs(t, err, ErrNone)
}

// TestOlderRunNeverOverwritesNewer: results are replaced only by later ones,
// so a resumed or redelivered older run changes nothing.
func TestOlderRunNeverOverwritesNewer(t *testing.T) {
	ctx := context.Background()
	s := store(t)
	t1 := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	mk := func(version string, at time.Time) Result {
		r, err := New(Body{UserID: "u", Model: "als", Version: version, MadeAt: at, Sections: []Section{}})
		require.NoError(t, err)
		return r
	}
	n, err := s.Put(ctx, []Result{mk("v2", t1.Add(time.Hour))})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = s.Put(ctx, []Result{mk("v1", t1)})
	require.NoError(t, err)
	require.EqualValues(t, 0, n)
	n, err = s.Put(ctx, []Result{mk("v2", t1.Add(time.Hour))})
	require.NoError(t, err)
	require.EqualValues(t, 0, n, "the same run delivered twice writes once")
	got, err := s.Get(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, "v2", got.Version)
	require.Equal(t, mk("v2", t1.Add(time.Hour)).ETag, got.ETag, "the ETag is a function of the body")
	require.NotEqual(t, mk("v1", t1).ETag, got.ETag)
}

func trackIDs(ts []Track) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.TrackID)
	}
	return out
}
