package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/testenv"
)

// `overture func noop` serves the function as its Knative Service would:
// CloudEvents over HTTP on LISTEN_ADDRESS, health endpoints, a 400 problem
// for a malformed event, and a clean exit on SIGTERM (context end).
func TestFuncServesStandalone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("LISTEN_ADDRESS", addr)
	t.Setenv("K_SINK", "")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFunc(ctx, []string{"noop"}) }()
	base := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer client.Transport.(*http.Transport).CloseIdleConnections()
	testenv.WaitFor(t, 2*time.Minute, "the function to become ready", func() bool {
		resp, err := client.Get(base + "/health/readiness")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	post := func(h map[string]string, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := post(map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/test", "Ce-Type": "music.overture.test.v1", "Content-Type": "application/json"}, `{}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "binary-mode event")
	resp = post(map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"2","source":"/test","type":"music.overture.test.v1"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "structured-mode event")
	resp = post(map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":""}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "malformed event")
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(35 * time.Second):
		t.Fatal("overture func did not stop")
	}
}

func TestUnknownNamesAreUsageErrors(t *testing.T) {
	ctx := context.Background()
	for name, run := range map[string]func(context.Context, []string) error{"func": runFunc, "serve": runServe} {
		t.Run(name, func(t *testing.T) {
			require.True(t, errors.Is(run(ctx, []string{"no-such-thing"}), errUsage))
			require.True(t, errors.Is(run(ctx, nil), errUsage))
		})
	}
	require.True(t, errors.Is(runDeploy(ctx, []string{"apply"}), errUsage))
}

func TestListenAddress(t *testing.T) {
	for _, tt := range []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{"LISTEN_ADDRESS": "0.0.0.0:9000", "PORT": "8081"}, "0.0.0.0:9000"},
		{map[string]string{"PORT": "8081"}, ":8081"},
		{map[string]string{}, "127.0.0.1:8080"},
	} {
		require.Equal(t, tt.want, listenAddress(tt.cfg))
	}
}
