package feed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/feed"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token"
)

// home is the home feed's world: the real auth service (accounts, locale,
// tokens), the real query service on a Bleve read model holding the
// catalog below (cards, artists' tracks, the search log in Redis), and the
// feed service on its own database, its statistics store the one Start
// opens — every service over HTTP, as on the platform.
type home struct {
	t       *testing.T
	auth    *httptest.Server
	authDB  *pgxpool.Pool
	query   *httptest.Server
	feed    *httptest.Server
	results result.Store
	stats   stats.Store
	now     time.Time
	// tracks is the catalog by artist name; artists the artists by name.
	tracks  map[string][]search.Track
	artists map[string]search.Artist
}

// testKEK encrypts auth's signing-key seeds (base64, 32 bytes).
const testKEK = "dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI="

// catalog: artist name → (recent releases, older tracks). Кино and
// Земфира are written in Cyrillic.
var catalog = []struct {
	artist      string
	fresh, aged int
}{{"Кино", 1, 5}, {"Земфира", 1, 4}, {"Aurora Lane", 2, 5}, {"Blue Static", 1, 5}, {"Copper Hymn", 0, 6}}

func setupHome(t *testing.T) *home {
	t.Helper()
	ctx := context.Background()
	h := &home{t: t, now: time.Now().UTC().Truncate(time.Second), tracks: map[string][]search.Track{}, artists: map[string]search.Artist{}}
	redisURL := testenv.Redis(t)

	// auth
	a := auth.New()
	a.Log = slog.New(slog.DiscardHandler)
	a.Argon2 = auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}
	h.auth = httptest.NewServer(a)
	t.Cleanup(h.auth.Close)
	authDB := testenv.Postgres(t)
	require.NoError(t, a.Start(ctx, map[string]string{"DATABASE_URL": authDB, "REDIS_URL": redisURL, "PUBLIC_BASE_URL": h.auth.URL, "AUTH_KEY_ENCRYPTION_KEY": testKEK}))
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	h.authDB = postgrestest.Open(t, authDB)
	verifier := func() *token.Verifier {
		return &token.Verifier{Keys: &token.RemoteKeys{URL: h.auth.URL + "/.well-known/jwks.json"}, Issuer: h.auth.URL, Audience: token.Audience}
	}

	// query, on a read model holding the catalog
	st, err := bleve.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	var ops []search.Op
	for k, c := range catalog {
		ar := search.Artist{ID: uuid.NewString(), Name: c.artist}
		h.artists[c.artist] = ar
		for n := range c.fresh + c.aged {
			published := h.now.AddDate(-1, 0, -n)
			if n < c.fresh {
				published = h.now.AddDate(0, 0, -3-n)
			}
			tr := search.Track{ID: uuid.NewString(), Title: fmt.Sprintf("%s song %d", c.artist, n), Artists: []search.Artist{ar},
				Album: &search.Album{ID: uuid.NewString(), Title: c.artist + " album"}, DurationMS: 200_000, Popularity: int64(1000 - 100*k - n),
				PublishedAt: published, Renditions: []string{"hls-aac-128"}}
			h.tracks[c.artist] = append(h.tracks[c.artist], tr)
			ops = append(ops, search.Upsert(tr, 1))
		}
	}
	require.NoError(t, st.Apply(ctx, ops))
	q := query.NewWith(st, nil, nil)
	q.SearchLog = &query.SearchLog{Redis: redisClient(t, redisURL), Verifier: verifier()}
	h.query = httptest.NewServer(q)
	t.Cleanup(h.query.Close)

	// feed
	pool := postgrestest.Pool(t)
	svc := feed.New()
	svc.Pool, svc.Verifier, svc.Log = pool, verifier(), slog.New(slog.DiscardHandler)
	require.NoError(t, svc.Start(ctx, map[string]string{"DATABASE_URL": "unused", "PUBLIC_BASE_URL": h.auth.URL, "QUERY_URL": h.query.URL, "AUTH_URL": h.auth.URL}))
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	h.stats, h.results = svc.Stats, result.Store{Pool: pool}
	h.feed = httptest.NewServer(svc)
	t.Cleanup(h.feed.Close)
	return h
}

