package cli

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// `overture gateway` gives the cluster the one origin of `make run`: a
// service's route reaches that service's upstream with its path and query,
// the client's address forwarded; a path no service serves is a 404
// problem that reaches no upstream.
func TestGatewayRoutesToEachService(t *testing.T) {
	var mu sync.Mutex
	hits := map[string][]*http.Request{}
	upstreams := map[string]*httptest.Server{}
	upstream := func(name string) *url.URL {
		mu.Lock()
		defer mu.Unlock()
		if upstreams[name] == nil {
			upstreams[name] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits[name] = append(hits[name], r.Clone(r.Context()))
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"from":"` + name + `"}`))
			}))
			t.Cleanup(upstreams[name].Close)
		}
		u, _ := url.Parse(upstreams[name].URL)
		return u
	}
	h, err := gatewayHandler(map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"}, upstream, nil)
	require.NoError(t, err)
	gw := httptest.NewServer(h)
	defer gw.Close()

	resp, err := http.Get(gw.URL + "/v1/search?q=night")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	mu.Lock()
	require.Len(t, hits["query"], 1, "GET /v1/search is the query service's")
	got := hits["query"][0]
	mu.Unlock()
	require.Equal(t, "/v1/search", got.URL.Path)
	require.Equal(t, "night", got.URL.Query().Get("q"))
	require.NotEmpty(t, got.Header.Get("X-Forwarded-For"))

	resp, err = http.Get(gw.URL + "/v1/no-such-thing")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, r := range hits {
		total += len(r)
	}
	require.Equal(t, 1, total, "the unknown path reached a service")
}
