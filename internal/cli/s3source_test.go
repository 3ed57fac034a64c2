package cli

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/testenv"
)

// `overture s3-source` is what the ingest-source Knative Service runs:
// versitygw's notification of an upload becomes one object_created event
// posted to K_SINK with the workload's identity token; a post without the
// webhook's token changes nothing; without its secret it does not start.
func TestS3SourceStandalone(t *testing.T) {
	t.Setenv("INGEST_WEBHOOK_SECRET", "")
	t.Setenv("K_SINK", "http://127.0.0.1:1")
	err := runS3Source(context.Background(), nil)
	require.ErrorContains(t, err, "INGEST_WEBHOOK_SECRET")

	var mu sync.Mutex
	var got []*http.Request
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Clone(context.Background()))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("identity-token\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("LISTEN_ADDRESS", addr)
	t.Setenv("K_SINK", sink.URL)
	t.Setenv("OVERTURE_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("INGEST_WEBHOOK_SECRET", "s3cret")
	t.Setenv("INGEST_BUCKET", "uploads")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runS3Source(ctx, nil) }()
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.Transport.(*http.Transport).CloseIdleConnections()
	testenv.WaitFor(t, 2*time.Minute, "s3-source to become ready", func() bool {
		resp, err := client.Get(base + "/health/readiness")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	post := func(url, body string) int {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	record := `{"Records":[{"eventName":"s3:ObjectCreated:Put","eventTime":"2026-12-07T05:00:00Z","s3":{"bucket":{"name":"uploads"},"object":{"key":"album/01 track.flac","size":1234,"eTag":"\"abc\""}}}]}`
	require.Equal(t, http.StatusUnauthorized, post(base+ingest.WebhookPath+"?token=wrong", record))
	require.Equal(t, http.StatusOK, post(ingest.WebhookURL(base, "s3cret"), `{"Event":"s3:TestEvent"}`))
	mu.Lock()
	require.Empty(t, got, "a refused or test notification published something")
	mu.Unlock()
	require.Equal(t, http.StatusOK, post(ingest.WebhookURL(base, "s3cret"), record))
	mu.Lock()
	require.Len(t, got, 1)
	ev := got[0]
	mu.Unlock()
	require.Equal(t, "music.overture.ingest.object_created.v1", ev.Header.Get("Ce-Type"))
	require.Equal(t, "album/01 track.flac", ev.Header.Get("Ce-Subject"))
	require.Equal(t, ingest.SourceOf("uploads"), ev.Header.Get("Ce-Source"))
	require.Equal(t, "Bearer identity-token", ev.Header.Get("Authorization"))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Minute):
		t.Fatal("overture s3-source did not stop")
	}
}
