package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
)

func TestHandleAnswersProblemsAndLogsFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		logged bool
	}{
		{"ok", nil, http.StatusNoContent, false},
		{"problem", problem.New(http.StatusBadRequest, "bad-limit", "limit must be 1-200"), http.StatusBadRequest, false},
		{"wrapped problem", fmt.Errorf("list: %w", problem.New(http.StatusNotFound, "not-found", "no such track")), http.StatusNotFound, false},
		{"failure", errors.New("pq: connection refused at 10.0.0.7"), http.StatusInternalServerError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			h := server.Handle(slog.New(slog.NewTextHandler(&logs, nil)), "tracks", func(w http.ResponseWriter, r *http.Request) error {
				if tc.err == nil {
					w.WriteHeader(http.StatusNoContent)
				}
				return tc.err
			})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/tracks", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.err != nil && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
				t.Errorf("Content-Type %q, want a problem", rec.Header().Get("Content-Type"))
			}
			if got := strings.Contains(logs.String(), "tracks request failed"); got != tc.logged {
				t.Errorf("logged %v, want %v: %s", got, tc.logged, logs.String())
			}
			if tc.logged && strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Errorf("the failure's text reached the client: %s", rec.Body.String())
			}
		})
	}
}
