package recommend

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	// Expected values worked by hand: 1/log2(2) = 1, 1/log2(3) = 0.6309298,
	// 1/log2(5) = 0.4306766.
	tests := []struct {
		name          string
		rec, relevant []int32
		k             int
		precision     float64
		recall        float64
		ndcg          float64
	}{
		{name: "HitsSecondAndFourth", rec: []int32{1, 2, 3, 4, 5}, relevant: []int32{2, 4}, k: 5,
			precision: 0.4, recall: 1, ndcg: (0.6309298 + 0.4306766) / (1 + 0.6309298)},
		{name: "ShortListCountsMissingPlacesAsMisses", rec: []int32{7, 8, 9}, relevant: []int32{7}, k: 10,
			precision: 0.1, recall: 1, ndcg: 1},
		{name: "PerfectPrefixOfALongTestSet", rec: []int32{3, 1}, relevant: []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, k: 2,
			precision: 1, recall: 2.0 / 12, ndcg: 1},
		{name: "HitBelowTheCut", rec: []int32{5, 1}, relevant: []int32{1}, k: 1,
			precision: 0, recall: 0, ndcg: 0},
		{name: "HitSecond", rec: []int32{5, 1}, relevant: []int32{1}, k: 2,
			precision: 0.5, recall: 1, ndcg: 0.6309298},
		{name: "NoRecommendations", rec: nil, relevant: []int32{1}, k: 10},
		{name: "NothingRelevant", rec: []int32{1, 2}, relevant: nil, k: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tt.precision, PrecisionAt(tt.rec, tt.relevant, tt.k), 1e-6, "precision@%d", tt.k)
			require.InDelta(t, tt.recall, RecallAt(tt.rec, tt.relevant, tt.k), 1e-6, "recall@%d", tt.k)
			require.InDelta(t, tt.ndcg, NDCGAt(tt.rec, tt.relevant, tt.k), 1e-6, "NDCG@%d", tt.k)
		})
	}
}

func TestCoverage(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 0.3, Coverage([][]int32{{1, 2}, {2, 3}, {1}}, 10), 1e-9)
	require.InDelta(t, 0.0, Coverage(nil, 10), 1e-9)
}

