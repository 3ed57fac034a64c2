// Package listengen generates realistic listening with a fixed seed: a
// catalogue, listeners with planted taste clusters, and a time-ordered
// stream of listens. The statistics benchmark (hack/bench/stats) loads it
// into both stores, and the recommendation evaluation trains and tests on it:
// no public music-listening dataset ships in any registry package, so the data
// is generated — and generated in a way whose structure is known, so that a
// recommender can be checked to recover it.
//
// # Model
//
//   - Catalogue: artists belong to one of Clusters taste clusters (a genre);
//     an artist's albums hold 6..16 tracks; a track's popularity follows Zipf
//     (exponent ZipfS) within its cluster, and the global ranking interleaves
//     the clusters' hits. NewReleaseShare of the albums are released between
//     Start and End and cannot be played before; the rest is back catalogue.
//   - Listeners: 1..3 taste clusters each (the first is the main one; cluster
//     popularity itself is mildly Zipf), an activity level (log-normal: a few
//     heavy listeners, many light ones), premium or free, a language that
//     mostly follows the main cluster's, and a join date (most before Start,
//     the rest during the period, never playing before it).
//   - Time: the number of listens per hour follows a daily curve (trough at
//     04:00 UTC, peak in the evening) times a weekly one (weekends higher)
//     times a little noise, allocated exactly so that Each yields Listens.
//   - Sessions: a session is 1..60 consecutive plays (geometric, mean
//     SessionMean) of one listener, each play starting when the previous one
//     ended plus a few seconds. After the first track a session often
//     continues the album or stays with the artist, sometimes repeats a track
//     the listener played recently, otherwise picks afresh: TasteShare of fresh
//     picks come from the listener's clusters, the rest from the global chart,
//     and some from the cluster's releases of the last four weeks.
//   - Skips: a play outside the listener's taste is skipped far more often
//     (SkipOutside) than one inside (SkipInside); a skip plays 3..29 s.
//     Otherwise a play mostly runs to the end.
//
// A listener's plays never overlap, so (listener, second, track) — what the
// listens service hashes into a listen id — is unique in a generated stream.
//
// # Determinism and memory
//
// Everything is drawn from one PCG source seeded by Seed, in a fixed order:
// the same Config gives the same catalogue, listeners and listens, in the same
// order, on every run. Each streams: it keeps the sessions of the current
// hour and what they spill into the next (a few thousand listens), plus a few
// bytes per listener — never the listens already yielded — so 100 million
// listens take the memory of a few thousand.
package listengen

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Config says what to generate. Listeners, Artists, Tracks, Listens, Start
// and End are required; a zero in any other field means the default named in
// its comment (Defaults fills them in).
type Config struct {
	Seed      int64
	Listeners int
	Artists   int
	Tracks    int
	Listens   int64
	// Start and End bound the listens' times: Start <= At < End.
	Start, End time.Time
	// Clusters is the number of planted taste clusters (default 20).
	Clusters int
	// ZipfS is the exponent of track popularity within a cluster and across
	// the catalogue (default 1.0).
	ZipfS float64
	// SessionMean is the mean number of plays in a session (default 8).
	SessionMean float64
	// TasteShare is the share of fresh picks taken from the listener's taste
	// clusters; the rest come from the global chart (default 0.8).
	TasteShare float64
	// SkipInside and SkipOutside are the skip probabilities of a track inside
	// and outside the listener's taste (defaults 0.1 and 0.45).
	SkipInside, SkipOutside float64
	// RepeatShare is the probability that the next play repeats one of the
	// listener's recent tracks (default 0.1).
	RepeatShare float64
	// NewReleaseShare is the share of albums released during Start..End
	// (default 0.1).
	NewReleaseShare float64
	// PremiumShare is the share of premium listeners (default 0.3).
	PremiumShare float64
}

// Track is a generated catalogue track.
type Track struct {
	ID, ArtistID, AlbumID           string
	ArtistName, AlbumName, Name     string
	Cluster                         int
	DurationMS                      int64
	Released                        time.Time
	Index, ArtistIndex, AlbumNumber int // positions: in Tracks(), among artists, of the album in the catalogue
}

