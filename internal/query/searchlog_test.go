package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/query"
	"github.com/overture-music/overture/internal/search"
	"github.com/overture-music/overture/internal/search/bleve"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

type logEnv struct {
	t     *testing.T
	srv   *httptest.Server
	auth  *tokentest.Authority
	clock time.Time
	ids   []string
}

func setupLog(t *testing.T) *logEnv {
	t.Helper()
	st, err := bleve.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &logEnv{t: t, auth: tokentest.New(t), clock: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	var ops []search.Op
	for k, name := range []string{"Kino", "Kinotavr", "Aquarium"} {
		ar := search.Artist{ID: uuid.NewString(), Name: name}
		for n := range 3 {
			tr := search.Track{ID: uuid.NewString(), Title: fmt.Sprintf("%s song %d", name, n), Artists: []search.Artist{ar}, Popularity: int64(100 - 10*k - n)}
			e.ids = append(e.ids, tr.ID)
			ops = append(ops, search.Upsert(tr, 1))
		}
	}
	if err := st.Apply(t.Context(), ops); err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(testenv.Redis(t))
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	svc := query.NewWith(st, nil, nil)
	svc.SearchLog = &query.SearchLog{Redis: rdb, Verifier: e.auth.Verifier(), Now: func() time.Time { return e.clock }}
	e.srv = httptest.NewServer(svc)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *logEnv) do(method, path, tok string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, e.srv.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (e *logEnv) searches(tok string) []query.LoggedSearch {
	e.t.Helper()
	code, b := e.do("GET", "/v1/me/searches", tok)
	if code != http.StatusOK {
		e.t.Fatalf("GET /v1/me/searches: %d %s", code, b)
	}
	var body struct {
		Searches []query.LoggedSearch `json:"searches"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		e.t.Fatal(err)
	}
	return body.Searches
}

// TestSearchLogKeepsWhatASignedInListenerLookedFor: searches sent with a
// listener's token are recorded with the artists they found; typing on
// within SearchLogMerge replaces the entry, a pause starts a new one; a
// search without a token, with a bad one, or that found nothing is not
// recorded; the log holds SearchLogSize entries at most; DELETE forgets it.
func TestSearchLogKeepsWhatASignedInListenerLookedFor(t *testing.T) {
	e := setupLog(t)
	ana := e.auth.Token(t, "ana", tokentest.Options{})
	search := func(q, tok string) {
		t.Helper()
		if code, b := e.do("GET", "/v1/search?q="+url.QueryEscape(q), tok); code != http.StatusOK {
			t.Fatalf("search %q: %d %s", q, code, b)
		}
	}
	for _, q := range []string{"ki", "kin", "kino"} {
		search(q, ana)
		e.clock = e.clock.Add(time.Second)
	}
	search("aquarium", "")            // no token
	search("aquarium", "not-a-token") // a bad one: answered, not recorded
	search("zzzzzz", ana)             // found nothing
	got := e.searches(ana)
	if len(got) != 1 || got[0].Q != "kino" || len(got[0].Artists) == 0 || got[0].Artists[0].Name != "Kino" {
		t.Fatalf("log = %+v, want one entry kino → Kino", got)
	}
	e.clock = e.clock.Add(query.SearchLogMerge)
	search("kinotavr", ana)
	if got := e.searches(ana); len(got) != 2 || got[0].Q != "kinotavr" {
		t.Fatalf("after a pause a new entry: %+v", got)
	}
	if got := e.searches(e.auth.Token(t, "bob", tokentest.Options{})); len(got) != 0 {
		t.Fatalf("bob's log holds ana's searches: %+v", got)
	}
	for k := range query.SearchLogSize + 5 {
		e.clock = e.clock.Add(time.Minute)
		search([]string{"kino", "aquarium"}[k%2], ana)
	}
	if got := e.searches(ana); len(got) != query.SearchLogSize {
		t.Fatalf("the log holds %d entries, want at most %d", len(got), query.SearchLogSize)
	}
	if code, b := e.do("DELETE", "/v1/me/searches", ana); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, b)
	}
	if got := e.searches(ana); len(got) != 0 {
		t.Fatalf("forgotten, yet %+v", got)
	}
	if code, _ := e.do("GET", "/v1/me/searches", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %d, want 401", code)
	}
}

// TestTracksAnswersManyCardsInOneRead: GET /v1/tracks?id=… answers the
// published tracks among the ids, in the order asked, each once; bad input
// is a 400 problem naming it.
func TestTracksAnswersManyCardsInOneRead(t *testing.T) {
	e := setupLog(t)
	missing := uuid.NewString()
	code, b := e.do("GET", "/v1/tracks?id="+e.ids[4]+"&id="+missing+"&id="+e.ids[0]+"&id="+e.ids[4], "")
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, b)
	}
	var body struct {
		Tracks []search.Track `json:"tracks"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Tracks) != 2 || body.Tracks[0].ID != e.ids[4] || body.Tracks[1].ID != e.ids[0] || body.Tracks[0].Title == "" {
		t.Fatalf("tracks = %+v", body.Tracks)
	}
	for q, want := range map[string]string{
		"":                            "give 1 to 100 track ids",
		"?id=nope":                    `\"nope\" is not a track id`,
		"?id=" + e.ids[0] + "&size=3": "parameter size: unknown",
		"?" + strings.Repeat("id="+e.ids[0]+"&", 101): "give 1 to 100 track ids",
	} {
		code, b := e.do("GET", "/v1/tracks"+q, "")
		if code != http.StatusBadRequest || !strings.Contains(string(b), want) {
			t.Errorf("GET /v1/tracks%.40s: %d %s, want 400 with %q", q, code, b, want)
		}
	}
}