func TestTopN(t *testing.T) {
	t.Parallel()
	inf := float32(math.Inf(-1))
	tests := []struct {
		name    string
		scores  []float32
		exclude []int32
		n       int
		want    []int32
	}{
		{name: "BestFirstWithoutExcluded", scores: []float32{0.5, 0.9, 0.9, 0.1, inf}, exclude: []int32{1}, n: 3, want: []int32{2, 0, 3}},
		{name: "TiesGoToTheLowerIndex", scores: []float32{1, 1, 1, 1}, n: 2, want: []int32{0, 1}},
		{name: "FewerCandidatesThanN", scores: []float32{0.2, 0.1}, exclude: []int32{0}, n: 5, want: []int32{1}},
		{name: "NegativeScoresStillRank", scores: []float32{-2, -1}, n: 2, want: []int32{1, 0}},
		{name: "Zero", scores: []float32{1}, n: 0, want: []int32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := []int32{}
			for _, s := range TopN(tt.scores, tt.exclude, tt.n) {
				got = append(got, s.Track)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestBuilderCountsScrobblesAndSkips checks how the statistics' flags
// become weights: a scrobble adds one halved per half-life of age, a skip
// subtracts, a stream that is neither adds nothing.
func TestBuilderCountsScrobblesAndSkips(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	b := NewBuilder(Weighting{Now: now, HalfLife: 10 * day, Skip: 0.25})
	add := func(user, track string, ago time.Duration, scrobble, skipped bool) bool {
		return b.Add(Listen{User: user, Track: track, At: now.Add(-ago), Scrobble: scrobble, Skipped: skipped})
	}
	require.True(t, add("u", "x", 10*day, true, false), "a scrobble counts")
	require.True(t, add("u", "x", 0, false, true), "a skip counts, against")
	require.False(t, add("u", "y", 0, false, false), "a stream that is no scrobble adds nothing")
	require.True(t, add("v", "y", 20*day, true, false))
	require.True(t, add("v", "z", -day, true, false), "a listen after Now is not decayed up")
	require.False(t, add("v", "w", 0, false, false))
	require.True(t, add("v", "z", 0, true, true), "a skip after the scrobble point is a scrobble")
	d := b.Build()

	require.Equal(t, 2, d.Users.Len())
	require.Equal(t, 4, d.Tracks.Len(), "every track seen is in the catalogue, counted or not")
	row := func(user string) map[string]float32 {
		u, ok := d.Users.Lookup(user)
		require.True(t, ok)
		out := map[string]float32{}
		cols, vals := d.R.Row(int(u))
		for k, c := range cols {
			out[d.Tracks.ID(c)] = vals[k]
		}
		return out
	}
	got := row("u")
	require.Len(t, got, 1)
	require.InDelta(t, 0.5-0.25, got["x"], 1e-6, "a 10-day-old scrobble at a 10-day half-life is worth 0.5")
	got = row("v")
	require.Len(t, got, 2)
	require.InDelta(t, 0.25, got["y"], 1e-6, "two half-lives: a quarter")
	require.InDelta(t, 2, got["z"], 1e-6)
}

// TestCooccurrenceExplains builds a case worked by hand: x and y share two
// listeners, x and z one, so a listener of x alone gets y first, then z,
// each because of x.
func TestCooccurrenceExplains(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := NewBuilder(Weighting{Now: now})
	for _, p := range [][2]string{{"a", "x"}, {"a", "y"}, {"b", "x"}, {"b", "y"}, {"c", "x"}, {"c", "z"}, {"d", "x"}} {
		b.Add(Listen{User: p[0], Track: p[1], At: now, Scrobble: true})
	}
	d := b.Build()
	c := TrainCooccurrence(d.R, CooccurrenceConfig{K: 10, Workers: 2})
	x, _ := d.Tracks.Lookup("x")
	y, _ := d.Tracks.Lookup("y")
	z, _ := d.Tracks.Lookup("z")
	nb, sims := c.N.Of(x)
	require.Equal(t, []int32{y, z}, nb)
	// equal weights: cos(x,y) = 2/(√4·√2), cos(x,z) = 1/(√4·√1)
	require.InDelta(t, 1/math.Sqrt2, sims[0], 1e-6)
	require.InDelta(t, 0.5, sims[1], 1e-6)

	u, _ := d.Users.Lookup("d")
	scores := make([]float32, d.R.NCols)
	c.Scores(int(u), scores)
	seen, _ := d.R.Row(int(u))
	top := TopN(scores, seen, 10)
	require.Len(t, top, 2)
	require.Equal(t, []int32{y, z}, []int32{top[0].Track, top[1].Track})
	because, _, ok := c.Because(int(u), y)
	require.True(t, ok)
	require.Equal(t, "x", d.Tracks.ID(because), "because you listened to x")
	_, _, ok = c.Because(int(u), x)
	require.False(t, ok, "nothing explains a track that is no neighbour of what was played")
}

func TestReadInterRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"Empty", "", "no header"},
		{"NoTimestampColumn", "user_id:token\titem_id:token\n1\t2\n", "no timestamp column"},
		{"ShortLine", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\n", "line 2: 2 fields"},
		{"BadTimestamp", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tyesterday\n", `line 2: timestamp "yesterday"`},
		{"EmptyUser", "user_id:token\titem_id:token\ttimestamp:float\n\t2\t5\n", "line 2: empty user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := 0
			err := ReadInter(strings.NewReader(tt.in), func(Listen) error { n++; return nil })
			require.ErrorContains(t, err, tt.want)
		})
	}
	var got []Listen
	require.NoError(t, ReadInter(strings.NewReader("item_id:token\trating:float\ttimestamp:float\tuser_id:token\n242\t3\t881250949\t196\n"), func(l Listen) error { got = append(got, l); return nil }))
	require.Equal(t, []Listen{{User: "196", Track: "242", At: time.Unix(881250949, 0).UTC(), Scrobble: true}}, got, "columns in any order")
}

func FuzzReadInter(f *testing.F) {
	f.Add("user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n")
	f.Add("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t-1\n")
	f.Add("timestamp:float\n1e300\n")
	f.Fuzz(func(t *testing.T, in string) {
		_ = ReadInter(strings.NewReader(in), func(l Listen) error {
			if l.User == "" || l.Track == "" || l.At.Before(time.Unix(0, 0)) {
				t.Fatalf("accepted a listen without user, track or a time since 1970: %+v", l)
			}
			return nil
		})
	})
}

func TestRecommendAllStopsOnError(t *testing.T) {
	t.Parallel()
	b := NewBuilder(Weighting{})
	for u := range 50 {
		b.Add(Listen{User: string(rune('A' + u)), Track: "t", At: time.Unix(0, 0), Scrobble: true})
	}
	b.AddTrack("other", "")
	d := b.Build()
	boom := context.DeadlineExceeded
	err := RecommendAll(context.Background(), TrainPopularity(d.R), d.R, nil, 5, 2, func(u int, top []Scored) error {
		if u == 7 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
}
