package feed

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/token"
)

// GET /v1/me/feed: the home feed (issue 14). Sections, each with an id, a
// title key for the client's texts, and the reason it is there:
//
//   - new-releases: tracks published in the last NewReleaseWindow by the
//     artists the listener plays most;
//   - because-you-listened:<track>: the stored co-occurrence section split
//     by the played track each recommendation is most similar to (the X);
//   - daily-mix: the listener's favourites blended with the stored ALS
//     discoveries, made at the first request of the (UTC) day and kept for
//     the day (table feed_daily_mix);
//   - charts: the week's most played tracks (the catalogue's most popular
//     when there is no chart yet).
//
// A listener without a stored result (cold start) gets, from what they did
// do: your-language (a Russian account: Cyrillic-named artists first),
// your-searches (the artists their searches found), new-releases,
// your-plays (more from the artists of their first plays), and the charts —
// never an empty page.
//
// Discovery sections (their "discovery" is true) never hold a track the
// listener played: the stored result left out their training window's
// plays, and each request leaves out their last HeardLimit plays. A track
// is in one discovery section at most.
//
// Cost per request: the stored result and the daily mix by primary key,
// and the listener's last plays (one indexed read); everything else comes
// from bounded in-process caches (home_sources.go). The answer carries an
// ETag (a hash of the body) and Cache-Control private; If-None-Match → 304.

// Section kinds of the home feed.
const (
	KindNewReleases = "new-releases"
	KindBecause     = "because-you-listened"
	KindDailyMix    = "daily-mix"
	KindCharts      = "charts"
	KindLanguage    = "your-language"
	KindSearches    = "your-searches"
	KindPlays       = "your-plays"
)

// Kinds is every section kind, in the order of the ?sections= help.
var Kinds = []string{KindNewReleases, KindBecause, KindDailyMix, KindCharts, KindLanguage, KindSearches, KindPlays}

// Home feed settings.
const (
	// HomeMaxAge is how long a client may reuse a feed without asking.
	HomeMaxAge = time.Minute
	// DegradedMaxAge is the same for a feed made while an upstream failed.
	DegradedMaxAge = 5 * time.Second
	// HeardLimit is how many of the listener's last plays each request
	// leaves out of the discovery sections.
	HeardLimit = 500
	// NewReleaseWindow is how recent a new release is (by the read model's
	// published_at: the catalogue keeps no other release time than an
	// album's year).
	NewReleaseWindow = 30 * 24 * time.Hour
	// DefaultLimit and MaxLimit bound ?limit=, the tracks per section.
	DefaultLimit = 20
	MaxLimit     = 50
	// topArtists is how many played (or searched) artists a section draws
	// from; maxBecause how many "because you listened to" sections there
	// are.
	topArtists = 5
	maxBecause = 2
	// playedWindow is the listening a listener's top artists come from.
	playedWindow = 90 * 24 * time.Hour
	// firstPlays is how many of a new listener's last played tracks their
	// neighbours are summed over.
	firstPlays = 20
)

// Home is the body of GET /v1/me/feed.
type Home struct {
	UserID string `json:"user_id"`
	// Day is the UTC day the daily mix is for.
	Day string `json:"day"`
	// Locale is the account's locale, asked of auth for a cold start only
	// ("" otherwise, or when auth did not answer).
	Locale string `json:"locale"`
	// ColdStart: there is no stored result for the listener yet.
	ColdStart bool `json:"cold_start"`
	// ResultVersion is the stored result's version the sections used.
	ResultVersion string        `json:"result_version,omitempty"`
	Sections      []HomeSection `json:"sections"`
}

// HomeSection is one section of the home feed.
type HomeSection struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Title is the key of the section's title in the client's texts.
	Title  string `json:"title"`
	Reason string `json:"reason"`
	// Model is what chose the tracks.
	Model string `json:"model"`
	// Discovery: the section holds no track the listener played.
	Discovery bool `json:"discovery"`
	// Because is the played track a because-you-listened section is about.
	Because *search.Track `json:"because,omitempty"`
	// Artists are the artists the section draws from, when it does.
	Artists []search.Artist `json:"artists,omitempty"`
	Tracks  []Card          `json:"tracks"`
}