// Listener is a generated listener.
type Listener struct {
	ID string
	// Clusters is the planted taste: the clusters this listener mostly plays,
	// the main one first.
	Clusters []int
	Premium  bool
	Language string
	Joined   time.Time
	Index    int // position in Listeners()
}

// Listen is one generated play.
type Listen struct {
	UserID, TrackID      string
	At                   time.Time // whole seconds, UTC
	PlayedMS, DurationMS int64
	Skipped, Premium     bool
	// User and Track are the positions of the listener and the track in
	// Listeners() and Tracks(), for consumers that index arrays.
	User, Track int
	// InTaste: the track is of one of the listener's taste clusters.
	InTaste bool
}

// Defaults returns cfg with every optional zero field set to its default.
func Defaults(cfg Config) Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if cfg.Clusters == 0 {
		cfg.Clusters = 20
	}
	def(&cfg.ZipfS, 1.0)
	def(&cfg.SessionMean, 8)
	def(&cfg.TasteShare, 0.8)
	def(&cfg.SkipInside, 0.1)
	def(&cfg.SkipOutside, 0.45)
	def(&cfg.RepeatShare, 0.1)
	def(&cfg.NewReleaseShare, 0.1)
	def(&cfg.PremiumShare, 0.3)
	return cfg
}

// meanGapS is a play's mean length plus the pause after it, in seconds,
// used only to refuse configurations that ask for more listening than the
// listeners have time for.
const meanGapS = 200

func (c Config) validate() error {
	var errs []error
	if c.Listeners <= 0 || c.Artists <= 0 || c.Tracks <= 0 || c.Listens < 0 {
		errs = append(errs, fmt.Errorf("listeners (%d), artists (%d) and tracks (%d) must be positive, listens (%d) not negative", c.Listeners, c.Artists, c.Tracks, c.Listens))
	}
	if c.Tracks < c.Artists {
		errs = append(errs, fmt.Errorf("tracks (%d) fewer than artists (%d)", c.Tracks, c.Artists))
	}
	if !c.End.After(c.Start) || c.End.Sub(c.Start) < time.Hour {
		errs = append(errs, fmt.Errorf("end (%s) must be at least an hour after start (%s)", c.End, c.Start))
	}
	if c.Clusters <= 0 || c.Clusters > c.Artists {
		errs = append(errs, fmt.Errorf("clusters (%d) must be between 1 and the number of artists", c.Clusters))
	}
	for name, p := range map[string]float64{"TasteShare": c.TasteShare, "SkipInside": c.SkipInside, "SkipOutside": c.SkipOutside,
		"RepeatShare": c.RepeatShare, "NewReleaseShare": c.NewReleaseShare, "PremiumShare": c.PremiumShare} {
		if p < 0 || p > 1 {
			errs = append(errs, fmt.Errorf("%s (%v) is not a probability", name, p))
		}
	}
	if c.ZipfS < 0 || c.SessionMean < 1 {
		errs = append(errs, fmt.Errorf("zipf exponent (%v) must be >= 0 and session mean (%v) >= 1", c.ZipfS, c.SessionMean))
	}
	if len(errs) == 0 && c.Listeners > 0 {
		// Listening time asked per listener against the time available; a
		// fifth of the day is the most a population sustains on average.
		perListener := float64(c.Listens) * meanGapS / float64(c.Listeners)
		if perListener > 0.2*c.End.Sub(c.Start).Seconds() {
			errs = append(errs, fmt.Errorf("%d listens by %d listeners in %s is more than they could play: add listeners or time", c.Listens, c.Listeners, c.End.Sub(c.Start)))
		}
	}
	return errors.Join(errs...)
}

// Generator holds a generated catalogue and listeners; Each streams the
// listens. A Generator is not safe for concurrent Each calls.
type Generator struct {
	cfg       Config
	tracks    []Track
	listeners []Listener
	albums    [][]int // track indices of each album, in track order
	artists   [][]int // album numbers of each artist

	clusterTracks [][]int     // tracks of each cluster by popularity rank
	clusterCum    [][]float64 // cumulative Zipf weights over clusterTracks
	globalTracks  []int       // every track by global rank
	globalCum     []float64
	newReleases   [][]int // each cluster's tracks released after Start, by release time

	activityCum []float64 // cumulative listener activity, for picking who plays
	hourWeights []float64 // relative listens of each hour in Start..End
}

