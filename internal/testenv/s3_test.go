package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func s3Client(endpoint, access, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(access, secret, ""),
		UsePathStyle: true,
	})
}

func TestS3StoresObjectsAndChecksSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	endpoint, access, secret := S3(t)
	c := s3Client(endpoint, access, secret)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("audio")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	body := []byte("ID3 not really an mp3")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audio"), Key: aws.String("a/b/track.mp3"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("audio"), Key: aws.String("a/b/track.mp3")})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("got %q, want %q", got, body)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("audio"), Key: aws.String("missing")})
	var nsk *types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Fatalf("get missing key: got %v, want NoSuchKey", err)
	}
	// A client with the wrong secret is refused: the server really checks signatures.
	bad := s3Client(endpoint, access, secret+"x")
	if _, err := bad.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Fatal("list buckets with a wrong secret succeeded")
	}
}

func TestS3IsPrivatePerTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e1, a1, s1 := S3(t)
	e2, a2, s2 := S3(t)
	if e1 == e2 {
		t.Fatalf("two calls share endpoint %s", e1)
	}
	if _, err := s3Client(e1, a1, s1).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("only-here")}); err != nil {
		t.Fatal(err)
	}
	out, err := s3Client(e2, a2, s2).ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Buckets) != 0 {
		t.Fatalf("second server sees %d buckets, want 0", len(out.Buckets))
	}
}
