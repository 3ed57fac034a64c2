package listengen

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

func smallConfig() Config {
	return Config{Seed: 42, Listeners: 2000, Artists: 400, Tracks: 5000, Listens: 200_000,
		Start: start, End: start.AddDate(0, 0, 56), Clusters: 10}
}

var (
	sampleOnce sync.Once
	sampleGen  *Generator
	sample     []Listen
)

// small generates smallConfig's listens once for the tests that only read them.
func small(t *testing.T) (*Generator, []Listen) {
	t.Helper()
	sampleOnce.Do(func() {
		g, err := New(smallConfig())
		if err != nil {
			panic(err)
		}
		sampleGen = g
		_ = g.Each(context.Background(), func(l Listen) error { sample = append(sample, l); return nil })
	})
	require.NotNil(t, sampleGen)
	return sampleGen, sample
}

func digest(t *testing.T, cfg Config) string {
	t.Helper()
	g, err := New(cfg)
	require.NoError(t, err)
	h := sha256.New()
	for _, tr := range g.Tracks() {
		fmt.Fprintln(h, tr)
	}
	for _, l := range g.Listeners() {
		fmt.Fprintln(h, l)
	}
	require.NoError(t, g.Each(context.Background(), func(l Listen) error { fmt.Fprintln(h, l); return nil }))
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Listens = 20_000
	a, b := digest(t, cfg), digest(t, cfg)
	require.Equal(t, a, b, "the same seed gives the same catalogue, listeners and listens")
	cfg.Seed++
	require.NotEqual(t, a, digest(t, cfg), "another seed gives other data")
}

func TestCountsAndOrder(t *testing.T) {
	t.Parallel()
	g, ls := small(t)
	cfg := g.Config()
	require.Len(t, g.Tracks(), cfg.Tracks)
	require.Len(t, g.Listeners(), cfg.Listeners)
	require.Len(t, ls, int(cfg.Listens))

	ids := map[string]bool{}
	for i, tr := range g.Tracks() {
		require.Equal(t, i, tr.Index)
		require.False(t, ids[tr.ID], "track ids are unique")
		ids[tr.ID] = true
		require.GreaterOrEqual(t, tr.DurationMS, int64(60000))
	}
	type key struct {
		user  int
		at    int64
		track int
	}
	seen := map[key]bool{}
	lastEnd := map[int]int64{} // per listener: when their previous play ended (ms)
	for i, l := range ls {
		require.False(t, l.At.Before(cfg.Start) || !l.At.Before(cfg.End), "listen %d at %s outside the period", i, l.At)
		if i > 0 {
			require.False(t, l.At.Before(ls[i-1].At), "listen %d is before the one yielded before it", i)
		}
		tr, u := g.Tracks()[l.Track], g.Listeners()[l.User]
		require.Equal(t, tr.ID, l.TrackID)
		require.Equal(t, u.ID, l.UserID)
		require.False(t, l.At.Before(tr.Released), "played before its release")
		require.False(t, l.At.Before(u.Joined), "played before the listener joined")
		require.LessOrEqual(t, l.PlayedMS, l.DurationMS)
		require.Greater(t, l.PlayedMS, int64(0))
		k := key{l.User, l.At.Unix(), l.Track}
		require.False(t, seen[k], "listener, second and track are unique (the listen id)")
		seen[k] = true
		require.GreaterOrEqual(t, l.At.UnixMilli(), lastEnd[l.User], "a listener's plays never overlap")
		lastEnd[l.User] = l.At.UnixMilli() + l.PlayedMS
	}
}

func TestSeasonality(t *testing.T) {
	t.Parallel()
	_, ls := small(t)
	var hour [24]int
	var weekday [7]int
	for _, l := range ls {
		hour[l.At.Hour()]++
		weekday[l.At.Weekday()]++
	}
	night := hour[2] + hour[3] + hour[4] + hour[5]
	evening := hour[18] + hour[19] + hour[20] + hour[21]
	require.Greater(t, evening, 4*night, "evenings are busier than nights: %v", hour)
	weekend := float64(weekday[time.Saturday]+weekday[time.Sunday]) / 2
	weekdays := float64(weekday[time.Monday]+weekday[time.Tuesday]+weekday[time.Wednesday]+weekday[time.Thursday]) / 4
	require.Greater(t, weekend, 1.15*weekdays, "weekends are busier than weekdays: %v", weekday)
}

// TestClusterAffinity: the planted taste is recoverable from the listens
// alone — the cluster a listener plays most is their main one — and skips
// say the same thing.
func TestClusterAffinity(t *testing.T) {
	t.Parallel()
	g, ls := small(t)
	plays := map[int]map[int]int{}
	var in, out, skipIn, skipOut int
	for _, l := range ls {
		c := g.Tracks()[l.Track].Cluster
		if plays[l.User] == nil {
			plays[l.User] = map[int]int{}
		}
		plays[l.User][c]++
		require.Equal(t, l.InTaste, contains(g.Listeners()[l.User].Clusters, c))
		if l.InTaste {
			in++
			if l.Skipped {
				skipIn++
			}
		} else {
			out++
			if l.Skipped {
				skipOut++
			}
		}
	}
	share := float64(in) / float64(in+out)
	require.Greater(t, share, 0.7, "most plays are in the listener's taste")
	require.Less(t, share, 0.97, "some plays are outside it (global hits)")
	require.Greater(t, float64(skipOut)/float64(out), 2*float64(skipIn)/float64(in), "plays outside the taste are skipped more")

	var judged, recovered int
	for u, byCluster := range plays {
		total, best, bestN := 0, -1, 0
		for c, n := range byCluster {
			total += n
			if n > bestN || n == bestN && c < best {
				best, bestN = c, n
			}
		}
		if total < 30 {
			continue
		}
		judged++
		if best == g.Listeners()[u].Clusters[0] {
			recovered++
		}
	}
	require.Greater(t, judged, 500)
	require.Greater(t, float64(recovered)/float64(judged), 0.8, "the most played cluster is the planted main one")
}

