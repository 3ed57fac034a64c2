package function_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	"github.com/overture-music/overture/internal/identity"
	"github.com/overture-music/overture/internal/identity/identitytest"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// announcer publishes one event through the host's publisher for every event
// it handles, as a standalone function publishing to K_SINK does.
type announcer struct{}

func (announcer) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	out := event.New()
	out.SetID("announced-" + e.ID())
	out.SetType("music.overture.test.announced.v1")
	out.SetSource("/overture/announcer")
	if err := function.PublisherFrom(ctx).Publish(ctx, out); err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	return nil, nil
}

// TestServePublishesWithItsIdentityToken: a standalone function publishes to
// K_SINK with the token in OVERTURE_IDENTITY_TOKEN_FILE, read again for every
// publish, so that a rotated token is used at once — and the broker accepts
// what that identity may send and nothing else.
func TestServePublishesWithItsIdentityToken(t *testing.T) {
	t.Parallel()
	auth := identitytest.New(t)
	rec := &functiontest.Recorder{}
	pool := postgrestest.Open(t, testenv.Postgres(t))
	yaml := brokertest.NoopYAML("music.overture.test.") + brokertest.AllowYAML("announcer", identity.Subject("announcer"), "music.overture.test.")
	b := functiontest.RunBroker(t, broker.Config{Pool: pool, Objects: functiontest.Objects(t, yaml), Verifier: auth.Verifier,
		Log: slog.New(slog.DiscardHandler)}, map[string]function.Handler{"noop": rec})
	sink := httptest.NewServer(b)
	defer sink.Close()

	tokenFile := auth.TokenFile(t, "announcer")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- function.Serve(ctx, "announcer", announcer{}, map[string]string{
			"LISTEN_ADDRESS": "127.0.0.1:0", "K_SINK": sink.URL + "/overture/default", identity.TokenFileKey: tokenFile,
		}, slog.New(slog.DiscardHandler), ready)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := <-ready
	deliver := func(id string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(`{}`))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", id)
		req.Header.Set("Ce-Type", "music.overture.other.v1")
		req.Header.Set("Ce-Source", "/test")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := deliver("1"); code != http.StatusAccepted {
		t.Fatalf("handling with a valid identity: status %d", code)
	}
	if got := rec.Wait(t, 1, 10*time.Second); got[0].ID() != "announced-1" {
		t.Fatalf("delivered %s", got[0].ID())
	}
	// The kubelet rotates the projected token: a token of another workload
	// now (which no policy allows) is used at the next publish and refused.
	if err := os.WriteFile(tokenFile, []byte(auth.Token(t, "intruder")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := deliver("2"); code != http.StatusInternalServerError {
		t.Fatalf("handling with a refused identity: status %d, want 500 (the publish failed)", code)
	}
	// Rotated back to its own identity, it publishes again.
	if err := os.WriteFile(tokenFile, []byte(auth.Token(t, "announcer")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := deliver("3"); code != http.StatusAccepted {
		t.Fatalf("after rotating back: status %d", code)
	}
	if got := rec.Wait(t, 2, 10*time.Second); got[1].ID() != "announced-3" {
		t.Fatalf("delivered %s", got[1].ID())
	}
}
