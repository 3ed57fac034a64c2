package steering

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

func putObjects(t *testing.T, ep, access, secret string, objs map[string]string) {
	t.Helper()
	c := s3.New(s3.Options{BaseEndpoint: aws.String(ep), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatal(err)
	}
	for k, v := range objs {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k), Body: strings.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
}

// newFixtureS3 starts the make-run topology: three POPs, one per region,
// with a real origin, verifying listeners' tokens for premium renditions.
func newFixtureS3(t *testing.T, ep, access, secret string) *fixture {
	t.Helper()
	f := &fixture{pops: map[string]*edge.Server{}, clk: &clock{time.Now()}, auth: tokentest.New(t)}
	var pops []POP
	for _, region := range []string{"eu-west", "eu-central", "ru-central"} {
		name := "pop-" + region
		e, err := edge.New(edge.Config{Name: name, Region: region, Addr: "127.0.0.1:0", S3Endpoint: ep, S3AccessKey: access,
			S3SecretKey: secret, SigningKeys: keys, Verifier: f.auth.Verifier(), AdminSecret: testAdminSecret})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Stop(context.Background()) })
		f.pops[name] = e
		pops = append(pops, POP{Name: name, Region: region, URL: e.URL()})
	}
	f.catalog = testCatalog(t)
	svc, err := NewWithConfig(Config{POPs: pops, Latency: latency, Keys: keys, Verifier: f.auth.Verifier(), PollInterval: -1, Now: f.clk.now,
		Catalog: f.catalog})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

const testAdminSecret = "steering-test-admin"

// testCatalog is a private catalog database (the catalog's own migrations)
// for one test.
func testCatalog(t *testing.T) *Catalog {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := catalog.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return &Catalog{Pool: pool}
}

// rendition is one row of track_rendition for addTrack.
type rendition struct {
	kind, key, codec string
	bitrate          int
	premium          bool
}

// addTrack writes a track in state with its renditions straight into the
// catalog's tables, as the catalog service would.
func addTrack(t *testing.T, c *Catalog, id, state string, rs ...rendition) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Pool.Exec(ctx, `INSERT INTO track (id, title, state) VALUES ($1, 'Tone', $2)`, id, state); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if _, err := c.Pool.Exec(ctx, `INSERT INTO track_rendition (track_id, kind, storage_key, premium, codec, bitrate) VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, 0))`,
			id, r.kind, r.key, r.premium, r.codec, r.bitrate); err != nil {
			t.Fatal(err)
		}
	}
}

func decode(t *testing.T, r *http.Response, v any) {
	t.Helper()
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
