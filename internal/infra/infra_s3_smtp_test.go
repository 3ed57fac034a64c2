package infra

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A second start on the same directory must see the first one's data: that is
// what makes `make run` twice keep the uploaded audio.
func TestS3ReusesDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	o := S3Options{Dir: dir, AccessKey: "overture", SecretKey: "overture-secret"}
	s, err := StartS3(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.New(s3.Options{BaseEndpoint: aws.String(s.Endpoint()), Region: s.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")})
	if err := s.EnsureBucket(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("kept"), Key: aws.String("x"), Body: strings.NewReader("data")}); err != nil {
		t.Fatal(err)
	}
	// The posix backend keeps the object as a plain file.
	if b, err := os.ReadFile(filepath.Join(dir, "objects", "kept", "x")); err != nil || string(b) != "data" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	o.Port = s.Port
	s2, err := StartS3(ctx, o)
	if err != nil {
		t.Fatalf("restart on the same port and dir: %v", err)
	}
	defer s2.Stop(5 * time.Second)
	// The bucket is there already: ensuring it again is not an error.
	if err := s2.EnsureBucket(ctx, "kept"); err != nil {
		t.Fatalf("EnsureBucket on an existing bucket: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("kept"), Key: aws.String("x")})
	if err != nil {
		t.Fatalf("object after restart: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "data" {
		t.Fatalf("object after restart = %q", b)
	}
}

func TestStartS3RequiresCredentials(t *testing.T) {
	t.Parallel()
	if _, err := StartS3(context.Background(), S3Options{Dir: t.TempDir()}); err == nil {
		t.Fatal("StartS3 without keys succeeded")
	}
}

func TestSMTPStartsAndStops(t *testing.T) {
	t.Parallel()
	s, err := StartSMTP(context.Background(), SMTPOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.APIURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d", resp.StatusCode)
	}
	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("process still running after Stop")
	}
}
