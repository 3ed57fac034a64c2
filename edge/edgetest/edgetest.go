// Package edgetest runs a small CDN for the tests of the functions that drive
// it (cdn-warm, cdn-purge): a private S3 origin with a media bucket, and real
// edge POPs in front of it, all stopped when the test ends. The tests then
// only say which objects exist and which POPs serve which regions.
//
// Packages that use it run their tests under testenv.Main.
package edgetest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/testenv"
)

// Bucket is the origin bucket POPs read from (edge.Config's default).
const Bucket = "media"

// AdminSecret is the POPs' admin secret (the functions' CDN_ADMIN_SECRET).
const AdminSecret = "adm"

// Origin is a private S3 server holding the Bucket.
type Origin struct {
	Endpoint, AccessKey, SecretKey string
	client                         *s3.Client
}

// NewOrigin starts an S3 origin whose Bucket holds objects (key to content).
func NewOrigin(t testing.TB, objects map[string]string) *Origin {
	t.Helper()
	o := &Origin{}
	o.Endpoint, o.AccessKey, o.SecretKey = testenv.S3(t)
	o.client = s3.New(s3.Options{BaseEndpoint: aws.String(o.Endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")})
	if _, err := o.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(Bucket)}); err != nil {
		t.Fatalf("create the origin bucket: %v", err)
	}
	for k, v := range objects {
		o.Put(t, k, v)
	}
	return o
}

// Put stores content under key at the origin, replacing what was there.
func (o *Origin) Put(t testing.TB, key, content string) {
	t.Helper()
	if _, err := o.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String(key),
		Body: strings.NewReader(content)}); err != nil {
		t.Fatalf("put %s at the origin: %v", key, err)
	}
}

// StartPOPs starts one POP per entry of pops (Name, Region) in front of the
// origin, each on a port of its own choosing and verifying URLs signed with
// keys; they stop when the test ends. It returns pops with their URLs filled
// in and the servers in the same order.
func (o *Origin) StartPOPs(t testing.TB, keys urlsign.Keys, pops ...steering.POP) ([]steering.POP, []*edge.Server) {
	t.Helper()
	pops = slices.Clone(pops)
	servers := make([]*edge.Server, len(pops))
	for i, p := range pops {
		s, err := edge.New(edge.Config{Name: p.Name, Region: p.Region, Addr: "127.0.0.1:0", S3Endpoint: o.Endpoint, S3AccessKey: o.AccessKey,
			S3SecretKey: o.SecretKey, SigningKeys: keys, AdminSecret: AdminSecret})
		if err != nil {
			t.Fatalf("POP %s: %v", p.Name, err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatalf("start POP %s: %v", p.Name, err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		pops[i].URL, servers[i] = s.URL(), s
	}
	return pops, servers
}

// POPList is the CDN_POPS setting (name=region=url, comma-separated) naming
// pops.
func POPList(pops []steering.POP) string {
	var list []string
	for _, p := range pops {
		list = append(list, p.Name+"="+p.Region+"="+p.URL)
	}
	return strings.Join(list, ",")
}