// Card is a track as a client renders it: the query service's card.
type Card struct {
	search.Track
	// Familiar marks a daily-mix track that is one of the listener's
	// favourites.
	Familiar bool `json:"familiar,omitempty"`
}

// homeParams are GET /v1/me/feed's parameters.
type homeParams struct {
	kinds map[string]bool
	limit int
}

func badParam(name, format string, args ...any) error {
	return problem.New(http.StatusBadRequest, "invalid-parameter", "parameter "+name+": "+fmt.Sprintf(format, args...))
}

// parseHome reads ?sections=a,b (default: all) and ?limit= (tracks per
// section); any other parameter is refused.
func parseHome(q url.Values) (homeParams, error) {
	p := homeParams{kinds: map[string]bool{}, limit: DefaultLimit}
	for name, vs := range q {
		if name != "sections" && name != "limit" {
			return p, badParam(name, "unknown (GET /v1/me/feed takes sections and limit)")
		}
		if len(vs) > 1 {
			return p, badParam(name, "give it once")
		}
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil {
			return p, badParam("limit", "%q is not an integer", v[0])
		}
		if n < 1 || n > MaxLimit {
			return p, badParam("limit", "%d is outside 1..%d", n, MaxLimit)
		}
		p.limit = n
	}
	if v, ok := q["sections"]; ok {
		for k := range strings.SplitSeq(v[0], ",") {
			k = strings.TrimSpace(k)
			if !slices.Contains(Kinds, k) {
				return p, badParam("sections", "unknown section %q (known: %s)", k, strings.Join(Kinds, ", "))
			}
			p.kinds[k] = true
		}
	} else {
		for _, k := range Kinds {
			p.kinds[k] = true
		}
	}
	return p, nil
}

// profile is what the feed knows of a listener beyond their stored result,
// kept for ProfileTTL while their newest listen stays the same.
type profile struct {
	key    string
	locale string
	// played are the artists of their most played tracks, most played
	// first (at most topArtists).
	played []search.Artist
	// favourites are their most played tracks (scrobbles over
	// playedWindow), most played first.
	favourites []string
	// searched is their search log, newest first.
	searched []searched
	degraded bool
}

// homeBuild is one request's feed in the making.
type homeBuild struct {
	s     *Service
	ctx   context.Context
	user  string
	now   time.Time
	p     homeParams
	heard map[string]bool
	// played are the distinct tracks of their last plays, newest first.
	played []string
	// shown are the tracks an earlier discovery section holds: a track is
	// in one of them at most.
	shown  map[string]bool
	stored *result.Body
	prof   profile
	home   Home
	// degraded: an upstream failed; the answer is short-lived.
	degraded bool
}

