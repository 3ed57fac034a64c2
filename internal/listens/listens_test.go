package listens_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	statswriter "github.com/overture-music/overture/functions/stats-writer"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/listens"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// bundle is a started listens service behind the embedded broker, whose
// EventPolicies are the repository's: the service publishes as "listens".
type bundle struct {
	svc  *listens.Service
	srv  *httptest.Server
	auth *tokentest.Authority
	rec  *functiontest.Recorder
	pool *pgxpool.Pool
	rdb  *redis.Client
	now  time.Time
	pub  function.Publisher
	br   *broker.Broker
}

// consumerYAML routes ListensSubmitted to the Service "sink".
const consumerYAML = `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: listens-sink, namespace: overture}
spec:
  broker: default
  filter: {attributes: {type: music.overture.listens.submitted.v1}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: sink}}
`

func setup(t *testing.T) *bundle { return setupWith(t, nil) }

// setupWith is setup with the stats-writer behind its own Triggers
// (triggers/stats-writer.yaml) when w is non-nil, storing into the
// service's database.
func setupWith(t *testing.T, w *statswriter.Writer) *bundle { return setupWithObjects(t, w, "") }

// setupWithObjects is setupWith with more broker objects (YAML documents).
func setupWithObjects(t *testing.T, w *statswriter.Writer, extra string) *bundle {
	t.Helper()
	b := &bundle{auth: tokentest.New(t), rec: &functiontest.Recorder{}, now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	b.pool = postgrestest.Pool(t)
	redisURL := testenv.Redis(t)
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	b.rdb = redis.NewClient(opt)
	t.Cleanup(func() { _ = b.rdb.Close() })
	policies, err := os.ReadFile("../../brokers/eventpolicies.yaml")
	require.NoError(t, err)
	handlers := map[string]function.Handler{"sink": b.rec}
	objects := brokertest.BrokerYAML + "---\n" + consumerYAML + "---\n" + string(policies)
	if w != nil {
		triggers, err := os.ReadFile("../../triggers/stats-writer.yaml")
		require.NoError(t, err)
		objects += "---\n" + string(triggers)
		require.NoError(t, stats.Migrate(context.Background(), b.pool))
		if w.Store == nil {
			w.Store = stats.NewPG(b.pool)
		}
		w.Log = slog.New(slog.DiscardHandler)
		handlers[statswriter.Name] = w
		handlers["dead-letter"] = &functiontest.Recorder{}
	}
	if extra != "" {
		objects += "---\n" + extra
	}
	br := functiontest.RunBroker(t, broker.Config{Pool: b.pool, Objects: functiontest.Objects(t, objects),
		Log: slog.New(slog.DiscardHandler), Poll: 50 * time.Millisecond}, handlers)
	b.br, b.pub = br, br.As(identity.Subject(listens.Name))
	b.svc = listens.New()
	b.svc.Pool, b.svc.Redis, b.svc.Verifier, b.svc.Log = b.pool, b.rdb, b.auth.Verifier(), slog.New(slog.DiscardHandler)
	b.svc.Now = func() time.Time { return b.now }
	if w != nil {
		b.svc.Stats = w.Store // the service reads what the writer stores
	}
	ctx := function.WithPublisher(context.Background(), b.pub)
	require.NoError(t, b.svc.Start(ctx, map[string]string{"DATABASE_URL": "unused", "REDIS_URL": redisURL, "PUBLIC_BASE_URL": "http://overture.test"}))
	t.Cleanup(func() { _ = b.svc.Stop(context.Background()) })
	b.srv = httptest.NewServer(b.svc)
	t.Cleanup(b.srv.Close)
	return b
}

// do sends a request with the Authorization header auth and decodes a JSON
// answer into out (when non-nil); it returns the status and raw body.
func (b *bundle) do(t *testing.T, method, path, auth string, body any, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if out != nil && res.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
	}
	return res.StatusCode, raw
}

func (b *bundle) bearer(t *testing.T, user string) string {
	return "Bearer " + b.auth.Token(t, user, tokentest.Options{})
}

