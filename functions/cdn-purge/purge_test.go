package cdnpurge

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPurgesReplacedRenditionsEverywhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	segs := []string{"tracks/p1/hls/index.m3u8", "tracks/p1/hls/seg-1.ts", "tracks/p2/hls/seg-1.ts"}
	origin := edgetest.NewOrigin(t, nil)
	for _, k := range segs {
		origin.Put(t, k, "old")
	}
	keys := urlsign.Keys{"k": []byte("purge-test-secret-123")}
	pops, servers := origin.StartPOPs(t, keys, steering.POP{Name: "pop-eu-west", Region: "eu-west"},
		steering.POP{Name: "pop-eu-central", Region: "eu-central"}, steering.POP{Name: "pop-ru-central", Region: "ru-central"})
	get := func(s *edge.Server, k string) string {
		tok, _ := keys.Sign(urlsign.Token{KeyID: "k", Expires: time.Now().Add(time.Hour), Prefix: "tracks/"})
		r, err := http.Get(s.URL() + edge.MediaPrefix + k + "?t=" + url.QueryEscape(tok))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	for _, s := range servers {
		for _, k := range segs {
			get(s, k)
		}
	}
	for _, k := range segs {
		origin.Put(t, k, "new") // replaced in place at the origin
	}
	f := New()
	if err := f.Start(ctx, map[string]string{"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret}); err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetID("r1")
	e.SetSource("/overture/catalog")
	e.SetType(eventtype.TrackRenditionsReplaced)
	_ = e.SetData(event.ApplicationJSON, eventtype.TrackRenditionsReplacedData{TrackID: "p1",
		Old: []eventtype.Rendition{{Kind: "hls", StorageKey: "tracks/p1/hls/index.m3u8"}},
		New: []eventtype.Rendition{{Kind: "hls", StorageKey: "tracks/p1/hls/index.m3u8"}}})
	for range 2 { // a duplicate delivery is harmless
		if _, err := f.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		if got := get(s, "tracks/p1/hls/seg-1.ts"); got != "new" {
			t.Errorf("%s serves %q for a replaced segment", s.Name(), got)
		}
		if got := get(s, "tracks/p2/hls/seg-1.ts"); got != "old" {
			t.Errorf("%s purged another track (%q)", s.Name(), got)
		}
	}
	_ = servers[2].Stop(ctx)
	if _, err := f.Handle(ctx, e); err == nil {
		t.Fatal("purge with an unreachable POP succeeded; the broker would not retry")
	}
}

// A takedown revokes the track's issued URLs on every POP (cached and not
// yet cached objects alike) and leaves other tracks alone.
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
	if err := f.Start(ctx, map[string]string{"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret}); err != nil {
		t.Fatal(err)
	}
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
