// Package ingest is the way music comes into Overture: an audio object lands
// in the uploads bucket and becomes a draft (or published) track.
//
// It holds the pieces the ingest function (functions/ingest) and the
// platform share: the upload records (table ingest_upload, one row per
// bucket, key and ETag, with state received → probing → transcoding → ready |
// failed), the S3 event source (Source: versitygw's webhook turned into
// IngestObjectCreated CloudEvents), the reconcile sweep (Sweep: objects that
// no notification announced), and the admin API (Service "ingest-admin":
// presigned multipart uploads and upload status). docs/ingest.md describes
// the path, the states and why nothing is lost or duplicated.
package ingest

import (
	"cmp"
	"context"
	"embed"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the ingest tables (and the outbox it writes to).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.MigrateOwner(ctx, pool, "ingest", migrations, outbox.Migrate)
}

// Defaults of the settings.
const (
	DefaultUploadsBucket = "uploads"
	DefaultMediaBucket   = "media"
	DefaultTimeout       = 10 * time.Minute
	DefaultMaxDuration   = 2 * time.Hour
	DefaultMaxBytes      = 4 << 30
	DefaultPartSize      = 16 << 20
)

// Config is what the ingest pieces read from the cfg map.
type Config struct {
	DatabaseURL string
	S3          S3Config
	// UploadsBucket is where admins put audio (INGEST_BUCKET, default
	// uploads); MediaBucket where renditions go (CDN_BUCKET, default media).
	UploadsBucket, MediaBucket string
	// AutoPublish is the default of an upload's auto_publish option
	// (INGEST_AUTO_PUBLISH, default false).
	AutoPublish bool
	// Timeout bounds one ingestion, ffmpeg included (INGEST_TIMEOUT).
	Timeout time.Duration
	// MaxDuration refuses longer audio (INGEST_MAX_DURATION); MaxBytes
	// larger objects (INGEST_MAX_BYTES).
	MaxDuration time.Duration
	MaxBytes    int64
	// PartSize is the multipart part size the admin API hands out
	// (INGEST_PART_SIZE, at least 5 MiB).
	PartSize int64
}

// S3Config is how to reach the S3 server.
type S3Config struct {
	Endpoint, Region string
	AccessKey        string
	SecretKey        config.Secret
}

// Read reads DATABASE_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
// S3_REGION, INGEST_BUCKET, CDN_BUCKET, INGEST_AUTO_PUBLISH, INGEST_TIMEOUT,
// INGEST_MAX_DURATION, INGEST_MAX_BYTES and INGEST_PART_SIZE from r,
// recording every problem on r.
func (c *Config) Read(r *config.Reader) {
	*c = Config{
		DatabaseURL: r.String("DATABASE_URL"),
		S3: S3Config{
			Endpoint:  r.URL("S3_ENDPOINT"),
			Region:    r.StringOr("S3_REGION", "us-east-1"),
			AccessKey: r.String("S3_ACCESS_KEY"),
			SecretKey: r.Secret("S3_SECRET_KEY"),
		},
		UploadsBucket: r.StringOr("INGEST_BUCKET", DefaultUploadsBucket),
		MediaBucket:   r.StringOr("CDN_BUCKET", DefaultMediaBucket),
		Timeout:       r.DurationOr("INGEST_TIMEOUT", DefaultTimeout),
		MaxDuration:   r.DurationOr("INGEST_MAX_DURATION", DefaultMaxDuration),
		MaxBytes:      r.Int64Or("INGEST_MAX_BYTES", DefaultMaxBytes),
		PartSize:      r.Int64Or("INGEST_PART_SIZE", DefaultPartSize),
	}
	if v := r.StringOr("INGEST_AUTO_PUBLISH", "false"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.Fail("INGEST_AUTO_PUBLISH", "must be true or false, not %q", v)
		}
		c.AutoPublish = b
	}
	if c.PartSize < 5<<20 {
		r.Fail("INGEST_PART_SIZE", "must be at least 5 MiB (S3's smallest part), not %d", c.PartSize)
	}
}

// Client returns an S3 client for c (path-style, as versitygw and the CDN
// origin use).
func (c S3Config) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(c.Endpoint),
		Region:       cmp.Or(c.Region, "us-east-1"),
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey.Reveal(), ""),
		UsePathStyle: true,
		HTTPClient:   &http.Client{Timeout: 0},
		// versitygw answers checksums only when asked; the SDK's default
		// CRC trailers on every PUT would cost a second pass for nothing.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}