// listenToken creates a listen token for user through the API.
func (b *bundle) listenToken(t *testing.T, user string) (id, tok string) {
	t.Helper()
	var created struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	st, raw := b.do(t, http.MethodPost, "/v1/me/listen-tokens", b.bearer(t, user), `{"name": "Web Scrobbler"}`, &created)
	require.Equal(t, http.StatusCreated, st, "%s", raw)
	require.NotEmpty(t, created.Token)
	return created.ID, created.Token
}

// webScrobblerSingle is what the Web Scrobbler extension sends to
// /1/submit-listens when a track passed the scrobble point (its
// ListenBrainz connector: listen_type single, listened_at, track_metadata
// with additional_info submission_client and origin_url).
func webScrobblerSingle(at int64) string {
	return fmt.Sprintf(`{"listen_type":"single","payload":[{"listened_at":%d,"track_metadata":{"artist_name":"Кино","track_name":"Группа крови","release_name":"Группа крови","additional_info":{"submission_client":"Web Scrobbler","submission_client_version":"3.9.0","music_service":"music.yandex.ru","music_service_name":"Yandex Music","origin_url":"https://music.yandex.ru/album/1/track/2","duration_ms":286000}}}]}`, at)
}

func decode(t *testing.T, e event.Event) eventtype.ListensData {
	t.Helper()
	var d eventtype.ListensData
	require.NoError(t, e.DataAs(&d))
	return d
}

// A scrobbler's whole life: a token created in the account, validated and
// used with ListenBrainz's own endpoints and bodies; each accepted batch is
// one event with the service's identity, the same submission the same ids.
func TestListenBrainzClient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, tok := b.listenToken(t, "user-1")

	var valid map[string]any
	st, _ := b.do(t, http.MethodGet, "/1/validate-token", "Token "+tok, nil, &valid)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, true, valid["valid"])
	require.Equal(t, "user-1", valid["user_name"])
	st, _ = b.do(t, http.MethodGet, "/1/validate-token?token=not-a-token", "", nil, &valid)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, false, valid["valid"])

	at := b.now.Add(-5 * time.Minute).Unix()
	var ok map[string]string
	st, raw := b.do(t, http.MethodPost, "/1/submit-listens", "Token "+tok, webScrobblerSingle(at), &ok)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	require.Equal(t, "ok", ok["status"])
	evs := b.rec.Wait(t, 1, time.Minute)
	d := decode(t, evs[0])
	require.Equal(t, eventtype.ListensSubmitted, evs[0].Type())
	require.Equal(t, d.BatchID, evs[0].ID())
	require.Equal(t, "user-1", d.UserID)
	require.Len(t, d.Listens, 1)
	l := d.Listens[0]
	require.Equal(t, at, l.ListenedAt)
	require.Equal(t, "Кино", l.ArtistName)
	require.Equal(t, "Группа крови", l.ReleaseName)
	require.Equal(t, int64(286000), l.DurationMS)
	require.Equal(t, "Web Scrobbler", l.Client)
	require.True(t, l.Stream)
	require.True(t, l.Scrobble, "a scrobbler submits after the scrobble point")
	require.Equal(t, listens.ListenID("user-1", l), l.ID)

	// An import of three (Pano Scrobbler's cache flush), then the same again:
	// the same batch id, so the store sees a redelivery.
	imp := fmt.Sprintf(`{"listen_type":"import","payload":[
	 {"listened_at":%d,"track_metadata":{"artist_name":"Radiohead","track_name":"Airbag","release_name":"OK Computer"}},
	 {"listened_at":%d,"track_metadata":{"artist_name":"Radiohead","track_name":"Paranoid Android","release_name":"OK Computer","additional_info":{"duration":387}}},
	 {"listened_at":%d,"track_metadata":{"artist_name":"Radiohead","track_name":"Subterranean Homesick Alien"}}]}`, at-3000, at-2700, at-2300)
	for range 2 {
		st, raw = b.do(t, http.MethodPost, "/1/submit-listens", "Token "+tok, imp, nil)
		require.Equal(t, http.StatusOK, st, "%s", raw)
	}
	evs = b.rec.Wait(t, 3, time.Minute)
	require.Equal(t, evs[1].ID(), evs[2].ID())
	require.Len(t, decode(t, evs[1]).Listens, 3)
	require.Equal(t, int64(387000), decode(t, evs[1]).Listens[1].DurationMS)

	// playing_now is no event: it is the listener's current track.
	st, raw = b.do(t, http.MethodPost, "/1/submit-listens", "Token "+tok,
		`{"listen_type":"playing_now","payload":[{"track_metadata":{"artist_name":"Björk","track_name":"Jóga","additional_info":{"duration_ms":305000}}}]}`, nil)
	require.Equal(t, http.StatusOK, st, "%s", raw)
	var np struct {
		Playing *listens.NowPlaying `json:"playing"`
	}
	st, _ = b.do(t, http.MethodGet, "/v1/me/now-playing", b.bearer(t, "user-1"), nil, &np)
	require.Equal(t, http.StatusOK, st)
	require.NotNil(t, np.Playing)
	require.Equal(t, "Jóga", np.Playing.TrackName)
	ttl, err := b.rdb.TTL(context.Background(), "listens:now:user-1").Result()
	require.NoError(t, err)
	require.InDelta(t, 305, ttl.Seconds(), 5, "shown for the track's duration")
	st, _ = b.do(t, http.MethodGet, "/v1/me/now-playing", b.bearer(t, "user-2"), nil, &np)
	require.Equal(t, http.StatusOK, st)
	require.Nil(t, np.Playing)
	require.Len(t, b.rec.Events(), 3)
}

