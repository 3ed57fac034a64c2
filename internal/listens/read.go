package listens

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/stats"
	"github.com/overture-music/overture/internal/token"
)

// ChartCacheTTL is how long a chart answer is kept in Redis; the rollup
// recomputes charts every few minutes, so a chart is at most this much
// older than the newest rollup.
const ChartCacheTTL = time.Minute

// readRoutes are the statistics the listener (access token) and everyone
// (charts) read.
var readRoutes = []server.Route{
	{Method: http.MethodGet, Path: "/v1/me/listens"},
	{Method: http.MethodGet, Path: "/v1/me/recent"},
	{Method: http.MethodGet, Path: "/v1/me/top/{kind}"},
	{Method: http.MethodGet, Path: "/v1/me/listening-time"},
	{Method: http.MethodGet, Path: "/v1/charts/{kind}"},
}

// readHandlers sets up the read API's handlers (its routes are readRoutes
// and dashboardRoutes).
func (s *Service) readHandlers() {
	s.extra = map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /v1/me/listens":        s.history,
		"GET /v1/me/recent":         s.recent,
		"GET /v1/me/top/{kind}":     s.top,
		"GET /v1/me/listening-time": s.listeningTime,
	}
	s.admin = map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /v1/dashboard/streams":  s.dashboardStreams,
		"GET /v1/dashboard/audience": s.dashboardAudience,
	}
	s.public = map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /v1/charts/{kind}": s.chart,
		"GET /v1/stream-counts": s.streamCounts,
	}
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, problem.Validation(map[string]string{name: fmt.Sprintf("an integer from %d to %d", lo, hi)})
	}
	return n, nil
}

func encodeCursor(c *stats.Cursor) string {
	if c == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.At.UnixNano(), 10) + "." + c.ID))
}

func decodeCursor(v string) (*stats.Cursor, error) {
	if v == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err == nil {
		if ns, id, ok := strings.Cut(string(b), "."); ok {
			if n, err := strconv.ParseInt(ns, 10, 64); err == nil {
				return &stats.Cursor{At: time.Unix(0, n).UTC(), ID: id}, nil
			}
		}
	}
	return nil, problem.Validation(map[string]string{"cursor": "not a cursor this API gave out"})
}

// history is GET /v1/me/listens?limit=&cursor=: scrobbles, newest first.
func (s *Service) history(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	limit, err := intParam(r, "limit", 25, 1, 100)
	if err != nil {
		return err
	}
	after, err := decodeCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	list, next, err := s.Stats.History(r.Context(), c.Subject, after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"listens": nonNil(list), "next_cursor": encodeCursor(next)})
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// recent is GET /v1/me/recent: the last plays of any length.
func (s *Service) recent(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	limit, err := intParam(r, "limit", 10, 1, 50)
	if err != nil {
		return err
	}
	list, err := s.Stats.Recent(r.Context(), c.Subject, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"listens": nonNil(list)})
	return nil
}

// top is GET /v1/me/top/{tracks|artists|albums}?range=week|month|year|all_time.
func (s *Service) top(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	kind := r.PathValue("kind")
	if kind != stats.Tracks && kind != stats.Artists && kind != stats.Albums {
		return problem.New(http.StatusNotFound, "not-found", "top lists are tracks, artists or albums")
	}
	rng := r.URL.Query().Get("range")
	if rng == "" {
		rng = "all_time"
	}
	window, ok := stats.Ranges[rng]
	if !ok {
		return problem.Validation(map[string]string{"range": "week, month, year or all_time"})
	}
	limit, err := intParam(r, "limit", 25, 1, 100)
	if err != nil {
		return err
	}
	list, err := s.Stats.Top(r.Context(), c.Subject, kind, window, s.now(), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": kind, "range": rng, "entries": nonNil(list)})
	return nil
}

// listeningTime is GET /v1/me/listening-time?days=: ms played per UTC day.
func (s *Service) listeningTime(w http.ResponseWriter, r *http.Request) error {
	c, _ := token.FromContext(r.Context())
	days, err := intParam(r, "days", 30, 1, 366)
	if err != nil {
		return err
	}
	list, err := s.Stats.ListeningTime(r.Context(), c.Subject, days, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": nonNil(list)})
	return nil
}

// chart is GET /v1/charts/{tracks|artists}?period=daily|weekly&date=YYYY-MM-DD:
// the computed chart of the period containing date (default: the newest),
// cached in Redis for ChartCacheTTL.
func (s *Service) chart(w http.ResponseWriter, r *http.Request) error {
	kind := r.PathValue("kind")
	if kind != stats.Tracks && kind != stats.Artists {
		return problem.New(http.StatusNotFound, "not-found", "charts are tracks or artists")
	}
	period := r.URL.Query().Get("period")
	if period == "" {
		period = stats.Daily
	}
	if period != stats.Daily && period != stats.Weekly {
		return problem.Validation(map[string]string{"period": "daily or weekly"})
	}
	var start time.Time
	if v := r.URL.Query().Get("date"); v != "" {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return problem.Validation(map[string]string{"date": "a date, YYYY-MM-DD"})
		}
		start = stats.DayStart(d)
		if period == stats.Weekly {
			start = stats.WeekStart(d)
		}
	}
	key := "listens:chart:" + period + ":" + kind + ":" + start.Format(time.DateOnly)
	if b, err := s.Redis.Get(r.Context(), key).Bytes(); err == nil {
		w.Header().Set("X-Cache", "hit")
		writeRaw(w, b)
		return nil
	} else if !errors.Is(err, redis.Nil) {
		s.Log.WarnContext(r.Context(), "chart cache read", "error", err)
	}
	c, err := s.Stats.Chart(r.Context(), period, kind, start)
	if errors.Is(err, stats.ErrNoChart) {
		return problem.New(http.StatusNotFound, "no-chart", "no "+period+" chart has been computed for this period")
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode chart: %w", err)
	}
	if err := s.Redis.Set(r.Context(), key, b, ChartCacheTTL).Err(); err != nil {
		s.Log.WarnContext(r.Context(), "chart cache write", "error", err)
	}
	w.Header().Set("X-Cache", "miss")
	writeRaw(w, b)
	return nil
}

func writeRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
