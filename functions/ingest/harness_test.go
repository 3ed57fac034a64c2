package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/infra"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) {
	var child map[string]string
	if ok, err := testenv.ChildConfig(killChildEnv, &child); ok {
		if err == nil {
			err = killChild(child)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testenv.Main(m)
}

// bundle is one test's ingestion path: versitygw notifying the S3 event
// source, which publishes into the embedded broker, which delivers to the
// ingest function under the Triggers of triggers/ingest.yaml.
type bundle struct {
	f      *Function
	pool   *pgxpool.Pool
	s3     *s3.Client
	pub    function.Publisher
	source *ing.Source
	// down makes the source drop notifications, as if it were not running.
	down atomic.Bool
	cfg  map[string]string
}

const uploads, mediaBucket = "uploads", "media"

// setup starts everything; extra overrides cfg.
func setup(t *testing.T, extra map[string]string) *bundle {
	t.Helper()
	b := setupStorage(t, extra)
	b.f = New()
	b.f.Log = slog.New(slog.DiscardHandler)
	b.pool = functiontest.Start(t, b.f, b.cfg)
	handlers := map[string]function.Handler{Name: b.f, deadletter.Name: &functiontest.Recorder{}}
	br := functiontest.RunBroker(t, broker.Config{Pool: b.pool, Objects: ingestObjects(t),
		Log: slog.New(slog.DiscardHandler), Poll: 100 * time.Millisecond}, handlers)
	b.pub = br
	b.source.Publisher = br
	return b
}

// ingestObjects is the default Broker with the Triggers of triggers/ingest.yaml.
func ingestObjects(t testing.TB) *manifest.Set {
	t.Helper()
	yaml, err := os.ReadFile("../../triggers/ingest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return functiontest.Objects(t, brokertest.BrokerYAML+"---\n"+string(yaml))
}

// setupStorage starts versitygw notifying the S3 event source (whose
// Publisher the caller sets) and fills b.cfg and b.s3, with a fresh test
// database in DATABASE_URL; no function, no broker.
func setupStorage(t *testing.T, extra map[string]string) *bundle {
	t.Helper()
	b := &bundle{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secret := "test-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b.source = &ing.Source{Bucket: uploads, Secret: secret, Log: slog.New(slog.DiscardHandler)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b.source.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })

	dir, err := os.MkdirTemp(testenv.Dir(), "ingest-s3-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := infra.StartS3(ctx, infra.S3Options{Dir: dir, AccessKey: "ingest", SecretKey: "ingest-test-secret",
		EventWebhookURL: ing.WebhookURL("http://"+ln.Addr().String(), secret), EventFilter: []string{"s3:ObjectCreated:*"}})
	if err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(5 * time.Second) })
	for _, bk := range []string{uploads, mediaBucket} {
		if err := s.EnsureBucket(ctx, bk); err != nil {
			t.Fatal(err)
		}
	}
	b.cfg = map[string]string{"S3_ENDPOINT": s.Endpoint(), "S3_ACCESS_KEY": s.AccessKey, "S3_SECRET_KEY": s.SecretKey,
		"S3_REGION": s.Region, "INGEST_BUCKET": uploads, "CDN_BUCKET": mediaBucket, "INGEST_LEASE": "3s", "INGEST_TIMEOUT": "2m"}
	for k, v := range extra {
		b.cfg[k] = v
	}
	b.cfg["DATABASE_URL"] = testenv.Postgres(t)
	b.s3 = ing.S3Config{Endpoint: s.Endpoint(), Region: s.Region, AccessKey: s.AccessKey, SecretKey: config.NewSecret(s.SecretKey)}.Client()
	return b
}

// put uploads data to uploads/key with a plain S3 PutObject.
func (b *bundle) put(t *testing.T, key string, data []byte, meta map[string]string) string {
	t.Helper()
	out, err := b.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(uploads), Key: aws.String(key),
		Body: bytes.NewReader(data), Metadata: meta})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return ing.NormalizeETag(aws.ToString(out.ETag))
}

// sweep delivers one ping to the function, as the PingSource would.
func (b *bundle) sweep(t *testing.T) {
	t.Helper()
	ping := event.New()
	ping.SetID(fmt.Sprintf("tick-%d", time.Now().UnixNano()))
	ping.SetType(eventtype.Ping)
	ping.SetSource("/apis/v1/namespaces/overture/pingsources/ingest-sweep")
	if _, err := b.f.Handle(function.WithPublisher(context.Background(), b.pub), ping); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

// final waits until the upload of bucket/key reaches ready or failed.
func (b *bundle) final(t *testing.T, key string, within time.Duration) ing.Upload {
	t.Helper()
	var u ing.Upload
	testenv.WaitFor(t, within, "upload "+key+" to finish", func() bool {
		var id string
		err := b.pool.QueryRow(context.Background(), `SELECT id::text FROM ingest_upload WHERE bucket = $1 AND key = $2 AND state IN ('ready', 'failed')`, uploads, key).Scan(&id)
		if err != nil {
			return false
		}
		u, err = b.f.Store.Get(context.Background(), id)
		return err == nil
	})
	return u
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// mediaKeys lists the media bucket's keys under prefix.
func (b *bundle) mediaKeys(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.s3, &s3.ListObjectsV2Input{Bucket: aws.String(mediaBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// tone makes a test file with ffmpeg: seconds of a sine at freq Hz in the
// format of ext, with tags.
func tone(t *testing.T, ext string, freq int, seconds float64, tags map[string]string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tone"+ext)
	args := []string{"-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:duration=%g:sample_rate=44100", freq, seconds)}
	for k, v := range tags {
		args = append(args, "-metadata", k+"="+v)
	}
	switch ext {
	case ".mp3":
		args = append(args, "-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3")
	case ".flac":
		args = append(args, "-c:a", "flac")
	}
	args = append(args, "-y", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// probeDuration is ffprobe's duration of data, for comparison.
func probeDuration(t *testing.T, data []byte, ext string) time.Duration {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe"+ext)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", p).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(sec * float64(time.Second))
}
