package cdnpurge

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPurgesReplacedRenditionsEverywhere(t *testing.T) {
	t.Parallel()
	ep, access, secret := testenv.S3(t)
	c := s3.New(s3.Options{BaseEndpoint: aws.String(ep), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatal(err)
	}
	put := func(k, v string) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	segs := []string{"tracks/p1/hls/index.m3u8", "tracks/p1/hls/seg-1.ts", "tracks/p2/hls/seg-1.ts"}
	for _, k := range segs {
		put(k, "old")
	}
	keys := urlsign.Keys{"k": []byte("purge-test-secret-123")}
	var servers []*edge.Server
	var list []string
	for _, region := range []string{"eu-west", "eu-central", "ru-central"} {
		s, err := edge.New(edge.Config{Name: "pop-" + region, Region: region, Addr: "127.0.0.1:0", S3Endpoint: ep, S3AccessKey: access,
			S3SecretKey: secret, SigningKeys: keys, AdminSecret: "adm"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		servers = append(servers, s)
		list = append(list, "pop-"+region+"="+region+"="+s.URL())
	}
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
		put(k, "new") // replaced in place at the origin
	}
	f := New()
	if err := f.Start(ctx, map[string]string{"CDN_POPS": strings.Join(list, ","), "CDN_ADMIN_SECRET": "adm"}); err != nil {
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
