package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/recommend/job"
	"github.com/overture-music/overture/internal/token"
)

// On-demand refresh, the asynchronous request-reply pattern (issue 14):
// POST /v1/me/recommendations/refresh queues a job (internal/recommend/job:
// the row and its RefreshRequested event in one transaction; the listener's
// job already queued or running is shared) and answers 202 Accepted with
// the job's status URL in Location; GET on that URL reports the job, and
// once it is done where the result is and its ETag. Nothing here computes:
// the recommend function runs the job.

// JobsPath is where a listener's jobs are.
const JobsPath = "/v1/me/recommendations/jobs/"

// RetryAfter is how soon a client is told to ask about an unfinished job.
const RetryAfter = time.Second

// handleRefresh registers the two routes (in Routes: POST
// /v1/me/recommendations/refresh, GET /v1/me/recommendations/jobs/{id}) on
// mux, behind the token check.
func (s *Service) handleRefresh(mux *http.ServeMux) {
	mux.Handle("POST /v1/me/recommendations/refresh", s.Verifier.Middleware(s.Log, s.wrap(s.refresh)))
	mux.Handle("GET "+JobsPath+"{id}", s.Verifier.Middleware(s.Log, s.wrap(s.job)))
}

// JobStatus is the body of both answers.
type JobStatus struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	Reason      string     `json:"reason"`
	Attempts    int        `json:"attempts"`
	RequestedAt time.Time  `json:"requested_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// StatusURL is the job's own URL (Location of the 202).
	StatusURL string `json:"status_url"`
	// Result is where the recommendations are, once the job is done.
	Result *JobResult `json:"result,omitempty"`
	// Error says why a failed job failed.
	Error string `json:"error,omitempty"`
}

// JobResult points at a done job's result.
type JobResult struct {
	Location string `json:"location"`
	// ETag is the stored result's validator when the job finished (absent:
	// the listener had no listens to recommend from, and the location
	// serves the charts).
	ETag string `json:"etag,omitempty"`
}

func status(j job.Job) JobStatus {
	st := JobStatus{ID: j.ID, State: j.State, Reason: j.Reason, Attempts: j.Attempts, RequestedAt: j.RequestedAt.UTC(),
		StartedAt: utc(j.StartedAt), FinishedAt: utc(j.FinishedAt), StatusURL: JobsPath + j.ID, Error: j.Error}
	if j.State == job.Done {
		st.Result = &JobResult{Location: "/v1/me/recommendations", ETag: j.ResultETag}
	}
	return st
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// refresh is POST /v1/me/recommendations/refresh: 202 with the listener's
// queued or running job. It takes no body, or an empty JSON object.
func (s *Service) refresh(w http.ResponseWriter, r *http.Request) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	if err != nil {
		return problem.New(http.StatusBadRequest, "invalid-body", "the request body could not be read")
	}
	if b := bytes.TrimSpace(raw); len(b) > 0 && !bytes.Equal(b, []byte("{}")) {
		var fields map[string]json.RawMessage
		if json.Unmarshal(b, &fields) != nil {
			return problem.New(http.StatusBadRequest, "invalid-body", "the body is not JSON: this request takes no body, or an empty JSON object")
		}
		for k := range fields {
			return problem.New(http.StatusBadRequest, "invalid-body", fmt.Sprintf("unknown field %q: this request takes no body, or an empty JSON object", k))
		}
	}
	c, _ := token.FromContext(r.Context())
	var j job.Job
	var created bool
	err = postgres.InTx(r.Context(), s.Pool, func(tx pgx.Tx) error {
		var err error
		j, created, err = job.Enqueue(r.Context(), tx, c.Subject, job.Requested, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	if created {
		s.Log.InfoContext(r.Context(), "refresh queued", "job", j.ID, "user", c.Subject)
	}
	w.Header().Set("Location", JobsPath+j.ID)
	writeJob(w, http.StatusAccepted, j)
	return nil
}

// job is GET /v1/me/recommendations/jobs/{id}: the listener's job; any
// other id (another listener's job included) is 404.
func (s *Service) job(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return problem.New(http.StatusBadRequest, "invalid-parameter", fmt.Sprintf("parameter id: %q is not a job id (uuid)", id))
	}
	c, _ := token.FromContext(r.Context())
	j, err := job.Get(r.Context(), s.Pool, c.Subject, id)
	if errors.Is(err, job.ErrNotFound) {
		return problem.New(http.StatusNotFound, "job-not-found", fmt.Sprintf("you have no refresh job %s", id))
	}
	if err != nil {
		return err
	}
	writeJob(w, http.StatusOK, j)
	return nil
}

func writeJob(w http.ResponseWriter, code int, j job.Job) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if j.State == job.Queued || j.State == job.Running {
		h.Set("Retry-After", fmt.Sprint(int(RetryAfter.Seconds())))
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status(j))
}
