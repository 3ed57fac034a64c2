package infra

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A page of the allowed origin may PUT a presigned part and read its ETag:
// versitygw answers the preflight and the PUT with the bucket's rule; any
// other origin gets no CORS headers (the browser refuses), and so does a
// bucket without the rule.
func TestAllowBrowserUploadsAnswersPreflightForTheOriginOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := StartS3(ctx, S3Options{Dir: t.TempDir(), AccessKey: "overture", SecretKey: "overture-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(5 * time.Second) })
	for _, b := range []string{"uploads", "media"} {
		if err := s.EnsureBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	const origin = "http://127.0.0.1:8080"
	if err := s.AllowBrowserUploads(ctx, "uploads", nil); err == nil {
		t.Fatal("no origin: accepted")
	}
	if err := s.AllowBrowserUploads(ctx, "uploads", []string{origin, "http://localhost:8080"}); err != nil {
		t.Fatal(err)
	}
	// Setting it again (every start of make run) replaces it.
	if err := s.AllowBrowserUploads(ctx, "uploads", []string{origin, "http://localhost:8080"}); err != nil {
		t.Fatalf("second time: %v", err)
	}

	preflight := func(bucket, from string) http.Header {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, s.Endpoint()+"/"+bucket+"/admin/x/a.flac?partNumber=1&uploadId=u", nil)
		req.Header.Set("Origin", from)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	h := preflight("uploads", origin)
	if h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") {
		t.Fatalf("preflight from %s: %v", origin, h)
	}
	if !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight allows no Content-Type: %v", h)
	}
	for _, c := range []struct{ bucket, origin string }{{"uploads", "http://evil.example"}, {"media", origin}} {
		if got := preflight(c.bucket, c.origin).Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("preflight for %s from %s allowed %q", c.bucket, c.origin, got)
		}
	}

	// The real PUT of a presigned part exposes the ETag to the page.
	c := s3.New(s3.Options{BaseEndpoint: aws.String(s.Endpoint()), Region: s.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("overture", "overture-secret", "")})
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("uploads"), Key: aws.String("admin/x/a.flac")})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s3.NewPresignClient(c).PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("uploads"), Key: aws.String("admin/x/a.flac"),
		UploadId: mp.UploadId, PartNumber: aws.Int32(1), ContentLength: aws.Int64(4)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, signed.URL, strings.NewReader("data"))
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Fatalf("PUT part: %s %v", resp.Status, resp.Header)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("PUT part: the page could not read the ETag: %v", resp.Header)
	}
}
