package cdnpurge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// catalogTrack records track id in the catalog database with its current
// renditions (HLS playlists), as the catalog API does.
func catalogTrack(t *testing.T, pool *pgxpool.Pool, id, state string, keys ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO track (id, title, state) VALUES ($1, 'A track', $2)`, id, state); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if _, err := pool.Exec(ctx, `INSERT INTO track_rendition (track_id, kind, storage_key) VALUES ($1, $2, $3)`, id, fmt.Sprintf("hls-%d", i), k); err != nil {
			t.Fatal(err)
		}
	}
}

type purgeBundle struct {
	f       *Purge
	pool    *pgxpool.Pool
	origin  *edgetest.Origin
	servers []*edge.Server
	get     func(s *edge.Server, k string) string
}

// setupPurge starts three POPs that have cached keys (as "old") and whose
// origin now holds "new" for each, and the function on a catalog database.
func setupPurge(t *testing.T, keys ...string) purgeBundle {
	t.Helper()
	ctx := context.Background()
	origin := edgetest.NewOrigin(t, nil)
	for _, k := range keys {
		origin.Put(t, k, "old")
	}
	sign := urlsign.Keys{"k": []byte("purge-test-secret-123")}
	pops, servers := origin.StartPOPs(t, sign, steering.POP{Name: "pop-eu-west", Region: "eu-west"},
		steering.POP{Name: "pop-eu-central", Region: "eu-central"}, steering.POP{Name: "pop-ru-central", Region: "ru-central"})
	get := func(s *edge.Server, k string) string {
		tok, _ := sign.Sign(urlsign.Token{KeyID: "k", Expires: time.Now().Add(time.Hour), Prefix: "tracks/"})
		r, err := http.Get(s.URL() + edge.MediaPrefix + k + "?t=" + url.QueryEscape(tok))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	for _, s := range servers {
		for _, k := range keys {
			get(s, k)
		}
	}
	for _, k := range keys {
		origin.Put(t, k, "new") // what a purged POP would fetch now
	}
	db := testenv.Postgres(t)
	f := New()
	if err := f.Start(ctx, map[string]string{"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret, "DATABASE_URL": db}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(ctx) })
	return purgeBundle{f: f, pool: postgrestest.Open(t, db), origin: origin, servers: servers, get: get}
}

func replaced(trackID string, old ...string) event.Event {
	e := event.New()
	e.SetID("r-" + trackID)
	e.SetSource("/overture/catalog")
	e.SetType(eventtype.TrackRenditionsReplaced)
	d := eventtype.TrackRenditionsReplacedData{TrackID: trackID, New: []eventtype.Rendition{}}
	for _, k := range old {
		d.Old = append(d.Old, eventtype.Rendition{Kind: "hls", StorageKey: k})
	}
	_ = e.SetData(event.ApplicationJSON, d)
	return e
}

func TestPurgesReplacedRenditionsEverywhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p1, p2 := uuid.NewString(), uuid.NewString()
	v1 := []string{"tracks/" + p1 + "/v1/hls/index.m3u8", "tracks/" + p1 + "/v1/hls/seg-1.ts"}
	v2 := "tracks/" + p1 + "/v2/hls/index.m3u8"
	v2seg := "tracks/" + p1 + "/v2/hls/seg-1.ts"
	other := "tracks/" + p2 + "/v1/hls/seg-1.ts"
	b := setupPurge(t, append(v1, v2seg, other)...)
	catalogTrack(t, b.pool, p1, "published", v2) // v1 was replaced by v2
	catalogTrack(t, b.pool, p2, "published", "tracks/"+p2+"/v1/hls/index.m3u8")
	e := replaced(p1, v1[0])
	for range 2 { // a duplicate delivery is harmless
		if _, err := b.f.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range b.servers {
		if got := b.get(s, v1[1]); !strings.HasPrefix(got, "new") {
			t.Errorf("%s serves %q for a replaced segment", s.Name(), got)
		}
		if got := b.get(s, v2seg); !strings.HasPrefix(got, "old") {
			t.Errorf("%s purged the current rendition (%q)", s.Name(), got)
		}
		if got := b.get(s, other); !strings.HasPrefix(got, "old") {
			t.Errorf("%s purged another track (%q)", s.Name(), got)
		}
	}
	_ = b.servers[2].Stop(ctx)
	if _, err := b.f.Handle(ctx, e); err == nil {
		t.Fatal("purge with an unreachable POP succeeded; the broker would not retry")
	}
}

// The attack of issue 10: a forged TrackRenditionsReplaced purged every POP.
// Now the catalog decides: current keys, other tracks' keys, directories
// outside the track's space or holding current renditions, unknown tracks
// and a takedown of a published track purge nothing anywhere.
func TestForgedReplacementPurgesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p1, p2 := uuid.NewString(), uuid.NewString()
	cur1 := "tracks/" + p1 + "/v1/hls/index.m3u8"
	seg1 := "tracks/" + p1 + "/v1/hls/seg-1.ts"
	cur2 := "tracks/" + p2 + "/v1/hls/index.m3u8"
	seg2 := "tracks/" + p2 + "/v1/hls/seg-1.ts"
	flat := "tracks/index.m3u8"
	b := setupPurge(t, cur1, seg1, cur2, seg2)
	catalogTrack(t, b.pool, p1, "published", cur1)
	catalogTrack(t, b.pool, p2, "published", cur2)
	forged := []event.Event{
		replaced(p1, cur1, seg1),               // its current keys (and their directory)
		replaced(p1, cur2, seg2),               // another track's keys, named under this track
		replaced(p1, flat, "tracks/../x.m3u8"), // directories "tracks/" and above: every track
		replaced(uuid.NewString(), seg1),       // a track the catalog does not have
	}
	takedown := event.New()
	takedown.SetID("forged-takedown")
	takedown.SetSource("/overture/catalog")
	takedown.SetType(eventtype.TrackUnpublished)
	_ = takedown.SetData(event.ApplicationJSON, eventtype.TrackData{TrackID: p1})
	forged = append(forged, takedown)
	for i, e := range forged {
		e.SetID(fmt.Sprintf("forged-%d", i))
		if _, err := b.f.Handle(ctx, e); err != nil {
			t.Fatalf("forged %d: %v (a refusal is acknowledged)", i, err)
		}
	}
	for _, s := range b.servers {
		for _, k := range []string{seg1, seg2} { // (playlists revalidate every 2 s anyway; segments are kept a year)
			if got := b.get(s, k); !strings.HasPrefix(got, "old") {
				t.Errorf("%s: %s was purged by a forged event", s.Name(), k)
			}
		}
	}
}

// FuzzPlanKeys: whatever keys an event names, the purge planned for a track
// never holds a current key, a prefix outside the track's space or one that
// holds a current rendition.
func FuzzPlanKeys(f *testing.F) {
	db := testenv.Postgres(f)
	p := New()
	if err := p.Start(context.Background(), map[string]string{"DATABASE_URL": db, "CDN_POPS": "pop-x=x=http://127.0.0.1:9",
		"CDN_ADMIN_SECRET": edgetest.AdminSecret}); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.Stop(context.Background()) })
	pool := postgrestest.Open(f, db)
	const id = "6f1c2a8e-1111-4222-8333-444455556666"
	cur := "tracks/" + id + "/v2/hls/index.m3u8"
	if _, err := pool.Exec(context.Background(), `INSERT INTO track (id, title, state) VALUES ($1, 't', 'published')`, id); err != nil {
		f.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `INSERT INTO track_rendition (track_id, kind, storage_key) VALUES ($1, 'hls', $2)`, id, cur); err != nil {
		f.Fatal(err)
	}
	f.Add("tracks/" + id + "/v1/hls/index.m3u8")
	f.Add(cur)
	f.Add("tracks/index.m3u8")
	f.Add("tracks/" + id + "/index.m3u8")
	f.Add("/tracks/" + id + "/v2/../v2/hls/x.m3u8")
	f.Fuzz(func(t *testing.T, key string) {
		req, _, err := p.Plan(context.Background(), eventtype.TrackRenditionsReplacedData{TrackID: id,
			Old: []eventtype.Rendition{{Kind: "hls", StorageKey: key}}})
		if err != nil {
			if strings.ContainsRune(key, 0) || !utf8.ValidString(key) {
				return // PostgreSQL refuses such text; the handler fails and the broker dead-letters it
			}
			t.Fatal(err)
		}
		if len(req.Tags) != 0 {
			t.Fatalf("planned a tag purge %v", req.Tags)
		}
		for _, k := range req.Keys {
			if k == cur || strings.HasPrefix(k, "tracks/"+id+"/v2/hls/") {
				t.Fatalf("planned to purge current key %q", k)
			}
		}
		for _, pr := range req.Prefixes {
			if !strings.Contains("/"+pr, "/tracks/"+id+"/") || len(pr) <= len("tracks/"+id+"/") || strings.HasPrefix(cur, pr) || strings.Contains(pr, "..") {
				t.Fatalf("planned prefix %q", pr)
			}
		}
	})
}

func TestTakedownRevokesIssuedURLsEverywhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	origin := edgetest.NewOrigin(t, map[string]string{"tracks/p3/v1/a.m4s": "a", "tracks/p3/v1/b.m4s": "b", "tracks/p4/v1/a.m4s": "other"})
	keys := urlsign.Keys{"k": []byte("purge-test-secret-123")}
	pops, servers := origin.StartPOPs(t, keys, steering.POP{Name: "pop-eu-west", Region: "eu-west"}, steering.POP{Name: "pop-ru-central", Region: "ru-central"})
	status := func(s *edge.Server, k string) int {
		prefix := k[:len("tracks/p3/")]
		tok, _ := keys.Sign(urlsign.Token{KeyID: "k", Issued: time.Now().Add(-time.Minute), Expires: time.Now().Add(time.Hour), Prefix: prefix})
		r, err := http.Get(s.URL() + edge.MediaPrefix + k + "?t=" + url.QueryEscape(tok))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	for _, s := range servers {
		if c := status(s, "tracks/p3/v1/a.m4s"); c != 200 {
			t.Fatalf("before: %d", c)
		}
	}
	f := New()
	if err := f.Start(ctx, map[string]string{"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret, "DATABASE_URL": testenv.Postgres(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(ctx) })
	for _, typ := range []string{eventtype.TrackUnpublished, eventtype.TrackDeleted} {
		e := event.New()
		e.SetID("t-" + typ)
		e.SetSource("/overture/catalog")
		e.SetType(typ)
		_ = e.SetData(event.ApplicationJSON, eventtype.TrackData{TrackID: "p3", Renditions: []eventtype.Rendition{{Kind: "hls", StorageKey: "tracks/p3/v1/hls/index.m3u8"}}})
		if _, err := f.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			for _, k := range []string{"tracks/p3/v1/a.m4s", "tracks/p3/v1/b.m4s"} {
				if c := status(s, k); c != 403 {
					t.Fatalf("%s after %s on %s: %d", k, typ, s.Name(), c)
				}
			}
			if c := status(s, "tracks/p4/v1/a.m4s"); c != 200 {
				t.Fatalf("another track after %s: %d", typ, c)
			}
		}
	}
}
