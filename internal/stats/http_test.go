package stats_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/stats/statstest"
)

// chdbOverHTTP serves the embedded engine the way a ClickHouse server's
// HTTP interface answers the requests HTTPExecutor makes (the statement
// as the POST body, default_format, X-ClickHouse-User/Key; 200 with the
// rows, else an error status with the message). No ClickHouse server runs
// here: this checks the HTTP executor's side and runs the same SQL through
// it, not a server's own behaviour.
func chdbOverHTTP(t *testing.T) string {
	t.Helper()
	x, _ := statstest.Embedded(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Query().Get("default_format") != "JSONEachRow" {
			http.Error(w, "Code: 1. unexpected request", http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-ClickHouse-User") != "stats" || r.Header.Get("X-ClickHouse-Key") != "s3cret" {
			http.Error(w, "Code: 516. DB::Exception: stats: Authentication failed", http.StatusUnauthorized)
			return
		}
		sql, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := x.Exec(r.Context(), string(sql))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "http://", "http://stats:s3cret@", 1)
}

func TestClickHouseOverHTTP(t *testing.T) {
	url := chdbOverHTTP(t)
	statstest.Run(t, func(t *testing.T) stats.Store {
		db := statstest.Database()
		s, err := stats.NewCH(context.Background(), stats.HTTPExecutor{URL: url}, db)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = s.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC") })
		return s
	})
}

// The server's refusals reach the caller with its message; the password
// is never part of it.
func TestHTTPExecutorErrors(t *testing.T) {
	url := chdbOverHTTP(t)
	_, err := stats.HTTPExecutor{URL: url}.Exec(context.Background(), "SELEC 1")
	require.ErrorContains(t, err, "500 Internal Server Error")
	require.ErrorContains(t, err, "SYNTAX_ERROR")
	wrong := strings.Replace(url, "s3cret", "guess", 1)
	_, err = stats.HTTPExecutor{URL: wrong}.Exec(context.Background(), "SELECT 1")
	require.ErrorContains(t, err, "Authentication failed")
	require.NotContains(t, err.Error(), "guess")
	_, err = stats.Open(context.Background(), map[string]string{stats.KeyBackend: stats.ClickHouse,
		stats.KeyClickHouseURL: "http://127.0.0.1:1", stats.KeyClickHouseDatabase: "x"}, nil)
	require.Error(t, err, "an unreachable server fails the open")
	require.NotContains(t, err.Error(), "s3cret")
}
