package cdnwarm

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
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
	ep, access, secret := testenv.S3(t)
	c := s3.New(s3.Options{BaseEndpoint: aws.String(ep), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatal(err)
	}
	objs := map[string]string{
		"tracks/w1/hls-aac-128/index.m3u8": "#EXTM3U\n#EXTINF:2,\nseg-1.ts\n#EXTINF:2,\nseg-2.ts\n",
		"tracks/w1/hls-aac-128/seg-1.ts":   "one", "tracks/w1/hls-aac-128/seg-2.ts": "two",
		"tracks/w1/premium/flac/full.flac": "lossless",
	}
	for k, v := range objs {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	keys := urlsign.Keys{"k": []byte("warm-test-secret-123")}
	var pops []steering.POP
	servers := map[string]*edge.Server{}
	for _, p := range []steering.POP{{Name: "w-a", Region: "eu-west"}, {Name: "w-b", Region: "eu-west"}, {Name: "c", Region: "eu-central"}, {Name: "r", Region: "ru-central"}} {
		s, err := edge.New(edge.Config{Name: p.Name, Region: p.Region, Addr: "127.0.0.1:0", S3Endpoint: ep, S3AccessKey: access,
			S3SecretKey: secret, SigningKeys: keys, AdminSecret: "adm"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		p.URL = s.URL()
		pops = append(pops, p)
		servers[p.Name] = s
	}
	var list []string
	for _, p := range pops {
		list = append(list, p.Name+"="+p.Region+"="+p.URL)
	}
	f := New()
	if err := f.Start(ctx, map[string]string{"CDN_POPS": strings.Join(list, ","), "CDN_ADMIN_SECRET": "adm"}); err != nil {
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
