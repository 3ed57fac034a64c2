package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type bundle struct {
	srv      *httptest.Server
	pool     *pgxpool.Pool
	adminTok string
	auth     *tokentest.Authority
	dbURL    string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	url := testenv.Postgres(t)
	auth := tokentest.New(t)
	svc := catalog.New()
	require.NoError(t, svc.Start(context.Background(), map[string]string{
		"DATABASE_URL": url, "AUTH_JWKS_URL": auth.JWKSURL(), "AUTH_ISSUER": tokentest.Issuer,
	}))
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &bundle{srv: srv, pool: pool, auth: auth, dbURL: url,
		adminTok: auth.Token(t, "admin-1", tokentest.Options{Roles: []string{token.RoleAdmin}})}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (b *bundle) call(t *testing.T, method, path string, body any, bearer string) response {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(v)
	default:
		buf, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.body)
	}
	return out
}

func (b *bundle) admin(t *testing.T, method, path string, body any) response {
	t.Helper()
	return b.call(t, method, path, body, b.adminToken())
}

func (b *bundle) adminToken() string { return b.adminTok }

// state is what a failed request must leave untouched.
type state struct{ artists, albums, tracks, links, renditions, genres, outbox int }

func (b *bundle) state(t *testing.T) state {
	t.Helper()
	var s state
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM artist), (SELECT count(*) FROM album), (SELECT count(*) FROM track),
		(SELECT count(*) FROM track_artist), (SELECT count(*) FROM track_rendition), (SELECT count(*) FROM genre),
		(SELECT count(*) FROM outbox)`).Scan(&s.artists, &s.albums, &s.tracks, &s.links, &s.renditions, &s.genres, &s.outbox))
	return s
}

// outboxEvent is one outbox row.
type outboxEvent struct {
	Type string
	Key  string
	Data json.RawMessage
}

func (b *bundle) events(t *testing.T) []outboxEvent {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT event_type, coalesce(partition_key, ''), event->'data' FROM outbox ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []outboxEvent
	for rows.Next() {
		var e outboxEvent
		require.NoError(t, rows.Scan(&e.Type, &e.Key, &e.Data))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

func requireProblem(t *testing.T, r response, status int) {
	t.Helper()
	require.Equal(t, status, r.status, r.raw)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	require.NotEmpty(t, r.body["detail"], r.raw)
}

func requireToken(t *testing.T, r response) uint64 {
	t.Helper()
	v, err := lsn.ParseToken(r.header.Get(catalog.HeaderConsistencyToken))
	require.NoError(t, err, "X-Consistency-Token")
	require.NotZero(t, v)
	return v
}

func TestAdminRoleRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	listener := b.auth.Token(t, "user-1", tokentest.Options{})
	body := map[string]any{"name": "Кино"}
	r := b.call(t, "POST", "/v1/admin/artists", body, "")
	requireProblem(t, r, http.StatusUnauthorized)
	r = b.call(t, "POST", "/v1/admin/artists", body, listener)
	requireProblem(t, r, http.StatusForbidden)
	r = b.call(t, "POST", "/v1/admin/artists", body, "not-a-token")
	requireProblem(t, r, http.StatusUnauthorized)
	require.Equal(t, state{}, b.state(t))
	r = b.admin(t, "POST", "/v1/admin/artists", body)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
}

func TestTrackLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var tokens []uint64

	r := b.admin(t, "PUT", "/v1/admin/genres/post-punk", map[string]any{"name": "Post-punk"})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	tokens = append(tokens, requireToken(t, r))
	r = b.admin(t, "PUT", "/v1/admin/genres/post-punk", map[string]any{"name": "Post-Punk"})
	require.Equal(t, http.StatusOK, r.status, r.raw)

	r = b.admin(t, "POST", "/v1/admin/artists", map[string]any{"name": "Кино", "country": "SU", "bio": "Ленинград, 1981"})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	tokens = append(tokens, requireToken(t, r))
	artist := r.body["id"].(string)
	require.Equal(t, "SU", r.body["country"])

	r = b.admin(t, "POST", "/v1/admin/albums", map[string]any{"title": "Группа крови", "artist_id": artist, "release_year": 1988})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	album := r.body["id"].(string)

	r = b.admin(t, "POST", "/v1/admin/tracks", map[string]any{
		"title": "Группа крови", "album_id": album, "genre_id": "post-punk", "position": 1, "duration_ms": 285000,
	})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	track := r.body["id"].(string)
	require.Equal(t, "draft", r.body["state"])
	tokens = append(tokens, requireToken(t, r))

	// Publishing needs renditions and an artist: 409, and nothing changes.
	before := b.state(t)
	r = b.admin(t, "POST", "/v1/admin/tracks/"+track+"/publish", nil)
	requireProblem(t, r, http.StatusConflict)
	require.Contains(t, r.body["detail"], "no renditions")
	require.Equal(t, before, b.state(t))

	r = b.admin(t, "PUT", "/v1/admin/tracks/"+track+"/renditions", map[string]any{"renditions": []map[string]any{
		{"kind": "hls-aac-128", "storage_key": "tracks/" + track + "/128/index.m3u8"},
		{"kind": "flac", "storage_key": "tracks/" + track + "/track.flac", "premium": true, "bytes": 31_000_000},
	}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = b.admin(t, "POST", "/v1/admin/tracks/"+track+"/publish", nil)
	requireProblem(t, r, http.StatusConflict)
	require.Contains(t, r.body["detail"], "no artist")

	r = b.admin(t, "PATCH", "/v1/admin/tracks/"+track, map[string]any{"artist_ids": []string{artist}, "lyrics": nil})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []any{artist}, r.body["artist_ids"])

	r = b.admin(t, "POST", "/v1/admin/tracks/"+track+"/publish", nil)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "published", r.body["state"])
	require.NotNil(t, r.body["published_at"])
	tokens = append(tokens, requireToken(t, r))

	r = b.admin(t, "POST", "/v1/admin/tracks/"+track+"/publish", nil)
	requireProblem(t, r, http.StatusConflict)

	r = b.admin(t, "PUT", "/v1/admin/tracks/"+track+"/renditions", map[string]any{"renditions": []any{}})
	requireProblem(t, r, http.StatusConflict)

	r = b.admin(t, "PUT", "/v1/admin/tracks/"+track+"/renditions", map[string]any{"renditions": []map[string]any{
		{"kind": "hls-aac-128", "storage_key": "tracks/" + track + "/128-v2/index.m3u8"},
	}})
	require.Equal(t, http.StatusOK, r.status, r.raw)

	r = b.admin(t, "POST", "/v1/admin/tracks/"+track+"/unpublish", nil)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "unpublished", r.body["state"])
	r = b.admin(t, "POST", "/v1/admin/tracks/"+track+"/unpublish", nil)
	requireProblem(t, r, http.StatusConflict)

	// An artist with albums cannot go.
	r = b.admin(t, "DELETE", "/v1/admin/artists/"+artist, nil)
	requireProblem(t, r, http.StatusConflict)

	r = b.admin(t, "DELETE", "/v1/admin/tracks/"+track, nil)
	require.Equal(t, http.StatusNoContent, r.status, r.raw)
	tokens = append(tokens, requireToken(t, r))
	r = b.admin(t, "DELETE", "/v1/admin/tracks/"+track, nil)
	requireProblem(t, r, http.StatusNotFound)
	r = b.admin(t, "DELETE", "/v1/admin/albums/"+album, nil)
	require.Equal(t, http.StatusNoContent, r.status, r.raw)
	r = b.admin(t, "DELETE", "/v1/admin/artists/"+artist, nil)
	require.Equal(t, http.StatusNoContent, r.status, r.raw)

	for i := 1; i < len(tokens); i++ {
		require.Greater(t, tokens[i], tokens[i-1], "consistency tokens grow with every write")
	}

	// The outbox holds exactly one domain event per successful write, in order.
	evs := b.events(t)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	require.Equal(t, []string{
		eventtype.ArtistCreated, eventtype.AlbumCreated, eventtype.TrackCreated,
		eventtype.TrackRenditionsReplaced, eventtype.TrackUpdated, eventtype.TrackPublished,
		eventtype.TrackRenditionsReplaced, eventtype.TrackUnpublished, eventtype.TrackDeleted,
		eventtype.AlbumDeleted, eventtype.ArtistDeleted,
	}, types)
	var published eventtype.TrackData
	require.NoError(t, json.Unmarshal(evs[5].Data, &published))
	require.Equal(t, "track:"+track, evs[5].Key)
	require.Equal(t, []string{artist}, published.ArtistIDs)
	require.Len(t, published.Renditions, 2)

	var first, second eventtype.TrackRenditionsReplacedData
	require.NoError(t, json.Unmarshal(evs[3].Data, &first))
	require.Empty(t, first.Old)
	require.Len(t, first.New, 2)
	require.NoError(t, json.Unmarshal(evs[6].Data, &second))
	require.Len(t, second.Old, 2)
	require.Equal(t, []eventtype.Rendition{{Kind: "hls-aac-128", StorageKey: "tracks/" + track + "/128-v2/index.m3u8"}}, second.New)
	require.Equal(t, state{genres: 1, outbox: 11}, b.state(t))
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.admin(t, "POST", "/v1/admin/artists", map[string]any{"name": "Земфира"})
	require.Equal(t, http.StatusCreated, r.status)
	artist := r.body["id"].(string)
	r = b.admin(t, "POST", "/v1/admin/tracks", map[string]any{"title": "Хочешь?"})
	require.Equal(t, http.StatusCreated, r.status)
	track := r.body["id"].(string)
	missing := uuid.NewString()

	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		fields             []string // expected keys of "errors"
	}{
		{"EmptyName", "POST", "/v1/admin/artists", map[string]any{"name": "  "}, 422, []string{"name"}},
		{"MissingName", "POST", "/v1/admin/artists", map[string]any{"country": "RU"}, 422, []string{"name"}},
		{"BadCountryAndUnknownField", "POST", "/v1/admin/artists", map[string]any{"name": "X", "country": "Russia", "genre": 1}, 422, []string{"country", "genre"}},
		{"BadClientID", "POST", "/v1/admin/artists", map[string]any{"id": "nope", "name": "X"}, 422, []string{"id"}},
		{"DuplicateClientID", "POST", "/v1/admin/artists", map[string]any{"id": artist, "name": "X"}, 409, nil},
		{"NotJSON", "POST", "/v1/admin/artists", "{name:", 400, nil},
		{"JSONArray", "POST", "/v1/admin/artists", "[]", 400, nil},
		{"EmptyPatch", "PATCH", "/v1/admin/artists/" + artist, map[string]any{}, 400, nil},
		{"NullName", "PATCH", "/v1/admin/artists/" + artist, map[string]any{"name": nil}, 422, []string{"name"}},
		{"UnknownArtist", "PATCH", "/v1/admin/artists/" + missing, map[string]any{"name": "Y"}, 404, nil},
		{"MalformedID", "PATCH", "/v1/admin/artists/42", map[string]any{"name": "Y"}, 404, nil},
		{"AlbumWithoutArtist", "POST", "/v1/admin/albums", map[string]any{"title": "A", "artist_id": missing}, 422, []string{"artist_id"}},
		{"AlbumBadYear", "POST", "/v1/admin/albums", map[string]any{"title": "A", "artist_id": artist, "release_year": 3000}, 422, []string{"release_year"}},
		{"TrackTypes", "POST", "/v1/admin/tracks", map[string]any{"title": 5, "duration_ms": -1, "explicit": "yes", "genre_id": "Post Punk"}, 422, []string{"title", "duration_ms", "explicit", "genre_id"}},
		{"TrackUnknownRefs", "POST", "/v1/admin/tracks", map[string]any{"title": "T", "album_id": missing, "genre_id": "nope"}, 422, []string{"album_id", "genre_id"}},
		{"TrackUnknownArtist", "PATCH", "/v1/admin/tracks/" + track, map[string]any{"artist_ids": []string{artist, missing}}, 422, []string{"artist_ids"}},
		{"TrackDuplicateArtist", "PATCH", "/v1/admin/tracks/" + track, map[string]any{"artist_ids": []string{artist, artist}}, 422, []string{"artist_ids"}},
		{"RenditionsInvalid", "PUT", "/v1/admin/tracks/" + track + "/renditions", map[string]any{"renditions": []map[string]any{{"kind": "MP3", "storage_key": "/abs"}, {"kind": "flac", "storage_key": "k", "bytes": -1}}}, 422,
			[]string{"renditions[0].kind", "renditions[0].storage_key", "renditions[1].bytes"}},
		// Issue 10: keys with traversal, line breaks or odd characters and
		// names with controls or invisible characters were stored.
		{"RenditionKeyTraversal", "PUT", "/v1/admin/tracks/" + track + "/renditions", map[string]any{"renditions": []map[string]any{{"kind": "flac", "storage_key": "tracks/../../private/x.flac"}}}, 422, []string{"renditions[0].storage_key"}},
		{"RenditionKeyLineBreak", "PUT", "/v1/admin/tracks/" + track + "/renditions", map[string]any{"renditions": []map[string]any{{"kind": "flac", "storage_key": "tracks/x.flac\r\nX-Injected: 1"}}}, 422, []string{"renditions[0].storage_key"}},
		{"RenditionKeyOddCharsAndLength", "PUT", "/v1/admin/tracks/" + track + "/renditions", map[string]any{"renditions": []map[string]any{{"kind": "flac", "storage_key": "tracks/a b?.flac"}, {"kind": "mp3", "storage_key": strings.Repeat("k", 1025)}, {"kind": "ogg", "storage_key": "tracks//x"}}}, 422,
			[]string{"renditions[0].storage_key", "renditions[1].storage_key", "renditions[2].storage_key"}},
		{"CoverKeyTraversal", "POST", "/v1/admin/albums", map[string]any{"title": "A", "artist_id": artist, "cover_key": "covers/../../x.jpg"}, 422, []string{"cover_key"}},
		{"ArtistNameBidiOverride", "POST", "/v1/admin/artists", map[string]any{"name": "Zemfira\u202Egnp.exe"}, 422, []string{"name"}},
		{"AlbumTitleLineBreak", "POST", "/v1/admin/albums", map[string]any{"title": "A\nFAKE LOG LINE", "artist_id": artist}, 422, []string{"title"}},
		{"TrackTitleZeroWidth", "PATCH", "/v1/admin/tracks/" + track, map[string]any{"title": "Хочешь\u200B?"}, 422, []string{"title"}},
		{"RenditionsMissing", "PUT", "/v1/admin/tracks/" + track + "/renditions", map[string]any{}, 422, []string{"renditions"}},
		{"RenditionsUnknownTrack", "PUT", "/v1/admin/tracks/" + missing + "/renditions", map[string]any{"renditions": []any{}}, 404, nil},
		{"UnpublishDraft", "POST", "/v1/admin/tracks/" + track + "/unpublish", nil, 409, nil},
		{"GenreBadSlug", "PUT", "/v1/admin/genres/Post%20Punk", map[string]any{"name": "P"}, 422, []string{"id"}},
		{"GenreNoName", "PUT", "/v1/admin/genres/rock", map[string]any{}, 422, []string{"name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.state(t)
			r := b.admin(t, tc.method, tc.path, tc.body)
			requireProblem(t, r, tc.status)
			if tc.fields != nil {
				errs, _ := r.body["errors"].(map[string]any)
				var got []string
				for k := range errs {
					got = append(got, k)
				}
				require.ElementsMatch(t, tc.fields, got, r.raw)
			}
			require.Equal(t, before, b.state(t), "a refused request changes nothing")
			require.Empty(t, r.header.Get(catalog.HeaderConsistencyToken))
		})
	}
}

// TestWriteAndEventAreOneTransaction makes the outbox refuse the event and
// checks that the row change is rolled back with it.
func TestWriteAndEventAreOneTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(context.Background(), `ALTER TABLE outbox ADD CONSTRAINT refuse_artist_created CHECK (event_type <> '`+eventtype.ArtistCreated+`')`)
	require.NoError(t, err)
	r := b.admin(t, "POST", "/v1/admin/artists", map[string]any{"name": "Аукцыон"})
	requireProblem(t, r, http.StatusInternalServerError)
	require.Equal(t, state{}, b.state(t), "neither the artist nor its event exists")

	// The other way round: the row change fails, so no event is written.
	_, err = b.pool.Exec(context.Background(), `ALTER TABLE outbox DROP CONSTRAINT refuse_artist_created;
		ALTER TABLE artist ADD CONSTRAINT no_z CHECK (name NOT LIKE 'Z%')`)
	require.NoError(t, err)
	r = b.admin(t, "POST", "/v1/admin/artists", map[string]any{"name": "Zемфира"})
	require.GreaterOrEqual(t, r.status, 400)
	require.Equal(t, state{}, b.state(t))
}
