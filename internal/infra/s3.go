package infra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 is a private S3 server: versitygw with its posix backend, so buckets are
// directories under Dir and objects are files.
type S3 struct {
	*Process
	Port      int
	Dir       string
	AccessKey string
	SecretKey string
	Region    string
}

// Endpoint returns the server's base URL (path-style addressing).
func (s *S3) Endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", s.Port) }

// S3Options configure StartS3.
type S3Options struct {
	// Dir holds the objects (Dir/objects) and the log (Dir/versitygw.log).
	Dir  string
	Port int // 0 picks a free port
	// AccessKey and SecretKey are the root credentials clients sign with.
	AccessKey, SecretKey string
	Region               string // default us-east-1
	// EventWebhookURL, when set, makes versitygw POST an AWS-style
	// notification ({"Records":[...]}) for every event EventFilter lets
	// through, fire-and-forget. versitygw sends a test event at start and
	// exits when the URL refuses the connection: its receiver must already
	// listen. The URL goes through the environment (it may carry a secret).
	EventWebhookURL string
	// EventFilter names the events sent, e.g. "s3:ObjectCreated:*"; empty
	// sends every event. StartS3 writes it to Dir/event-filter.json and
	// passes the absolute path (versitygw resolves a relative one against
	// its storage root).
	EventFilter []string
}

// StartS3 starts versitygw on 127.0.0.1 (`go tool versitygw`, pinned in
// go.mod; VERSITYGW_BIN overrides the binary). A second start on the same Dir
// sees the same buckets and objects.
func StartS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, fmt.Errorf("s3: access and secret key are required")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	bin, err := ToolBin("versitygw", "VERSITYGW_BIN")
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	objects := filepath.Join(o.Dir, "objects")
	if err := os.MkdirAll(objects, 0o755); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	logPath := filepath.Join(o.Dir, "versitygw.log")
	env := []string{"ROOT_ACCESS_KEY_ID=" + o.AccessKey, "ROOT_SECRET_ACCESS_KEY=" + o.SecretKey}
	if o.EventWebhookURL != "" {
		env = append(env, "VGW_EVENT_WEBHOOK_URL="+o.EventWebhookURL)
		if len(o.EventFilter) > 0 {
			f, err := writeEventFilter(o.Dir, o.EventFilter)
			if err != nil {
				return nil, fmt.Errorf("s3: %w", err)
			}
			env = append(env, "VGW_EVENT_FILTER="+f)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ports := []int{o.Port}
	proc, err := startListening(wctx, logPath, ports, func(ports []int) (*Process, error) {
		// Credentials go through the environment, not argv, so they do not
		// show in ps output.
		return startEnv("s3", logPath, syscall.SIGTERM, env,
			bin, "--port", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--region", o.Region, "--quiet", "posix", objects)
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return &S3{Process: proc, Port: ports[0], Dir: o.Dir, AccessKey: o.AccessKey, SecretKey: o.SecretKey, Region: o.Region}, nil
}

// writeEventFilter writes versitygw's event filter file ({"name": true,
// ...}) into dir and returns its absolute path.
func writeEventFilter(dir string, events []string) (string, error) {
	m := map[string]bool{}
	for _, e := range events {
		m[e] = true
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("event filter: %w", err)
	}
	p, err := filepath.Abs(filepath.Join(dir, "event-filter.json"))
	if err != nil {
		return "", fmt.Errorf("event filter: %w", err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", fmt.Errorf("event filter: %w", err)
	}
	return p, nil
}

func (s *S3) client() *s3.Client {
	return s3.New(s3.Options{BaseEndpoint: aws.String(s.Endpoint()), Region: s.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")})
}

// EnsureBucket creates bucket unless it exists already (a second start on the
// same Dir finds it).
func (s *S3) EnsureBucket(ctx context.Context, bucket string) error {
	_, err := s.client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("s3: create bucket %s: %w", bucket, err)
	}
	return nil
}

// AllowBrowserUploads sets bucket's CORS configuration (PutBucketCors,
// replacing any earlier one) so that pages served from origins may PUT
// presigned multipart parts straight into it and read each answer's ETag:
// the admin console's uploads (internal/ingest's presigned URLs). versitygw
// (v1.8.0) keeps the rules with the bucket and answers the browser's
// preflight OPTIONS from them; any other origin gets no CORS headers, so
// the browser refuses. Origins are scheme://host[:port], no path.
func (s *S3) AllowBrowserUploads(ctx context.Context, bucket string, origins []string) error {
	if len(origins) == 0 {
		return fmt.Errorf("s3: CORS of bucket %s: no origin given", bucket)
	}
	_, err := s.client().PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(bucket),
		CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{{
			// A part is a PUT; the browser may send Content-Type (a typed
			// slice); the page reads ETag, the part's receipt; the preflight
			// is cached for an hour.
			AllowedOrigins: origins, AllowedMethods: []string{"PUT"}, AllowedHeaders: []string{"*"},
			ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(3600),
		}}}})
	if err != nil {
		return fmt.Errorf("s3: CORS of bucket %s: %w", bucket, err)
	}
	return nil
}
