// Package job is the recommendations' refresh jobs (issue 14, the
// asynchronous request-reply pattern): a job is a row of recommend_job
// (created by result.Migrate) that the recommend function runs for one
// listener, announced by a RefreshRequested event written into the outbox
// in the row's transaction — so a job exists if and only if its event will
// be delivered, and nothing is computed on the path that asked for it.
//
// A listener has at most one job queued or running: a partial unique index
// in the database, not a lock in some process, so concurrent requests on any
// number of replicas share one job ([Enqueue]). A job moves queued → running
// ([Begin]) → done ([Finish]) or failed ([Fail]); Begin also takes a job left
// running by a killed worker, and finds a finished one finished, so a
// redelivered event changes nothing.
package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/outbox"
)

// Source is the CloudEvents source of RefreshRequested.
const Source = "/overture/recommend"

// A job's states.
const (
	Queued  = "queued"
	Running = "running"
	Done    = "done"
	Failed  = "failed"
)

// Reasons a job was queued.
const (
	// Requested: the listener asked (POST /v1/me/recommendations/refresh).
	Requested = "requested"
	// Listening: their listening changed enough since their last result.
	Listening = "listening"
)

// Stale is how long a job may stay queued or running before a new request
// gives up on it (marks it failed) and queues another: a job whose event
// went to the dead-letter sink must not block the listener for good.
const Stale = 15 * time.Minute

// MaxAttempts is how many times a job is begun before it is failed rather
// than run again (a job that kills its worker every time).
const MaxAttempts = 5

// ErrNotFound: no such job of this listener.
var ErrNotFound = errors.New("job: not found")

// Job is one refresh job.
type Job struct {
	ID          string
	UserID      string
	Reason      string
	State       string
	Attempts    int
	RequestedAt time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	// ResultETag is the ETag of the listener's stored result when the job
	// finished ("" when the listener had nothing to recommend from).
	ResultETag string
	// Error says why a failed job failed.
	Error string
}

const columns = `id::text, user_id, reason, state, attempts, requested_at, started_at, finished_at, coalesce(result_etag, ''), coalesce(error, '')`

func scan(row pgx.Row) (Job, error) {
	var j Job
	err := row.Scan(&j.ID, &j.UserID, &j.Reason, &j.State, &j.Attempts, &j.RequestedAt, &j.StartedAt, &j.FinishedAt, &j.ResultETag, &j.Error)
	return j, err
}

// Enqueue gives user a queued job inside tx: their job already queued or
// running (created false), or a new one whose RefreshRequested event is
// written into the outbox in tx (created true). A queued or running job
// requested more than Stale before now is failed first. Concurrent calls
// for one listener, in any number of processes, end with one job: the
// database's unique index decides.
func Enqueue(ctx context.Context, tx pgx.Tx, user, reason string, now time.Time) (j Job, created bool, err error) {
	if _, err := tx.Exec(ctx, `
		UPDATE recommend_job SET state = 'failed', finished_at = $2,
			error = 'abandoned: not finished within ' || $3::text || '; a later request queued another'
		WHERE user_id = $1 AND state IN ('queued', 'running') AND requested_at < $4`,
		user, now, Stale.String(), now.Add(-Stale)); err != nil {
		return Job{}, false, fmt.Errorf("failing %s's stale refresh job: %w", user, err)
	}
	for range 3 {
		id := uuid.NewString()
		j, err = scan(tx.QueryRow(ctx, `
			INSERT INTO recommend_job (id, user_id, reason, state, requested_at) VALUES ($1, $2, $3, 'queued', $4)
			ON CONFLICT (user_id) WHERE state IN ('queued', 'running') DO NOTHING
			RETURNING `+columns, id, user, reason, now))
		if err == nil {
			return j, true, outbox.Write(ctx, tx, Event(j))
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Job{}, false, fmt.Errorf("queueing a refresh job for %s: %w", user, err)
		}
		// Another transaction holds the listener's active job: share it,
		// unless it finished between the two statements (then try again).
		j, err = scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM recommend_job WHERE user_id = $1 AND state IN ('queued', 'running')`, user))
		if err == nil {
			return j, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Job{}, false, fmt.Errorf("reading %s's refresh job: %w", user, err)
		}
	}
	return Job{}, false, fmt.Errorf("queueing a refresh job for %s: the active job kept changing", user)
}

// Event is the RefreshRequested event of j.
func Event(j Job) event.Event {
	e := event.New()
	e.SetID(j.ID)
	e.SetType(eventtype.RefreshRequested)
	e.SetSource(Source)
	e.SetSubject(j.UserID)
	e.SetTime(j.RequestedAt)
	e.SetExtension("partitionkey", j.UserID)
	_ = e.SetData(event.ApplicationJSON, eventtype.RefreshRequestedData{JobID: j.ID, UserID: j.UserID, Reason: j.Reason})
	return e
}

// Data decodes a RefreshRequested event.
func Data(e event.Event) (eventtype.RefreshRequestedData, error) {
	var d eventtype.RefreshRequestedData
	if e.Type() != eventtype.RefreshRequested {
		return d, fmt.Errorf("event %s is a %s, not a refresh request", e.ID(), e.Type())
	}
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		return d, fmt.Errorf("refresh request %s: %w", e.ID(), err)
	}
	if _, err := uuid.Parse(d.JobID); err != nil || d.UserID == "" {
		return d, fmt.Errorf("refresh request %s: no job id or user", e.ID())
	}
	return d, nil
}

// Get reads user's job id; another listener's job is ErrNotFound.
func Get(ctx context.Context, pool *pgxpool.Pool, user, id string) (Job, error) {
	j, err := scan(pool.QueryRow(ctx, `SELECT `+columns+` FROM recommend_job WHERE id = $1 AND user_id = $2`, id, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("reading refresh job %s: %w", id, err)
	}
	return j, nil
}

// Begin marks job id running and counts the attempt. ok is false when the
// job is done, failed or unknown: a redelivery of a finished job's event,
// which the caller then ignores. A job found running was left so by a
// worker that died: it is begun again.
func Begin(ctx context.Context, pool *pgxpool.Pool, id string, now time.Time) (j Job, ok bool, err error) {
	j, err = scan(pool.QueryRow(ctx, `
		UPDATE recommend_job SET state = 'running', attempts = attempts + 1, started_at = $2
		WHERE id = $1 AND state IN ('queued', 'running')
		RETURNING `+columns, id, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("beginning refresh job %s: %w", id, err)
	}
	return j, true, nil
}

// Finish marks running job id done with the listener's stored result's ETag.
func Finish(ctx context.Context, pool *pgxpool.Pool, id, etag string, now time.Time) error {
	var tag *string
	if etag != "" {
		tag = &etag
	}
	if _, err := pool.Exec(ctx, `UPDATE recommend_job SET state = 'done', finished_at = $2, result_etag = $3 WHERE id = $1 AND state = 'running'`, id, now, tag); err != nil {
		return fmt.Errorf("finishing refresh job %s: %w", id, err)
	}
	return nil
}

// Fail marks job id failed with why.
func Fail(ctx context.Context, pool *pgxpool.Pool, id, why string, now time.Time) error {
	if _, err := pool.Exec(ctx, `UPDATE recommend_job SET state = 'failed', finished_at = $2, error = $3 WHERE id = $1 AND state IN ('queued', 'running')`, id, now, why); err != nil {
		return fmt.Errorf("failing refresh job %s: %w", id, err)
	}
	return nil
}