// Overture's player: played_ms and end_reason decide the stream and
// scrobble flags; the premium claim of the access token is kept.
func TestPlayerProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := b.now.Add(-10 * time.Minute).Unix()
	body := func(played int64, reason string) string {
		return fmt.Sprintf(`{"listen_type":"single","payload":[{"listened_at":%d,"track_metadata":{"artist_name":"A","track_name":"T%d","additional_info":{"overture_track_id":"trk-%d","duration_ms":200000,"played_ms":%d,"end_reason":%q}}}]}`, at, played, played, played, reason)
	}
	tok := "Bearer " + b.auth.Token(t, "user-p", tokentest.Options{Premium: true})
	for _, c := range []struct {
		played           int64
		reason           string
		stream, scrobble bool
	}{{10_000, "skipped", false, false}, {30_000, "skipped", true, false}, {100_000, "completed", true, true}, {200_000, "completed", true, true}} {
		st, raw := b.do(t, http.MethodPost, "/v1/listens", tok, body(c.played, c.reason), nil)
		require.Equal(t, http.StatusOK, st, "%s", raw)
		evs := b.rec.Events()
		testenv.WaitFor(t, time.Minute, fmt.Sprintf("the event of the listen played %d ms", c.played), func() bool {
			evs = b.rec.Events()
			return len(evs) > 0 && decode(t, evs[len(evs)-1]).Listens[0].PlayedMS == c.played
		})
		l := decode(t, evs[len(evs)-1]).Listens[0]
		require.Equal(t, c.stream, l.Stream, "played %d", c.played)
		require.Equal(t, c.scrobble, l.Scrobble, "played %d", c.played)
		require.Equal(t, c.reason == "skipped", l.Skipped)
		require.True(t, l.Premium)
		require.Equal(t, "overture", l.Client)
		require.Equal(t, "trk-"+fmt.Sprint(c.played), l.TrackID)
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		duration, played int64
		stream, scrobble bool
	}{
		{0, 0, true, true},              // a scrobbler's listen
		{600_000, 239_999, true, false}, // long track: 4 minutes needed
		{600_000, 240_000, true, true},  // 4 minutes
		{40_000, 20_000, false, true},   // short track: half of it, not yet a stream
		{40_000, 30_000, true, true},    // both
		{0, 100_000, true, false},       // unknown length: 4 minutes
		{180_000, 89_999, true, false},  // just under half
	} {
		s, sc := listens.Counts(c.duration, c.played)
		require.Equal(t, c.stream, s, "%+v", c)
		require.Equal(t, c.scrobble, sc, "%+v", c)
	}
}