// home is GET /v1/me/feed.
func (s *Service) home(w http.ResponseWriter, r *http.Request) error {
	p, err := parseHome(r.URL.Query())
	if err != nil {
		return err
	}
	c, _ := token.FromContext(r.Context())
	now := s.now()
	b := &homeBuild{s: s, ctx: r.Context(), user: c.Subject, now: now, p: p, heard: map[string]bool{}, shown: map[string]bool{}}
	b.home = Home{UserID: c.Subject, Day: now.UTC().Format(time.DateOnly), Sections: []HomeSection{}}
	stored, err := s.results.Get(r.Context(), c.Subject)
	switch {
	case errors.Is(err, result.ErrNone):
		b.home.ColdStart = true
	case err != nil:
		return err
	}
	recent, err := s.Stats.Recent(r.Context(), c.Subject, HeardLimit)
	if err != nil {
		return err
	}
	// The feed made from the same inputs, made less than HomeMaxAge ago.
	key := memoKey(p, stored.ETag, recent, b.home.Day)
	if m, ok := s.memo.get(c.Subject, now); ok && m.key == key {
		answerHome(w, r, m.body, m.etag, HomeMaxAge)
		return nil
	}
	if !b.home.ColdStart {
		var body result.Body
		if err := json.Unmarshal(stored.Body, &body); err != nil {
			return fmt.Errorf("decoding the stored recommendations of %s: %w", c.Subject, err)
		}
		b.stored = &body
		b.home.ResultVersion = body.Version
	}
	for _, l := range recent {
		if l.TrackID != "" && !b.heard[l.TrackID] {
			b.heard[l.TrackID] = true
			b.played = append(b.played, l.TrackID)
		}
	}
	b.prof = s.profileOf(r.Context(), c.Subject, token.Bearer(r), b.home.ColdStart, recent, now)
	b.degraded = b.prof.degraded
	b.home.Locale = b.prof.locale
	if err := b.build(); err != nil {
		return err
	}
	raw, err := json.Marshal(b.home)
	if err != nil {
		return fmt.Errorf("encoding the feed of %s: %w", c.Subject, err)
	}
	sum := sha256.Sum256(raw)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	maxAge := HomeMaxAge
	if b.degraded {
		maxAge = DegradedMaxAge
	} else {
		s.memo.put(c.Subject, memo{key: key, etag: etag, body: raw}, now)
	}
	answerHome(w, r, raw, etag, maxAge)
	return nil
}

// memo is a feed as answered, and the inputs it was made from.
type memo struct {
	key, etag string
	body      []byte
}

// memoKey names what a feed was made from that can change at any moment:
// the parameters, the stored result, the listener's plays and the day. The
// rest (the catalogue, the chart, the search log) may be HomeMaxAge old.
func memoKey(p homeParams, resultETag string, recent []stats.Listen, day string) string {
	var k strings.Builder
	for _, kind := range Kinds {
		if p.kinds[kind] {
			k.WriteString(kind + ",")
		}
	}
	fmt.Fprintf(&k, "%d|%s|%d|%s", p.limit, resultETag, len(recent), day)
	if len(recent) > 0 {
		k.WriteString("|" + recent[0].ID)
	}
	return k.String()
}

// answerHome writes a feed with its validator.
func answerHome(w http.ResponseWriter, r *http.Request, raw []byte, etag string, maxAge time.Duration) {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(maxAge.Seconds())))
	h.Set("Vary", "Authorization")
	if match(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}

// profileOf is the listener's profile, from the cache while their newest
// listen is the same, else from the statistics store and the upstreams.
// Their locale and searches are asked for only for a cold start, the one
// that uses them.
func (s *Service) profileOf(ctx context.Context, user, bearer string, cold bool, recent []stats.Listen, now time.Time) profile {
	key := strconv.FormatBool(cold) + "/" + strconv.Itoa(len(recent))
	if len(recent) > 0 {
		key += "/" + recent[0].ID
	}
	if p, ok := s.up.profile.get(user, now); ok && p.key == key {
		return p
	}
	p := profile{key: key}
	warn := func(what string, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			p.degraded = true
			s.Log.WarnContext(ctx, "home feed: "+what+" unavailable, the feed goes without it", "error", err)
		}
	}
	var err error
	if cold {
		p.locale, err = s.up.Locale(ctx, bearer)
		warn("the account's locale (auth)", err)
		p.searched, err = s.up.Searches(ctx, bearer)
		warn("the search log (query)", err)
	}
	p.played, p.favourites, err = s.playedArtists(ctx, user, recent, now)
	warn("the played artists", err)
	if !p.degraded {
		s.up.profile.put(user, p, now)
	}
	return p
}