// listener signs up through auth with locale, confirms the address from
// the emailed link (the outbox row) and signs in; it returns the user id
// and an access token.
func (h *home) listener(email, locale string) (string, string) {
	t := h.t
	t.Helper()
	var reg struct {
		UserID string `json:"user_id"`
	}
	h.post(h.auth.URL+"/v1/auth/register", map[string]string{"email": email, "password": "a long enough password", "locale": locale}, http.StatusCreated, &reg)
	var raw []byte
	require.NoError(t, h.authDB.QueryRow(context.Background(), `SELECT event FROM outbox WHERE event->>'subject' = $1 AND event_type LIKE '%user_registered%'`, reg.UserID).Scan(&raw))
	var ev struct {
		Data struct {
			ConfirmURL string `json:"confirm_url"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &ev))
	res, err := http.Get(ev.Data.ConfirmURL)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	h.post(h.auth.URL+"/v1/auth/login", map[string]string{"email": email, "password": "a long enough password"}, http.StatusOK, &tok)
	return reg.UserID, tok.AccessToken
}

func (h *home) post(u string, body any, want int, out any) {
	h.t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(u, "application/json", bytes.NewReader(b))
	require.NoError(h.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Equal(h.t, want, res.StatusCode, "%s", raw)
	require.NoError(h.t, json.Unmarshal(raw, out))
}

// get asks the feed (path and query) with tok; it returns the answer and
// its body.
func (h *home) get(path, tok string, header ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.feed.URL+path, nil)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(h.t, err)
	return res, raw
}

// feed is the listener's feed, which must be a 200 with sections.
func (h *home) feedOf(tok string) feed.Home {
	h.t.Helper()
	res, raw := h.get("/v1/me/feed", tok)
	require.Equal(h.t, http.StatusOK, res.StatusCode, "%s", raw)
	require.Equal(h.t, "application/json", res.Header.Get("Content-Type"))
	require.Equal(h.t, "private, max-age=60", res.Header.Get("Cache-Control"), "no upstream failed")
	var f feed.Home
	require.NoError(h.t, json.Unmarshal(raw, &f))
	require.NotEmpty(h.t, f.Sections, "never an empty page")
	for _, s := range f.Sections {
		require.NotEmpty(h.t, s.Reason, "section %s says why it is there", s.ID)
		require.NotEmpty(h.t, s.Title, "section %s has a title key", s.ID)
		for _, c := range s.Tracks {
			require.NotEmpty(h.t, c.Title, "a card a client can render: %+v", c)
			require.NotEmpty(h.t, c.Artists, "a card a client can render: %+v", c)
		}
	}
	return f
}

func section(f feed.Home, kind string) *feed.HomeSection {
	for i := range f.Sections {
		if f.Sections[i].Kind == kind {
			return &f.Sections[i]
		}
	}
	return nil
}

func kinds(f feed.Home) []string {
	var ks []string
	for _, s := range f.Sections {
		ks = append(ks, s.Kind)
	}
	return ks
}

// play stores listens of user (as the stats-writer does) for tracks, each
// a minute apart, the last a minute ago.
func (h *home) play(user string, tracks ...search.Track) { h.playAt(user, h.now, tracks...) }

// playAt is play ending at end.
func (h *home) playAt(user string, end time.Time, tracks ...search.Track) {
	h.t.Helper()
	var rows []stats.Row
	for i, tr := range tracks {
		at := end.Add(-time.Duration(len(tracks)-i) * time.Minute)
		rows = append(rows, stats.Row{UserID: user, Listen: eventtype.Listen{ID: fmt.Sprintf("%s-%s-%d", user, tr.ID, at.Unix()), ListenedAt: at.Unix(),
			ArtistName: tr.Artists[0].Name, TrackName: tr.Title, TrackID: tr.ID, Stream: true, Scrobble: true}})
	}
	_, err := h.stats.Write(context.Background(), rows)
	require.NoError(h.t, err)
}

// chart makes the week's chart: other listeners play three tracks of each
// artist, the Latin-named ones most.
func (h *home) chart() {
	h.t.Helper()
	fans := map[string]int{"Aurora Lane": 6, "Blue Static": 5, "Copper Hymn": 4, "Кино": 3, "Земфира": 2}
	for k, c := range catalog {
		for f := range fans[c.artist] {
			h.play(fmt.Sprintf("fan-%d-%d", k, f), h.tracks[c.artist][1:4]...)
		}
	}
	require.NoError(h.t, h.stats.Rollup(context.Background(), h.now.AddDate(0, 0, -7), h.now))
}

// noneHeard fails when a discovery section holds a track of played.
func noneHeard(t *testing.T, f feed.Home, played ...search.Track) {
	t.Helper()
	for _, s := range f.Sections {
		if !s.Discovery {
			continue
		}
		for _, c := range s.Tracks {
			require.False(t, slices.ContainsFunc(played, func(p search.Track) bool { return p.ID == c.ID }),
				"discovery section %s holds %q, which the listener played", s.ID, c.Title)
		}
	}
}

// noneTwice fails when a track is in two discovery sections.
func noneTwice(t *testing.T, f feed.Home) {
	t.Helper()
	seen := map[string]string{}
	for _, s := range f.Sections {
		if !s.Discovery {
			continue
		}
		for _, c := range s.Tracks {
			require.Empty(t, seen[c.ID], "%q is in %s and %s", c.Title, seen[c.ID], s.ID)
			seen[c.ID] = s.ID
		}
	}
}

// TestBrandNewRussianListenerGetsCyrillicChartsFirst: a listener who only
// signed up, with a Russian account, gets a page whose first section is the
// popular tracks of Cyrillic-named artists, saying the account's language
// is why, then the week's chart; an English account gets no such section.
func TestBrandNewRussianListenerGetsCyrillicChartsFirst(t *testing.T) {
	h := setupHome(t)
	h.chart()
	_, tok := h.listener("masha@example.com", "ru")
	f := h.feedOf(tok)
	require.True(t, f.ColdStart)
	require.Equal(t, "ru", f.Locale)
	require.Equal(t, []string{feed.KindLanguage, feed.KindCharts}, kinds(f))
	lang := f.Sections[0]
	require.Contains(t, lang.Reason, "Russian")
	require.Contains(t, lang.Reason, "script", "it says which signal it used")
	require.NotEmpty(t, lang.Tracks)
	for _, c := range lang.Tracks {
		require.Contains(t, []string{"Кино", "Земфира"}, c.Artists[0].Name)
	}
	charts := section(f, feed.KindCharts)
	require.Equal(t, "Aurora Lane", charts.Tracks[0].Artists[0].Name, "the chart as everyone played it")

	_, tok = h.listener("john@example.com", "en")
	f = h.feedOf(tok)
	require.Equal(t, []string{feed.KindCharts}, kinds(f), "an English account: the charts")
}

// TestNoChartYetStillFillsThePage: on a platform without a chart, a new
// listener gets the catalogue's most popular tracks, saying so.
func TestNoChartYetStillFillsThePage(t *testing.T) {
	h := setupHome(t)
	_, tok := h.listener("first@example.com", "en")
	f := h.feedOf(tok)
	charts := section(f, feed.KindCharts)
	require.NotNil(t, charts)
	require.Equal(t, "catalog-popularity", charts.Model)
	require.Contains(t, charts.Reason, "no chart yet")
	require.Len(t, charts.Tracks, feed.DefaultLimit)
}

// TestListenerWithOnlySearchesGetsTheArtistsTheyLookedFor: the searches a
// signed-in listener typed (sent with their token to the query service)
// are collapsed into one entry per search, and their feed opens with the
// artists those searches found, naming the searches.
func TestListenerWithOnlySearchesGetsTheArtistsTheyLookedFor(t *testing.T) {
	h := setupHome(t)
	h.chart()
	_, tok := h.listener("searcher@example.com", "en")
	for _, q := range []string{"co", "cop", "copper", "copper hymn"} { // as the listener types
		h.search(q, tok)
	}
	h.search("blue static", "") // without a token: not recorded
	var log struct {
		Searches []query.LoggedSearch `json:"searches"`
	}
	h.queryGet("/v1/me/searches", tok, &log)
	require.Len(t, log.Searches, 1, "typing collapses into one entry")
	require.Equal(t, "copper hymn", log.Searches[0].Q)

	f := h.feedOf(tok)
	require.Equal(t, []string{feed.KindSearches, feed.KindCharts}, kinds(f))
	s := f.Sections[0]
	require.Contains(t, s.Reason, `"copper hymn"`)
	require.Equal(t, "Copper Hymn", s.Artists[0].Name)
	require.Equal(t, "Copper Hymn", s.Tracks[0].Artists[0].Name)
}

func (h *home) search(q, tok string) {
	h.t.Helper()
	var page query.Page
	h.queryGet("/v1/search?q="+url.QueryEscape(q), tok, &page)
	require.NotZero(h.t, page.Total, "the catalog has %q", q)
}

func (h *home) queryGet(path, tok string, out any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.query.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Equal(h.t, http.StatusOK, res.StatusCode, "%s", raw)
	require.NoError(h.t, json.Unmarshal(raw, out))
}

// TestListenerWithThreePlaysGetsMoreOfWhatTheyPlayed: three plays of one
// artist give "more from" that artist and its new release, without the
// three tracks played.
func TestListenerWithThreePlaysGetsMoreOfWhatTheyPlayed(t *testing.T) {
	h := setupHome(t)
	h.chart()
	user, tok := h.listener("player@example.com", "en")
	aurora := h.tracks["Aurora Lane"]
	played := []search.Track{aurora[0], aurora[3], aurora[4]} // aurora[0] is a new release
	h.play(user, played...)
	f := h.feedOf(tok)
	require.True(t, f.ColdStart)
	require.Equal(t, []string{feed.KindNewReleases, feed.KindPlays, feed.KindCharts}, kinds(f))
	releases := f.Sections[0]
	require.Len(t, releases.Tracks, 1, "the other new release; the one played is left out")
	require.Equal(t, aurora[1].ID, releases.Tracks[0].ID)
	plays := f.Sections[1]
	require.Contains(t, plays.Reason, "Aurora Lane")
	require.Len(t, plays.Tracks, len(aurora)-3-1, "neither the tracks played nor the new release shown above")
	noneHeard(t, f, played...)
	noneTwice(t, f)
}

// TestFirstPlaysUseTheStoredNeighbours: once a recompute has stored the
// neighbours of the tracks a new listener played, their first plays give
// those neighbours (summed over the tracks, most similar first, without
// what they played), naming the tracks.
func TestFirstPlaysUseTheStoredNeighbours(t *testing.T) {
	h := setupHome(t)
	h.chart()
	user, tok := h.listener("neighbours@example.com", "en")
	kino, blue, copper := h.tracks["Кино"], h.tracks["Blue Static"], h.tracks["Copper Hymn"]
	h.play(user, kino[2], blue[4])
	for _, n := range []struct {
		x          search.Track
		neighbours []search.Track
		scores     []float32
	}{
		{kino[2], []search.Track{copper[4], blue[4], copper[5]}, []float32{0.5, 0.4, 0.3}}, // blue[4] was played
		{blue[4], []search.Track{copper[5]}, []float32{0.45}},                              // copper[5]: 0.75 in all
	} {
		_, err := h.results.Pool.Exec(context.Background(), `INSERT INTO recommend_similar (kind, key, version, made_at, neighbours, scores) VALUES ('track', $1, 'run-1', now(), $2, $3)`,
			n.x.ID, ids(cards(n.neighbours)), n.scores)
		require.NoError(t, err)
	}
	f := h.feedOf(tok)
	plays := section(f, feed.KindPlays)
	require.NotNil(t, plays, "%v", kinds(f))
	require.Equal(t, "cooccurrence-neighbours", plays.Model)
	require.Equal(t, []string{copper[5].ID, copper[4].ID}, ids(plays.Tracks))
	require.Contains(t, plays.Reason, "Кино song 2")
	noneHeard(t, f, kino[2], blue[4])
	noneTwice(t, f)
}

func cards(ts []search.Track) []feed.Card {
	out := make([]feed.Card, len(ts))
	for i, t := range ts {
		out[i] = feed.Card{Track: t}
	}
	return out
}

// TestStoredResultsMakeTheSections: a listener with a stored result gets
// new releases of the artists they play, one "because you listened to X"
// section per X naming it, the daily mix and the charts; a track they
// played after the recompute leaves every discovery section; the daily mix
// stays the same all day although a new result is stored.
func TestStoredResultsMakeTheSections(t *testing.T) {
	h := setupHome(t)
	h.chart()
	user, tok := h.listener("regular@example.com", "en")
	kino, blue, copper := h.tracks["Кино"], h.tracks["Blue Static"], h.tracks["Copper Hymn"]
	played := []search.Track{kino[1], kino[2], blue[1]}
	h.playAt(user, h.now.Add(-48*time.Hour), played...) // two days ago: the mix's favourites
	h.store(user, "run-1", []search.Track{copper[0], copper[1], copper[2]}, []becauseOf{{kino[1], []search.Track{blue[2], blue[3]}}, {blue[1], []search.Track{copper[3], copper[4], kino[3]}}})

	f := h.feedOf(tok)
	require.False(t, f.ColdStart)
	require.Equal(t, []string{feed.KindNewReleases, feed.KindBecause, feed.KindBecause, feed.KindDailyMix, feed.KindCharts}, kinds(f))
	require.Equal(t, "Кино song 0", f.Sections[0].Tracks[0].Title, "the new release of an artist they play")
	because := f.Sections[1]
	require.Equal(t, kino[1].ID, because.Because.ID)
	require.Contains(t, because.Reason, "because you listened to Кино song 1 by Кино")
	require.Equal(t, []string{blue[2].ID, blue[3].ID}, ids(because.Tracks))
	mix := section(f, feed.KindDailyMix)
	require.Len(t, mix.Tracks, 6, "three discoveries and three favourites")
	familiar := 0
	for _, c := range mix.Tracks {
		if c.Familiar {
			familiar++
			require.True(t, slices.ContainsFunc(played, func(p search.Track) bool { return p.ID == c.ID }))
		}
	}
	require.Equal(t, 3, familiar)
	noneHeard(t, f, played...)
	noneTwice(t, f)

	// They play a recommended track: it leaves the discovery sections at once.
	h.play(user, copper[3])
	f2 := h.feedOf(tok)
	noneHeard(t, f2, append(played, copper[3])...)
	require.Equal(t, ids(mix.Tracks), ids(section(f2, feed.KindDailyMix).Tracks), "the day's mix is made once")

	// A new recompute: the because sections follow it, the mix does not.
	h.store(user, "run-2", []search.Track{kino[4], kino[5]}, []becauseOf{{blue[1], []search.Track{copper[5]}}})
	f3 := h.feedOf(tok)
	require.Equal(t, "run-2", f3.ResultVersion)
	require.Equal(t, []string{copper[5].ID}, ids(section(f3, feed.KindBecause).Tracks))
	require.Equal(t, ids(mix.Tracks), ids(section(f3, feed.KindDailyMix).Tracks), "stable for the day")
}

func ids(cs []feed.Card) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// becauseOf is a played track and the tracks recommended because of it.
type becauseOf struct {
	x      search.Track
	tracks []search.Track
}

// store stores user's result as the recompute would: the ALS daily-mix
// discoveries, and the co-occurrence section with each track's X.
func (h *home) store(user, version string, mix []search.Track, bs []becauseOf) {
	h.t.Helper()
	b := result.Body{UserID: user, Model: "als+cooccurrence-tracks", Version: version, MadeAt: time.Now(), Sections: []result.Section{
		{ID: "daily-mix", Model: "als", Reason: "r"}, {ID: "because-you-listened", Model: "cooccurrence-tracks", Reason: "r"}}}
	for i, t := range mix {
		b.Sections[0].Tracks = append(b.Sections[0].Tracks, result.Track{TrackID: t.ID, Score: float32(10 - i)})
	}
	for _, x := range bs {
		for _, t := range x.tracks {
			b.Sections[1].Tracks = append(b.Sections[1].Tracks, result.Track{TrackID: t.ID, Score: 1, Because: x.x.ID})
		}
	}
	r, err := result.New(b)
	require.NoError(h.t, err)
	_, err = h.results.Put(context.Background(), []result.Result{r})
	require.NoError(h.t, err)
}

func redisClient(t *testing.T, u string) *redis.Client {
	opt, err := redis.ParseURL(u)
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestFeedETag: asking again with the ETag answers 304 with no body; a new
// play changes the feed and its ETag.
func TestFeedETag(t *testing.T) {
	h := setupHome(t)
	h.chart()
	user, tok := h.listener("etag@example.com", "en")
	res, _ := h.get("/v1/me/feed", tok)
	require.Equal(t, http.StatusOK, res.StatusCode)
	etag := res.Header.Get("ETag")
	require.NotEmpty(t, etag)
	res, raw := h.get("/v1/me/feed", tok, "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, res.StatusCode)
	require.Empty(t, raw)
	require.Equal(t, etag, res.Header.Get("ETag"))

	h.play(user, h.tracks["Aurora Lane"][2])
	res, _ = h.get("/v1/me/feed", tok, "If-None-Match", etag)
	require.Equal(t, http.StatusOK, res.StatusCode, "their first play changed the feed")
	require.NotEqual(t, etag, res.Header.Get("ETag"))
}

// TestFeedParameters: ?sections= picks sections, ?limit= bounds them; an
// unknown section, a bad limit or an unknown parameter is a 400 problem
// naming it; no token is a 401.
func TestFeedParameters(t *testing.T) {
	h := setupHome(t)
	h.chart()
	_, tok := h.listener("params@example.com", "ru")
	res, raw := h.get("/v1/me/feed?sections=charts&limit=2", tok)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
	var f feed.Home
	require.NoError(t, json.Unmarshal(raw, &f))
	require.Equal(t, []string{feed.KindCharts}, kinds(f))
	require.Len(t, f.Sections[0].Tracks, 2)

	for q, detail := range map[string]string{
		"sections=charts,radio": `parameter sections: unknown section "radio"`,
		"limit=0":               "parameter limit: 0 is outside 1..50",
		"limit=ten":             `parameter limit: "ten" is not an integer`,
		"page=2":                "parameter page: unknown",
		"limit=5&limit=6":       "parameter limit: give it once",
	} {
		res, raw := h.get("/v1/me/feed?"+q, tok)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), q)
		var p struct {
			Detail string `json:"detail"`
		}
		require.NoError(t, json.Unmarshal(raw, &p), q)
		require.Contains(t, p.Detail, detail, q)
	}
	res, _ = h.get("/v1/me/feed", "not-a-token")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
}
