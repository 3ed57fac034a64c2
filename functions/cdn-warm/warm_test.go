package cdnwarm

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func published(t *testing.T, d eventtype.TrackData) event.Event {
	e := event.New()
	e.SetID("evt-" + d.TrackID)
	e.SetSource("/overture/catalog")
	e.SetType(eventtype.TrackPublished)
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestWarmsTheOwnerPOPOfEveryRegion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	origin := edgetest.NewOrigin(t, map[string]string{
		"tracks/w1/hls-aac-128/index.m3u8": "#EXTM3U\n#EXTINF:2,\nseg-1.ts\n#EXTINF:2,\nseg-2.ts\n",
		"tracks/w1/hls-aac-128/seg-1.ts":   "one", "tracks/w1/hls-aac-128/seg-2.ts": "two",
		"tracks/w1/premium/flac/full.flac": "lossless",
	})
	keys := urlsign.Keys{"k": []byte("warm-test-secret-123")}
	pops, list := origin.StartPOPs(t, keys, steering.POP{Name: "w-a", Region: "eu-west"}, steering.POP{Name: "w-b", Region: "eu-west"},
		steering.POP{Name: "c", Region: "eu-central"}, steering.POP{Name: "r", Region: "ru-central"})
	servers := map[string]*edge.Server{}
	for _, s := range list {
		servers[s.Name()] = s
	}
	f := New()
	if err := f.Start(ctx, map[string]string{"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret}); err != nil {
		t.Fatal(err)
	}
	ev := published(t, eventtype.TrackData{TrackID: "w1", Renditions: []eventtype.Rendition{
		{Kind: "flac", StorageKey: "tracks/w1/premium/flac/full.flac", Premium: true},
		{Kind: "hls-aac-128", StorageKey: "tracks/w1/hls-aac-128/index.m3u8"},
	}})
	if _, err := f.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	owner := steering.Owners("w1", pops[:2])[0].Name
	for name, s := range servers {
		got := s.Snapshot().Objects
		want := 4
		if (name == "w-a" || name == "w-b") && name != owner {
			want = 0 // the region's other POP: steering never sends w1 there
		}
		if got != want {
			t.Errorf("%s holds %d objects, want %d", name, got, want)
		}
	}
	// Redelivery is harmless: no new origin fetches anywhere.
	before := map[string]int64{}
	for n, s := range servers {
		before[n] = s.Snapshot().OriginFetches
	}
	if _, err := f.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for n, s := range servers {
		if s.Snapshot().OriginFetches != before[n] {
			t.Errorf("%s refetched on redelivery", n)
		}
	}
	// A region that cannot be warmed fails the event (the broker retries).
	_ = servers["r"].Stop(ctx)
	if _, err := f.Handle(ctx, ev); err == nil || !strings.Contains(err.Error(), "ru-central") {
		t.Fatalf("warm with a dead region: %v", err)
	}
}