// playedArtists are the artists of the listener's most played tracks
// (scrobbles over playedWindow, then their last plays), most played first,
// and those top tracks.
func (s *Service) playedArtists(ctx context.Context, user string, recent []stats.Listen, now time.Time) ([]search.Artist, []string, error) {
	top, err := s.Stats.Top(ctx, user, stats.Tracks, playedWindow, now, 50)
	if err != nil {
		return nil, nil, err
	}
	var favourites []string
	for _, e := range top {
		if e.TrackID != "" {
			favourites = append(favourites, e.TrackID)
		}
	}
	plays := map[string]int64{}
	var ids []string
	add := func(id string, n int64) {
		if id == "" {
			return
		}
		if _, ok := plays[id]; !ok {
			ids = append(ids, id)
		}
		plays[id] += n
	}
	for _, e := range top {
		add(e.TrackID, e.Count)
	}
	for _, l := range recent[:min(len(recent), 50)] {
		if _, ok := plays[l.TrackID]; !ok {
			add(l.TrackID, 1)
		}
	}
	cards, err := s.up.Cards(ctx, ids, now)
	weight := map[string]int64{}
	var artists []search.Artist
	for _, id := range ids {
		for _, a := range cards[id].Artists {
			if _, ok := weight[a.ID]; !ok {
				artists = append(artists, a)
			}
			weight[a.ID] += plays[id]
		}
	}
	slices.SortStableFunc(artists, func(a, b search.Artist) int { return cmp.Compare(weight[b.ID], weight[a.ID]) })
	return artists[:min(len(artists), topArtists)], favourites, err
}

// build makes the sections the parameters ask for.
func (b *homeBuild) build() error {
	if b.home.ColdStart {
		b.language()
		b.fromSearches()
		b.newReleases()
		if err := b.fromPlays(); err != nil {
			return err
		}
	} else {
		b.newReleases()
		b.because()
		if err := b.dailyMix(); err != nil {
			return err
		}
	}
	return b.charts()
}

func (b *homeBuild) add(sec HomeSection) {
	if b.p.kinds[sec.Kind] {
		b.home.Sections = append(b.home.Sections, sec)
	}
}

// fail notes an upstream failure: the section goes without what failed.
func (b *homeBuild) fail(what string, err error) {
	if err != nil && b.ctx.Err() == nil {
		b.degraded = true
		b.s.Log.WarnContext(b.ctx, "home feed: "+what+" unavailable, the feed goes without it", "error", err)
	}
}

// fresh is ts without what the listener heard and what an earlier
// discovery section holds, at most limit, as cards; they count as shown.
func (b *homeBuild) fresh(ts []search.Track, limit int) []Card {
	out := []Card{}
	for _, t := range ts {
		if len(out) == limit {
			break
		}
		if t.ID == "" || b.heard[t.ID] || b.shown[t.ID] {
			continue
		}
		b.shown[t.ID] = true
		out = append(out, Card{Track: t})
	}
	return out
}

