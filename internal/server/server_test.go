package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/server"
)

// Stopping a standalone server lets the request in flight finish and answer,
// and only then returns; new connections are refused from then on.
func TestServeFinishesInFlightRequestOnStop(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, &http.Server{Handler: h}, ln, slog.New(slog.DiscardHandler))
	}()
	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{string(b), err}
	}()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if a := <-answered; a.err != nil || a.body != "done" {
		t.Fatalf("in-flight request: body %q, error %v; want done", a.body, a.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after a graceful stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the request finished")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the stopped server still accepts connections")
	}
}

// A listener that fails makes Serve return its error at once, naming the
// address, instead of waiting for ctx.
func TestServeReturnsListenerFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(context.Background(), &http.Server{}, ln, slog.New(slog.DiscardHandler))
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Serve on a closed listener returned nil")
		}
		if got := err.Error(); !strings.Contains(got, addr) {
			t.Fatalf("error %q does not name %s", got, addr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve on a closed listener did not return")
	}
}