// New builds the catalogue and the listeners of cfg (after Defaults).
func New(cfg Config) (*Generator, error) {
	cfg = Defaults(cfg)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("listengen: %w", err)
	}
	cfg.Start, cfg.End = cfg.Start.UTC().Truncate(time.Second), cfg.End.UTC().Truncate(time.Second)
	g := &Generator{cfg: cfg}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6f76657274757265)) // "overture"
	g.catalogue(r)
	g.people(r)
	g.hours(r)
	return g, nil
}

// Config is the configuration the generator runs with (defaults filled in).
func (g *Generator) Config() Config { return g.cfg }

// Tracks is the catalogue, in a fixed order (Track.Index).
func (g *Generator) Tracks() []Track { return g.tracks }

// Listeners are the listeners, in a fixed order (Listener.Index).
func (g *Generator) Listeners() []Listener { return g.listeners }

// languages are the sign-up languages; cluster c's language is
// languages[c % len].
var languages = []string{"en", "de", "fr", "es", "pt", "ja", "sv", "it", "nl", "pl"}

func uuid(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	a = a&^0xf000 | 0x4000     // version 4
	b = b&^(0xc<<60) | 0x8<<60 // variant 10
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

var syllables = []string{"ka", "lo", "mi", "ra", "ve", "no", "sil", "tor", "an", "el", "dra", "vi", "su", "bel", "mor", "ta",
	"en", "quo", "ri", "sha", "lum", "fa", "zen", "or", "ya", "pe", "gri", "ul", "cas", "dem", "ni", "vo"}

func word(r *rand.Rand, n int) string {
	b := make([]byte, 0, 12)
	for i := range n {
		s := syllables[r.IntN(len(syllables))]
		if i == 0 {
			b = append(b, s[0]-'a'+'A')
			s = s[1:]
		}
		b = append(b, s...)
	}
	return string(b)
}

func name(r *rand.Rand, words int) string {
	s := word(r, 2+r.IntN(2))
	for range words - 1 {
		s += " " + word(r, 1+r.IntN(3))
	}
	return s
}

func zipfCum(n int, s float64) []float64 {
	cum := make([]float64, n)
	t := 0.0
	for i := range n {
		t += 1 / math.Pow(float64(i+1), s)
		cum[i] = t
	}
	return cum
}

func pick(r *rand.Rand, cum []float64) int {
	x := r.Float64() * cum[len(cum)-1]
	i := sort.SearchFloat64s(cum, x)
	return min(i, len(cum)-1)
}

func (g *Generator) catalogue(r *rand.Rand) {
	cfg := g.cfg
	artistCluster := make([]int, cfg.Artists)
	artistIDs, artistNames := make([]string, cfg.Artists), make([]string, cfg.Artists)
	for a := range cfg.Artists {
		artistCluster[a] = a % cfg.Clusters
		artistIDs[a], artistNames[a] = uuid(r), name(r, 1+r.IntN(2))
	}
	// Tracks per artist: every artist has at least one album's worth (or
	// one track), the rest are spread with a skew (some artists are prolific).
	perArtist := make([]int, cfg.Artists)
	base := max(1, min(6, cfg.Tracks/cfg.Artists))
	left := cfg.Tracks
	for a := range perArtist {
		perArtist[a] = min(base, left-(cfg.Artists-a-1))
		left -= perArtist[a]
	}
	skew := zipfCum(cfg.Artists, 0.7)
	order := r.Perm(cfg.Artists)
	for ; left > 0; left-- {
		perArtist[order[pick(r, skew)]]++
	}
	g.artists = make([][]int, cfg.Artists)
	span := 10 * 365 * 24 * time.Hour
	period := cfg.End.Sub(cfg.Start)
	for a := range cfg.Artists {
		for n := perArtist[a]; n > 0; {
			size := min(n, 6+r.IntN(11))
			if n-size < 4 { // no stub album at the end
				size = n
			}
			n -= size
			album := len(g.albums)
			albumID, albumName := uuid(r), name(r, 1+r.IntN(3))
			var released time.Time
			if r.Float64() < cfg.NewReleaseShare {
				released = cfg.Start.Add(time.Duration(r.Int64N(int64(period)))).Truncate(24 * time.Hour)
				if released.Before(cfg.Start) {
					released = cfg.Start
				}
			} else {
				released = cfg.Start.Add(-time.Duration(r.Int64N(int64(span)))).Truncate(24 * time.Hour)
			}
			idx := make([]int, size)
			for k := range size {
				i := len(g.tracks)
				dur := int64(210000 + r.NormFloat64()*60000)
				g.tracks = append(g.tracks, Track{
					ID: uuid(r), ArtistID: artistIDs[a], AlbumID: albumID,
					ArtistName: artistNames[a], AlbumName: albumName, Name: name(r, 1+r.IntN(3)),
					Cluster: artistCluster[a], DurationMS: min(max(dur, 60000), 600000), Released: released,
					Index: i, ArtistIndex: a, AlbumNumber: album,
				})
				idx[k] = i
			}
			g.albums = append(g.albums, idx)
			g.artists[a] = append(g.artists[a], album)
		}
	}
	// Popularity: a random rank within each cluster; the global ranking
	// takes the clusters' ranks in turn (a cluster's hit is a global hit),
	// the clusters in a random order at each rank.
	g.clusterTracks = make([][]int, cfg.Clusters)
	for _, i := range r.Perm(len(g.tracks)) {
		c := g.tracks[i].Cluster
		g.clusterTracks[c] = append(g.clusterTracks[c], i)
	}
	g.clusterCum = make([][]float64, cfg.Clusters)
	longest := 0
	for c, ts := range g.clusterTracks {
		g.clusterCum[c] = zipfCum(len(ts), cfg.ZipfS)
		longest = max(longest, len(ts))
	}
	for rank := range longest {
		for _, c := range r.Perm(cfg.Clusters) {
			if rank < len(g.clusterTracks[c]) {
				g.globalTracks = append(g.globalTracks, g.clusterTracks[c][rank])
			}
		}
	}
	g.globalCum = zipfCum(len(g.globalTracks), cfg.ZipfS)
	g.newReleases = make([][]int, cfg.Clusters)
	for i, t := range g.tracks {
		if !t.Released.Before(cfg.Start) {
			g.newReleases[t.Cluster] = append(g.newReleases[t.Cluster], i)
		}
	}
	for _, nr := range g.newReleases {
		slices.SortStableFunc(nr, func(a, b int) int { return g.tracks[a].Released.Compare(g.tracks[b].Released) })
	}
}

func (g *Generator) people(r *rand.Rand) {
	cfg := g.cfg
	clusterPop := zipfCum(cfg.Clusters, 0.5)
	g.listeners = make([]Listener, cfg.Listeners)
	g.activityCum = make([]float64, cfg.Listeners)
	total := 0.0
	period := cfg.End.Sub(cfg.Start)
	for u := range g.listeners {
		n := 1 + r.IntN(3)
		var cs []int
		for len(cs) < min(n, cfg.Clusters) {
			c := pick(r, clusterPop)
			if !slices.Contains(cs, c) {
				cs = append(cs, c)
			}
		}
		lang := languages[cs[0]%len(languages)]
		if r.Float64() < 0.3 {
			lang = languages[r.IntN(len(languages))]
		}
		joined := cfg.Start.Add(-time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
		if r.Float64() < 0.2 {
			joined = cfg.Start.Add(time.Duration(r.Int64N(int64(period))))
		}
		g.listeners[u] = Listener{ID: uuid(r), Clusters: cs, Premium: r.Float64() < cfg.PremiumShare,
			Language: lang, Joined: joined.Truncate(time.Second), Index: u}
		total += math.Exp(r.NormFloat64() * 1.0)
		g.activityCum[u] = total
	}
}

// daily is the relative listening of each UTC hour; weekly of each weekday
// (Sunday first).
var (
	daily = [24]float64{0.45, 0.3, 0.2, 0.15, 0.12, 0.15, 0.35, 0.7, 0.95, 0.9, 0.85, 0.9,
		1.0, 1.0, 0.95, 0.95, 1.05, 1.25, 1.4, 1.5, 1.45, 1.3, 1.0, 0.7}
	weekly = [7]float64{1.15, 0.9, 0.92, 0.95, 0.97, 1.1, 1.25}
)

func (g *Generator) hours(r *rand.Rand) {
	n := int(math.Ceil(g.cfg.End.Sub(g.cfg.Start).Hours()))
	g.hourWeights = make([]float64, n)
	for h := range n {
		t := g.cfg.Start.Add(time.Duration(h) * time.Hour)
		w := daily[t.Hour()] * weekly[t.Weekday()] * (0.9 + 0.2*r.Float64())
		if end := t.Add(time.Hour); end.After(g.cfg.End) { // a partial last hour
			w *= g.cfg.End.Sub(t).Hours()
		}
		g.hourWeights[h] = w
	}
}

// pending is a generated listen waiting for its turn.
type pending struct {
	at  int64 // l.At, Unix seconds
	seq uint64
	l   Listen
}

type queue []pending

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(pending)) }
func (q *queue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// recentN is how many of a listener's last tracks repeat picks choose from.
const recentN = 8

// run is the state of one Each call.
type run struct {
	g      *Generator
	r      *rand.Rand
	q      queue
	seq    uint64
	busy   []int64 // per listener: Unix second their last planned play ends
	recent [][recentN]int32
	nrec   []uint8
}

// Each calls fn with every listen, in time order (ties in a fixed order),
// the same listens in the same order for the same Config. It stops at fn's
// first error or when ctx ends, and returns that error.
func (g *Generator) Each(ctx context.Context, fn func(Listen) error) error {
	cfg := g.cfg
	ru := &run{g: g, r: rand.New(rand.NewPCG(uint64(cfg.Seed)^0x9e3779b97f4a7c15, 0x6c697374656e73)), // "listens"
		busy: make([]int64, len(g.listeners)), recent: make([][recentN]int32, len(g.listeners)), nrec: make([]uint8, len(g.listeners))}
	total := 0.0
	for _, w := range g.hourWeights {
		total += w
	}
	var cum float64
	var planned int64
	for h, w := range g.hourWeights {
		if err := ctx.Err(); err != nil {
			return err
		}
		cum += w
		upto := int64(math.Round(cum / total * float64(cfg.Listens)))
		if h == len(g.hourWeights)-1 {
			upto = cfg.Listens
		}
		hourStart := cfg.Start.Add(time.Duration(h) * time.Hour)
		hourEnd := min(hourStart.Add(time.Hour).Unix(), cfg.End.Unix())
		for planned < upto {
			planned += int64(ru.session(hourStart.Unix(), hourEnd, int(upto-planned)))
		}
		for len(ru.q) > 0 && ru.q[0].at < hourEnd {
			p := heap.Pop(&ru.q).(pending)
			if err := fn(p.l); err != nil {
				return err
			}
		}
	}
	for len(ru.q) > 0 {
		p := heap.Pop(&ru.q).(pending)
		if err := fn(p.l); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// listener picks who starts a session at start: weighted by activity,
// joined by then and not already playing. It returns the listener and when
// the session can start (start, or later within the hour when every
// candidate was busy).
func (ru *run) listener(start, hourEnd int64) (int, int64) {
	g := ru.g
	best, bestAt := -1, int64(math.MaxInt64)
	for range 32 {
		u := pick(ru.r, g.activityCum)
		if g.listeners[u].Joined.Unix() > start {
			continue
		}
		if ru.busy[u] < start {
			return u, start
		}
		if ru.busy[u] < bestAt {
			best, bestAt = u, ru.busy[u]
		}
	}
	if best >= 0 && bestAt+5 < g.cfg.End.Unix() {
		return best, max(start, bestAt+5)
	}
	if best < 0 { // nobody joined yet among the candidates: the earliest joiner plays
		for u := range g.listeners {
			if best < 0 || g.listeners[u].Joined.Before(g.listeners[best].Joined) {
				best = u
			}
		}
	}
	return best, start
}

func (ru *run) inTaste(u, t int) bool {
	return slices.Contains(ru.g.listeners[u].Clusters, ru.g.tracks[t].Cluster)
}

// fresh picks a new track for listener u at time at (Unix seconds): from a
// taste cluster (sometimes its recent releases) or from the global chart,
// never one not yet released.
func (ru *run) fresh(u int, at int64) int {
	g, r := ru.g, ru.r
	cs := g.listeners[u].Clusters
	for range 16 {
		var t int
		if r.Float64() < g.cfg.TasteShare {
			c := cs[0]
			if len(cs) > 1 && r.Float64() >= 0.6 { // the main cluster gets 60%
				c = cs[1+r.IntN(len(cs)-1)]
			}
			if nr := g.newReleases[c]; len(nr) > 0 && r.Float64() < 0.05 {
				// a release of the last four weeks, if there is one
				hi := sort.Search(len(nr), func(i int) bool { return g.tracks[nr[i]].Released.Unix() > at })
				lo := sort.Search(len(nr), func(i int) bool { return g.tracks[nr[i]].Released.Unix() > at-28*86400 })
				if hi > lo {
					return nr[lo+r.IntN(hi-lo)]
				}
			}
			t = g.clusterTracks[c][pick(r, g.clusterCum[c])]
		} else {
			t = g.globalTracks[pick(r, g.globalCum)]
		}
		if g.tracks[t].Released.Unix() <= at {
			return t
		}
	}
	for _, t := range g.globalTracks { // the most popular released track
		if g.tracks[t].Released.Unix() <= at {
			return t
		}
	}
	return g.globalTracks[0] // unreachable: back catalogue is released before Start
}

func (ru *run) remember(u, t int) {
	// nrec counts plays up to recentN, then cycles through recentN..2*recentN-1
	// so that nrec % recentN stays the ring's next slot.
	n := ru.nrec[u]
	ru.recent[u][n%recentN] = int32(t)
	if n++; n >= 2*recentN {
		n = recentN
	}
	ru.nrec[u] = n
}

// next picks the track after prev in a session of listener u.
func (ru *run) next(u, prev int, at int64) int {
	g, r := ru.g, ru.r
	x := r.Float64()
	pt := g.tracks[prev]
	switch {
	case x < 0.35: // the album goes on
		alb := g.albums[pt.AlbumNumber]
		if k := slices.Index(alb, prev); k+1 < len(alb) {
			return alb[k+1]
		}
	case x < 0.5: // the same artist, another album's track
		albs := g.artists[pt.ArtistIndex]
		alb := g.albums[albs[r.IntN(len(albs))]]
		if t := alb[r.IntN(len(alb))]; g.tracks[t].Released.Unix() <= at {
			return t
		}
	case x < 0.5+g.cfg.RepeatShare:
		if n := min(int(ru.nrec[u]), recentN); n > 0 {
			return int(ru.recent[u][r.IntN(n)])
		}
	}
	return ru.fresh(u, at)
}

// session plans a session starting in the hour from hourStart, of at most
// limit plays, queues its listens and returns how many.
func (ru *run) session(hourStart, hourEnd int64, limit int) int {
	g, r := ru.g, ru.r
	end := g.cfg.End.Unix()
	u, at := ru.listener(hourStart+r.Int64N(hourEnd-hourStart), hourEnd)
	n := min(limit, 1+int(math.Floor(math.Log(1-r.Float64())/math.Log(1-1/g.cfg.SessionMean))), 60)
	lis := g.listeners[u]
	t := -1
	count := 0
	for count < n && at < end {
		if t < 0 {
			t = ru.fresh(u, at)
		} else {
			t = ru.next(u, t, at)
		}
		tr := g.tracks[t]
		in := ru.inTaste(u, t)
		skipP := g.cfg.SkipOutside
		if in {
			skipP = g.cfg.SkipInside
		}
		played, skipped := tr.DurationMS, false
		switch y := r.Float64(); {
		case y < skipP:
			skipped, played = true, min(tr.DurationMS, 3000+r.Int64N(27000))
		case y < skipP+0.08: // stopped part way, not a skip
			played = tr.DurationMS/2 + r.Int64N(tr.DurationMS/2)
		}
		heap.Push(&ru.q, pending{l: Listen{UserID: lis.ID, TrackID: tr.ID, At: time.Unix(at, 0).UTC(), PlayedMS: played,
			DurationMS: tr.DurationMS, Skipped: skipped, Premium: lis.Premium, User: u, Track: t, InTaste: in}, at: at, seq: ru.seq})
		ru.seq++
		ru.remember(u, t)
		count++
		at += (played+999)/1000 + 1 + r.Int64N(5)
	}
	ru.busy[u] = at
	return count
}
