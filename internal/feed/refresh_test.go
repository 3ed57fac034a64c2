package feed_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/feed"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/recommend/job"
	"github.com/overture-music/overture/internal/recommend/result"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// do sends method path as user (no token when user is "") with body.
func (b *bundle) do(t *testing.T, method, path, user, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+b.auth.Token(t, user, tokentest.Options{}))
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, raw
}

func decodeJob(t *testing.T, raw []byte) feed.JobStatus {
	t.Helper()
	var st feed.JobStatus
	require.NoError(t, json.Unmarshal(raw, &st), "%s", raw)
	return st
}

// count is how many refresh jobs user has, and RefreshRequested events the
// outbox holds for them.
func (b *bundle) count(t *testing.T, user string) (jobs, events int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.results.Pool.QueryRow(ctx, `SELECT count(*) FROM recommend_job WHERE user_id = $1`, user).Scan(&jobs))
	require.NoError(t, b.results.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = $1 AND event->>'subject' = $2`, eventtype.RefreshRequested, user).Scan(&events))
	return jobs, events
}

// TestRefreshIsAcceptedAndReportsItsJob: the asynchronous request-reply
// pattern. POST answers 202 with the job's URL in Location, the job and its
// event are stored together, GET on the URL reports it queued, then — once
// the recommend function finished it — done, with the result's location
// and ETag.
func TestRefreshIsAcceptedAndReportsItsJob(t *testing.T) {
	ctx := context.Background()
	b := setup(t)
	res, raw := b.do(t, http.MethodPost, "/v1/me/recommendations/refresh", "ana", "")
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", raw)
	st := decodeJob(t, raw)
	require.Equal(t, job.Queued, st.State)
	require.Equal(t, job.Requested, st.Reason)
	require.Equal(t, "/v1/me/recommendations/jobs/"+st.ID, res.Header.Get("Location"))
	require.Equal(t, res.Header.Get("Location"), st.StatusURL)
	require.Equal(t, "1", res.Header.Get("Retry-After"))
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	jobs, events := b.count(t, "ana")
	require.Equal(t, 1, jobs)
	require.Equal(t, 1, events, "the job's event is in the outbox")

	res, raw = b.do(t, http.MethodGet, st.StatusURL, "ana", "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
	require.Equal(t, job.Queued, decodeJob(t, raw).State)
	require.Nil(t, decodeJob(t, raw).Result)

	// The recommend function runs it.
	now := time.Now()
	_, ok, err := job.Begin(ctx, b.results.Pool, st.ID, now)
	require.NoError(t, err)
	require.True(t, ok)
	res, raw = b.do(t, http.MethodGet, st.StatusURL, "ana", "")
	require.Equal(t, job.Running, decodeJob(t, raw).State)
	require.Equal(t, "1", res.Header.Get("Retry-After"))
	r, err := result.New(result.Body{UserID: "ana", Model: "m", Version: "v", MadeAt: now, Sections: []result.Section{}})
	require.NoError(t, err)
	_, err = b.results.Put(ctx, []result.Result{r})
	require.NoError(t, err)
	require.NoError(t, job.Finish(ctx, b.results.Pool, st.ID, r.ETag, now))

	res, raw = b.do(t, http.MethodGet, st.StatusURL, "ana", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, res.Header.Get("Retry-After"))
	done := decodeJob(t, raw)
	require.Equal(t, job.Done, done.State)
	require.Equal(t, &feed.JobResult{Location: "/v1/me/recommendations", ETag: r.ETag}, done.Result)
	require.NotNil(t, done.FinishedAt)
	res, _ = b.get(t, "ana", map[string]string{"If-None-Match": done.Result.ETag})
	require.Equal(t, http.StatusNotModified, res.StatusCode, "the location serves that result")

	// Another request after the job finished queues a new one.
	res, raw = b.do(t, http.MethodPost, "/v1/me/recommendations/refresh", "ana", "{}")
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", raw)
	require.NotEqual(t, st.ID, decodeJob(t, raw).ID)
}

// TestConcurrentRefreshesShareOneJob: N parallel POSTs of one listener end
// in one job (the database's unique index decides) and one event; every
// answer names it.
func TestConcurrentRefreshesShareOneJob(t *testing.T) {
	b := setup(t)
	const n = 24
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/v1/me/recommendations/refresh", nil)
			req.Header.Set("Authorization", "Bearer "+b.auth.Token(t, "bob", tokentest.Options{}))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				ids <- "error: " + err.Error()
				return
			}
			defer res.Body.Close()
			var st feed.JobStatus
			if res.StatusCode != http.StatusAccepted || json.NewDecoder(res.Body).Decode(&st) != nil {
				ids <- "status " + res.Status
				return
			}
			ids <- st.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]int{}
	for id := range ids {
		seen[id]++
	}
	require.Len(t, seen, 1, "one job: %v", seen)
	jobs, events := b.count(t, "bob")
	require.Equal(t, 1, jobs)
	require.Equal(t, 1, events)
}

// TestRefreshRefusals: another listener's job is 404, a malformed id or a
// body is 400 (problem+json, a specific message, nothing queued), no token
// is 401.
func TestRefreshRefusals(t *testing.T) {
	b := setup(t)
	_, raw := b.do(t, http.MethodPost, "/v1/me/recommendations/refresh", "ana", "")
	st := decodeJob(t, raw)

	for _, tc := range []struct {
		name, method, path, user, body string
		status                         int
		detail                         string
	}{
		{"AnotherListenersJob", http.MethodGet, st.StatusURL, "eve", "", http.StatusNotFound, "you have no refresh job " + st.ID},
		{"UnknownJob", http.MethodGet, "/v1/me/recommendations/jobs/6f1c1c1e-0000-4000-8000-000000000000", "ana", "", http.StatusNotFound, "you have no refresh job"},
		{"NotAJobID", http.MethodGet, "/v1/me/recommendations/jobs/42", "ana", "", http.StatusBadRequest, `parameter id: "42" is not a job id (uuid)`},
		{"AField", http.MethodPost, "/v1/me/recommendations/refresh", "eve", `{"model": "als"}`, http.StatusBadRequest, `unknown field "model"`},
		{"NotJSON", http.MethodPost, "/v1/me/recommendations/refresh", "eve", `please`, http.StatusBadRequest, "the body is not JSON"},
		{"NoToken", http.MethodPost, "/v1/me/recommendations/refresh", "", "", http.StatusUnauthorized, ""},
		{"NoTokenForAJob", http.MethodGet, st.StatusURL, "", "", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, raw := b.do(t, tc.method, tc.path, tc.user, tc.body)
			require.Equal(t, tc.status, res.StatusCode, "%s", raw)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			var p struct{ Detail string }
			require.NoError(t, json.Unmarshal(raw, &p))
			require.Contains(t, p.Detail, tc.detail)
		})
	}
	jobs, _ := b.count(t, "eve")
	require.Zero(t, jobs, "a refused request queued nothing")
}

// TestAStaleJobDoesNotBlockTheListener: a job queued longer than job.Stale
// ago (its event dead-lettered, say) is failed by the next request, which
// queues a new one.
func TestAStaleJobDoesNotBlockTheListener(t *testing.T) {
	ctx := context.Background()
	b := setup(t)
	var old job.Job
	require.NoError(t, postgres.InTx(ctx, b.results.Pool, func(tx pgx.Tx) error {
		var err error
		old, _, err = job.Enqueue(ctx, tx, "cy", job.Requested, time.Now().Add(-job.Stale-time.Minute))
		return err
	}))
	_, raw := b.do(t, http.MethodPost, "/v1/me/recommendations/refresh", "cy", "")
	require.NotEqual(t, old.ID, decodeJob(t, raw).ID)
	_, raw = b.do(t, http.MethodGet, "/v1/me/recommendations/jobs/"+old.ID, "cy", "")
	st := decodeJob(t, raw)
	require.Equal(t, job.Failed, st.State)
	require.Contains(t, st.Error, "abandoned")
}