func contains(cs []int, c int) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func TestPopularityIsSkewed(t *testing.T) {
	t.Parallel()
	g, ls := small(t)
	counts := make([]int, len(g.Tracks()))
	for _, l := range ls {
		counts[l.Track]++
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	top := 0
	for _, n := range counts[:len(counts)/100] {
		top += n
	}
	require.Greater(t, float64(top)/float64(len(ls)), 0.15, "the top 1%% of tracks draw a large share")
	require.Greater(t, counts[0], 20*max(1, counts[len(counts)/2]), "the top track is played far more than the median one")
}

// TestSessions: a session is consecutive plays of one listener that often
// stay with the artist; listeners come back to tracks; new releases are
// played soon after they come out.
func TestSessions(t *testing.T) {
	t.Parallel()
	g, ls := small(t)
	prev := map[int]Listen{}
	var follow, sameArtist, repeats int
	heard := map[[2]int]bool{}
	var newRelease, soon int
	for _, l := range ls {
		if p, ok := prev[l.User]; ok && l.At.Sub(p.At) < time.Duration(p.PlayedMS)*time.Millisecond+10*time.Second {
			follow++
			if g.Tracks()[p.Track].ArtistIndex == g.Tracks()[l.Track].ArtistIndex {
				sameArtist++
			}
		}
		prev[l.User] = l
		k := [2]int{l.User, l.Track}
		if heard[k] {
			repeats++
		}
		heard[k] = true
		if r := g.Tracks()[l.Track].Released; !r.Before(g.Config().Start) {
			newRelease++
			if l.At.Sub(r) < 28*24*time.Hour {
				soon++
			}
		}
	}
	require.Greater(t, follow, len(ls)/2, "most plays follow another in a session")
	require.Greater(t, float64(sameArtist)/float64(follow), 0.3, "sessions often stay with the artist")
	require.Greater(t, repeats, len(ls)/10, "listeners repeat tracks")
	require.Greater(t, newRelease, 0)
	require.Greater(t, float64(soon)/float64(newRelease), 0.3, "new releases are played soon after release")
}

// TestMemoryBounded: the live heap while streaming stays that of the
// catalogue and the listeners, however many listens have been yielded.
func TestMemoryBounded(t *testing.T) {
	cfg := smallConfig()
	cfg.Listens = 600_000
	cfg.End = start.AddDate(0, 0, 90)
	g, err := New(cfg)
	require.NoError(t, err)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	var n int64
	require.NoError(t, g.Each(context.Background(), func(Listen) error {
		if n++; n%100_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	}))
	require.Equal(t, cfg.Listens, n)
	// Holding the 600,000 listens would take about 60 MB (a Listen is ~100 bytes).
	require.Less(t, int64(peak)-int64(base), int64(8<<20), "heap grew by %d bytes while streaming", int64(peak)-int64(base))
}

func TestStopsAtError(t *testing.T) {
	t.Parallel()
	g, err := New(smallConfig())
	require.NoError(t, err)
	stop := errors.New("enough")
	n := 0
	err = g.Each(context.Background(), func(Listen) error {
		if n++; n == 1000 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1000, n)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, g.Each(ctx, func(Listen) error { return nil }), context.Canceled)
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*Config){
		"no listeners":            func(c *Config) { c.Listeners = 0 },
		"fewer tracks":            func(c *Config) { c.Tracks = c.Artists - 1 },
		"end before start":        func(c *Config) { c.End = c.Start },
		"more clusters":           func(c *Config) { c.Clusters = c.Artists + 1 },
		"not a probability":       func(c *Config) { c.TasteShare = 1.5 },
		"more than they can play": func(c *Config) { c.Listens = 1_000_000_000 },
		"negative listens":        func(c *Config) { c.Listens = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig()
			change(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
		})
	}
}

// BenchmarkEach measures generation speed (listens per second) at a
// catalogue of the recommendation benchmark's size.
func BenchmarkEach(b *testing.B) {
	cfg := Config{Seed: 1, Listeners: 100_000, Artists: 5000, Tracks: 50_000, Listens: 1_000_000,
		Start: start, End: start.AddDate(1, 0, 0)}
	g, err := New(cfg)
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		require.NoError(b, g.Each(context.Background(), func(Listen) error { return nil }))
	}
	b.ReportMetric(float64(cfg.Listens)*float64(b.N)/b.Elapsed().Seconds(), "listens/s")
}
