package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/infra"
)

// S3 starts a private S3 server (versitygw, posix backend) for the test and
// returns its endpoint and root credentials. The server is empty: create the
// buckets the test needs. Clients must use path-style addressing and region
// us-east-1. The server stops when the test ends.
func S3(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	dir, err := os.MkdirTemp(Dir(), "s3-")
	if err != nil {
		t.Fatalf("s3 dir: %v", err)
	}
	// Resolve (and on a cold cache, compile) the tool outside the start-up timeout.
	if _, err := infra.ToolBin("versitygw", "VERSITYGW_BIN"); err != nil {
		t.Fatalf("test S3: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := infra.StartS3(ctx, infra.S3Options{Dir: dir, AccessKey: "test" + randHex(4), SecretKey: randHex(16)})
	if err != nil {
		t.Fatalf("start test S3: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(5 * time.Second) })
	return s.Endpoint(), s.AccessKey, s.SecretKey
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