// Every bad input is a 400 problem naming the field, and nothing is
// published or kept.
func TestBadInputStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, tok := b.listenToken(t, "user-b")
	now := b.now.Unix()
	listen := func(at int64) string {
		return fmt.Sprintf(`{"listened_at":%d,"track_metadata":{"artist_name":"A","track_name":"T%d"}}`, at, at)
	}
	many := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = listen(now - int64(i) - 100)
		}
		return `{"listen_type":"import","payload":[` + strings.Join(parts, ",") + `]}`
	}
	big := fmt.Sprintf(`{"listen_type":"import","payload":[%s,{"listened_at":%d,"track_metadata":{"artist_name":"A","track_name":"B","additional_info":{"comment":%q}}}]}`,
		listen(now-100), now-50, strings.Repeat("x", listens.MaxListenBytes))
	cases := []struct {
		name, body, field string
	}{
		{"NotJSON", `{"listen_type":`, ""},
		{"NoListenType", `{"payload":[` + listen(now) + `]}`, "listen_type"},
		{"UnknownListenType", `{"listen_type":"scrobble","payload":[` + listen(now) + `]}`, "listen_type"},
		{"NoPayload", `{"listen_type":"import"}`, "payload"},
		{"EmptyPayload", `{"listen_type":"import","payload":[]}`, "payload"},
		{"SingleWithTwo", `{"listen_type":"single","payload":[` + listen(now-10) + `,` + listen(now-20) + `]}`, "payload"},
		{"PlayingNowWithTwo", `{"listen_type":"playing_now","payload":[{"track_metadata":{"artist_name":"A","track_name":"B"}},{"track_metadata":{"artist_name":"A","track_name":"C"}}]}`, "payload"},
		{"PlayingNowWithTime", `{"listen_type":"playing_now","payload":[` + listen(now) + `]}`, "payload[0].listened_at"},
		{"TooMany", many(listens.MaxListens + 1), "payload"},
		{"FutureTimestamp", `{"listen_type":"import","payload":[` + listen(now-100) + `,` + listen(now+3600) + `]}`, "payload[1].listened_at"},
		{"AncientTimestamp", `{"listen_type":"single","payload":[` + listen(1000) + `]}`, "payload[0].listened_at"},
		{"MissingTimestamp", `{"listen_type":"single","payload":[{"track_metadata":{"artist_name":"A","track_name":"B"}}]}`, "payload[0].listened_at"},
		{"StringTimestamp", `{"listen_type":"single","payload":[{"listened_at":"yesterday","track_metadata":{"artist_name":"A","track_name":"B"}}]}`, "payload[0].listened_at"},
		{"NoMetadata", `{"listen_type":"import","payload":[` + listen(now-100) + `,{"listened_at":` + fmt.Sprint(now-50) + `}]}`, "payload[1].track_metadata"},
		{"NoArtist", `{"listen_type":"single","payload":[{"listened_at":` + fmt.Sprint(now) + `,"track_metadata":{"track_name":"B"}}]}`, "payload[0].track_metadata.artist_name"},
		{"EmptyTrack", `{"listen_type":"single","payload":[{"listened_at":` + fmt.Sprint(now) + `,"track_metadata":{"artist_name":"A","track_name":"  "}}]}`, "payload[0].track_metadata.track_name"},
		{"NegativeDuration", `{"listen_type":"single","payload":[{"listened_at":` + fmt.Sprint(now) + `,"track_metadata":{"artist_name":"A","track_name":"B","additional_info":{"duration_ms":-5}}}]}`, "payload[0].track_metadata.additional_info.duration_ms"},
		{"UnknownEndReason", `{"listen_type":"single","payload":[{"listened_at":` + fmt.Sprint(now) + `,"track_metadata":{"artist_name":"A","track_name":"B","additional_info":{"end_reason":"bored"}}}]}`, "payload[0].track_metadata.additional_info.end_reason"},
		{"OversizedListen", big, "payload[1]"},
		{"Duplicate", `{"listen_type":"import","payload":[` + listen(now-100) + `,` + listen(now-100) + `]}`, "payload[1]"},
	}
	for _, c := range cases {
		for _, path := range []string{"/1/submit-listens", "/v1/listens"} {
			auth := "Token " + tok
			if path == "/v1/listens" {
				auth = b.bearer(t, "user-b")
			}
			st, raw := b.do(t, http.MethodPost, path, auth, c.body, nil)
			require.Equal(t, http.StatusBadRequest, st, "%s %s: %s", c.name, path, raw)
			var p struct {
				Type   string            `json:"type"`
				Detail string            `json:"detail"`
				Errors map[string]string `json:"errors"`
			}
			require.NoError(t, json.Unmarshal(raw, &p), "%s", raw)
			require.Equal(t, "/problems/invalid-listens", p.Type, "%s", raw)
			if c.field != "" {
				require.Contains(t, p.Errors, c.field, "%s: %s", c.name, raw)
				require.True(t, strings.HasPrefix(p.Detail, c.field+":"), "%s: %s", c.name, p.Detail)
			}
		}
	}
	// A body beyond any valid batch is refused before it is parsed.
	st, raw := b.do(t, http.MethodPost, "/v1/listens", b.bearer(t, "user-b"), `{"listen_type":"import","payload":["`+strings.Repeat("x", 11<<20)+`"]}`, nil)
	require.Equal(t, http.StatusBadRequest, st, "%s", raw)
	require.Contains(t, string(raw), `"payload"`)

	// Nothing was published or kept. A good single afterwards is the first
	// and only event the sink sees.
	keys, err := b.rdb.Keys(context.Background(), "listens:*").Result()
	require.NoError(t, err)
	require.Empty(t, keys)
	st, raw = b.do(t, http.MethodPost, "/v1/listens", b.bearer(t, "user-b"), `{"listen_type":"single","payload":[`+listen(now+60)+`]}`, nil)
	require.Equal(t, http.StatusOK, st, "a minute ahead is within the skew: %s", raw)
	require.Equal(t, "T"+fmt.Sprint(now+60), decode(t, b.rec.Wait(t, 1, time.Minute)[0]).Listens[0].TrackName)
}

func TestListenTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, tok := b.listenToken(t, "user-t")
	_, other := b.listenToken(t, "user-u")
	var list struct {
		Tokens []listens.TokenInfo `json:"tokens"`
	}
	st, raw := b.do(t, http.MethodGet, "/v1/me/listen-tokens", b.bearer(t, "user-t"), nil, &list)
	require.Equal(t, http.StatusOK, st)
	require.Len(t, list.Tokens, 1)
	require.NotContains(t, string(raw), tok, "a token is shown only once")
	var stored int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM listens_token WHERE hash = convert_to($1, 'UTF8')`, tok).Scan(&stored))
	require.Zero(t, stored, "only its hash is kept")

	// Another listener cannot revoke it; its owner can, and then it is refused.
	st, _ = b.do(t, http.MethodDelete, "/v1/me/listen-tokens/"+id, b.bearer(t, "user-u"), nil, nil)
	require.Equal(t, http.StatusNotFound, st)
	st, _ = b.do(t, http.MethodDelete, "/v1/me/listen-tokens/"+id, b.bearer(t, "user-t"), nil, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, _ = b.do(t, http.MethodPost, "/1/submit-listens", "Token "+tok, webScrobblerSingle(b.now.Unix()-60), nil)
	require.Equal(t, http.StatusUnauthorized, st)
	st, _ = b.do(t, http.MethodPost, "/1/submit-listens", "", webScrobblerSingle(b.now.Unix()-60), nil)
	require.Equal(t, http.StatusUnauthorized, st)
	st, _ = b.do(t, http.MethodPost, "/v1/listens", "Token "+other, webScrobblerSingle(b.now.Unix()-60), nil)
	require.Equal(t, http.StatusUnauthorized, st, "/v1/listens takes access tokens only")
	require.Empty(t, b.rec.Events())
}

// The broker refuses ListensSubmitted from anyone but the listens service.
func TestOnlyTheListensServiceMayPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub, err := listens.Parse([]byte(webScrobblerSingle(b.now.Unix()-60)), "user-x", b.now, time.Minute)
	require.NoError(t, err)
	e, err := listens.BatchEvent("user-x", sub)
	require.NoError(t, err)
	require.Error(t, b.br.As(identity.Subject("catalog")).Publish(context.Background(), e))
	require.NoError(t, b.pub.Publish(context.Background(), e))
	require.Len(t, b.rec.Wait(t, 1, time.Minute), 1)
}