// artistsTracks is the most popular tracks of artists, taken in turn (one
// of each, then the next of each …), keep deciding which count.
func (b *homeBuild) artistsTracks(artists []search.Artist, keep func(search.Track) bool) []search.Track {
	// The artists' tracks not cached yet are asked for at once (at most
	// topArtists requests in flight).
	all := make([][]search.Track, len(artists))
	errs := make([]error, len(artists))
	var wg sync.WaitGroup
	for i, a := range artists {
		wg.Go(func() { all[i], errs[i] = b.s.up.ArtistTracks(b.ctx, a.ID, b.now) })
	}
	wg.Wait()
	var lists [][]search.Track
	for i, ts := range all {
		b.fail("the tracks of artist "+artists[i].ID, errs[i])
		var kept []search.Track
		for _, t := range ts {
			if keep == nil || keep(t) {
				kept = append(kept, t)
			}
		}
		lists = append(lists, kept)
	}
	var out []search.Track
	for k := 0; ; k++ {
		more := false
		for _, l := range lists {
			if k < len(l) {
				out = append(out, l[k])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

func names(as []search.Artist) string {
	ns := make([]string, len(as))
	for i, a := range as {
		ns[i] = a.Name
	}
	return strings.Join(ns, ", ")
}

func (b *homeBuild) newReleases() {
	if !b.p.kinds[KindNewReleases] || len(b.prof.played) == 0 {
		return
	}
	since := b.now.Add(-NewReleaseWindow)
	ts := b.artistsTracks(b.prof.played, func(t search.Track) bool { return t.PublishedAt.After(since) })
	slices.SortStableFunc(ts, func(x, y search.Track) int { return y.PublishedAt.Compare(x.PublishedAt) })
	cards := b.fresh(ts, b.p.limit)
	if len(cards) == 0 {
		return
	}
	b.add(HomeSection{ID: KindNewReleases, Kind: KindNewReleases, Title: "feed.new_releases", Model: "catalog-new-releases", Discovery: true,
		Artists: b.prof.played, Tracks: cards,
		Reason: fmt.Sprintf("published in the last %d days by artists you play most: %s", int(NewReleaseWindow.Hours()/24), names(b.prof.played))})
}

// because splits the stored co-occurrence section by its X.
func (b *homeBuild) because() {
	if !b.p.kinds[KindBecause] {
		return
	}
	var groups []string
	byX := map[string][]string{}
	for _, sec := range b.stored.Sections {
		if sec.ID != KindBecause {
			continue
		}
		for _, t := range sec.Tracks {
			if t.Because == "" || b.heard[t.TrackID] {
				continue
			}
			if _, ok := byX[t.Because]; !ok {
				groups = append(groups, t.Because)
			}
			byX[t.Because] = append(byX[t.Because], t.TrackID)
		}
	}
	var ids []string
	for _, x := range groups[:min(len(groups), maxBecause*3)] {
		ids = append(ids, x)
		ids = append(ids, byX[x]...)
	}
	cards, err := b.s.up.Cards(b.ctx, ids, b.now)
	b.fail("track cards", err)
	n := 0
	for _, x := range groups {
		xc, ok := cards[x]
		if !ok || n == maxBecause {
			continue
		}
		var ts []search.Track
		for _, id := range byX[x] {
			if t, ok := cards[id]; ok {
				ts = append(ts, t)
			}
		}
		tracks := b.fresh(ts, b.p.limit)
		if len(tracks) == 0 {
			continue
		}
		n++
		b.add(HomeSection{ID: KindBecause + ":" + x, Kind: KindBecause, Title: "feed.because", Model: "cooccurrence-tracks", Discovery: true,
			Because: &xc, Tracks: tracks,
			Reason: fmt.Sprintf("because you listened to %s by %s: often played by the listeners of that track", xc.Title, names(xc.Artists))})
	}
}

func (b *homeBuild) dailyMix() error {
	if !b.p.kinds[KindDailyMix] {
		return nil
	}
	mix, err := b.s.mixOf(b.ctx, b.user, b.now, b.stored, b.prof.favourites, b.heard)
	if err != nil {
		return err
	}
	cards, err := b.s.up.Cards(b.ctx, mix.Tracks, b.now)
	b.fail("track cards", err)
	tracks := []Card{}
	for i, id := range mix.Tracks {
		if t, ok := cards[id]; ok && len(tracks) < b.p.limit {
			tracks = append(tracks, Card{Track: t, Familiar: mix.Familiar[i]})
		}
	}
	if len(tracks) == 0 {
		return nil
	}
	b.add(HomeSection{ID: KindDailyMix, Kind: KindDailyMix, Title: "feed.daily_mix", Model: "als+favourites", Tracks: tracks,
		Reason: "today's mix, the same all day: your most played tracks among tracks new to you that listeners with your taste play"})
	return nil
}

// charts is the week's chart, else the catalogue's most popular tracks, so
// that the page is never empty.
func (b *homeBuild) charts() error {
	chart, err := b.s.chart(b.ctx, b.now)
	if err != nil {
		return err
	}
	var ids []string
	for _, e := range chart.Entries {
		ids = append(ids, e.TrackID)
	}
	cards, err := b.s.up.Cards(b.ctx, ids, b.now)
	b.fail("track cards", err)
	tracks := []Card{}
	for _, e := range chart.Entries {
		if len(tracks) == b.p.limit || e.TrackID == "" {
			continue
		}
		t, ok := cards[e.TrackID]
		if !ok && err == nil {
			continue // unpublished since
		}
		if !ok { // the query service is down: what the chart itself says
			t = search.Track{ID: e.TrackID, Title: e.TrackName, Artists: []search.Artist{{Name: e.ArtistName}}, Renditions: []string{}}
		}
		tracks = append(tracks, Card{Track: t})
	}
	reason, model := "the week's most played tracks on Overture", "charts-weekly"
	if len(tracks) == 0 {
		popular, err := b.s.up.Popular(b.ctx, b.now)
		b.fail("the catalogue's popular tracks", err)
		for _, t := range popular[:min(len(popular), b.p.limit)] {
			tracks = append(tracks, Card{Track: t})
		}
		reason, model = "no chart yet this week: the catalogue's most popular tracks", "catalog-popularity"
	}
	b.add(HomeSection{ID: KindCharts, Kind: KindCharts, Title: "feed.charts", Model: model, Reason: reason, Tracks: tracks})
	return nil
}

// chart is the newest weekly track chart, kept for ChartTTL.
func (s *Service) chart(ctx context.Context, now time.Time) (stats.Chart, error) {
	if c, ok := s.up.chart.get("", now); ok {
		return c, nil
	}
	c, err := s.Stats.Chart(ctx, stats.Weekly, stats.Tracks, time.Time{})
	if err != nil && !errors.Is(err, stats.ErrNoChart) {
		return c, err
	}
	s.up.chart.put("", c, now)
	return c, nil
}

// cyrillic reports whether s is written mostly in Cyrillic letters.
func cyrillic(s string) bool {
	cyr, letters := 0, 0
	for _, r := range s {
		if unicode.IsLetter(r) {
			letters++
			if unicode.Is(unicode.Cyrillic, r) {
				cyr++
			}
		}
	}
	return letters > 0 && cyr*2 >= letters
}

// language is the cold start's sign-up language: for a Russian account,
// the chart's and the catalogue's popular tracks by Cyrillic-named artists
// (or with Cyrillic titles). The catalogue records no language for a track,
// so the script of the names is the signal, and the reason says so.
func (b *homeBuild) language() {
	if !b.p.kinds[KindLanguage] || b.prof.locale != "ru" {
		return
	}
	chart, err := b.s.chart(b.ctx, b.now)
	b.fail("the chart", err)
	var ids []string
	for _, e := range chart.Entries {
		ids = append(ids, e.TrackID)
	}
	cards, err := b.s.up.Cards(b.ctx, ids, b.now)
	b.fail("track cards", err)
	var ts []search.Track
	for _, id := range ids {
		if t, ok := cards[id]; ok {
			ts = append(ts, t)
		}
	}
	popular, err := b.s.up.Popular(b.ctx, b.now)
	b.fail("the catalogue's popular tracks", err)
	ts = append(ts, popular...)
	ts = slices.DeleteFunc(ts, func(t search.Track) bool {
		return !cyrillic(t.Title) && !slices.ContainsFunc(t.Artists, func(a search.Artist) bool { return cyrillic(a.Name) })
	})
	tracks := b.fresh(ts, b.p.limit)
	if len(tracks) == 0 {
		return
	}
	b.add(HomeSection{ID: KindLanguage, Kind: KindLanguage, Title: "feed.your_language", Model: "charts-cyrillic", Discovery: true, Tracks: tracks,
		Reason: "popular in Russian first, as your account's language is Russian: the week's chart, then the catalogue's most played, by artists with Cyrillic names (the catalogue records no language for a track, so the script of the name is the signal)"})
}

// fromSearches is the cold start's first searches: the popular tracks of
// the artists the listener's searches found.
func (b *homeBuild) fromSearches() {
	if !b.p.kinds[KindSearches] || len(b.prof.searched) == 0 {
		return
	}
	var artists []search.Artist
	var qs []string
	for _, e := range b.prof.searched {
		found := false
		for _, a := range e.Artists {
			if len(artists) < topArtists && !slices.ContainsFunc(artists, func(x search.Artist) bool { return x.ID == a.ID }) {
				artists = append(artists, a)
				found = true
			}
		}
		if found {
			qs = append(qs, strconv.Quote(e.Q))
		}
	}
	tracks := b.fresh(b.artistsTracks(artists, nil), b.p.limit)
	if len(tracks) == 0 {
		return
	}
	b.add(HomeSection{ID: KindSearches, Kind: KindSearches, Title: "feed.your_searches", Model: "search-log-artists", Discovery: true, Artists: artists, Tracks: tracks,
		Reason: fmt.Sprintf("from the artists your searches found (%s): %s", strings.Join(qs, ", "), names(artists))})
}

// fromPlays is the cold start's first plays: the stored neighbours of the
// tracks they played (the recompute's track co-occurrence lists,
// internal/recommend/artifact), summed over those tracks; when none of them
// has neighbours yet (tracks no recompute has seen), more from the artists
// of those tracks.
func (b *homeBuild) fromPlays() error {
	if !b.p.kinds[KindPlays] || len(b.played) == 0 {
		return nil
	}
	firsts := b.played[:min(len(b.played), firstPlays)]
	sims, err := b.s.similar.Similar(b.ctx, artifact.Track, firsts)
	if err != nil {
		return err
	}
	score := map[string]float32{}
	var ids []string
	because := map[string]bool{}
	for _, x := range firsts {
		sim := sims[x]
		for k, n := range sim.Neighbours {
			if b.heard[n] || b.shown[n] || k >= len(sim.Scores) {
				continue
			}
			if _, ok := score[n]; !ok {
				ids = append(ids, n)
			}
			score[n] += sim.Scores[k]
			because[x] = true
		}
	}
	if len(ids) > 0 {
		slices.SortStableFunc(ids, func(x, y string) int { return cmp.Compare(score[y], score[x]) })
		ids = ids[:min(len(ids), b.p.limit)]
		cards, err := b.s.up.Cards(b.ctx, append(slices.Clone(ids), firsts...), b.now)
		b.fail("track cards", err)
		var ts []search.Track
		for _, id := range ids {
			if t, ok := cards[id]; ok {
				ts = append(ts, t)
			}
		}
		var titles []string
		for _, x := range firsts {
			if t, ok := cards[x]; ok && because[x] {
				titles = append(titles, t.Title)
			}
		}
		if tracks := b.fresh(ts, b.p.limit); len(tracks) > 0 {
			b.add(HomeSection{ID: KindPlays, Kind: KindPlays, Title: "feed.your_plays", Model: "cooccurrence-neighbours", Discovery: true, Tracks: tracks,
				Reason: fmt.Sprintf("often played by the listeners of the tracks you played first: %s (your own recommendations come with the next recompute)", strings.Join(titles, ", "))})
			return nil
		}
	}
	if len(b.prof.played) == 0 {
		return nil
	}
	tracks := b.fresh(b.artistsTracks(b.prof.played, nil), b.p.limit)
	if len(tracks) == 0 {
		return nil
	}
	b.add(HomeSection{ID: KindPlays, Kind: KindPlays, Title: "feed.your_plays", Model: "played-artists", Discovery: true, Artists: b.prof.played, Tracks: tracks,
		Reason: fmt.Sprintf("more from the artists of your first plays: %s (no recompute has seen these tracks yet; your own recommendations come with the next one)", names(b.prof.played))})
	return nil
}
