package recommendfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/inbox"
	"github.com/overture-music/overture/internal/recommend"
	"github.com/overture-music/overture/internal/recommend/artifact"
	"github.com/overture-music/overture/internal/recommend/job"
	"github.com/overture-music/overture/internal/recommend/result"
)

// RefreshListens is how many of a listener's most recent plays a refresh
// reads (those of the training window count).
const RefreshListens = 1000

// refresh runs one refresh job: the listener's recent listens folded into
// the last recompute's stored models, the result stored like the batch's
// (replacing only an older one). A job already finished is a redelivery:
// nothing happens. A job found running was left by a worker that died: it
// runs again. A transient failure returns the error, so the broker
// retries; after job.MaxAttempts beginnings the job is failed.
func (f *Function) refresh(ctx context.Context, e event.Event) error {
	d, err := job.Data(e)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	j, ok, err := job.Begin(ctx, f.Pool, d.JobID, f.Clock.Now())
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if !ok {
		f.Log.InfoContext(ctx, "refresh job already finished: redelivery ignored", "job", d.JobID)
		return nil
	}
	if j.Attempts > job.MaxAttempts {
		return f.fail(ctx, j, fmt.Sprintf("gave up after %d attempts", job.MaxAttempts))
	}
	if f.afterBegin != nil {
		f.afterBegin()
	}
	start := time.Now()
	plays, err := f.Stats.Recent(ctx, j.UserID, RefreshListens)
	if err != nil {
		return fmt.Errorf("%s: reading the listens of %s: %w", Name, j.UserID, err)
	}
	listens := make([]recommend.Listen, 0, len(plays))
	for _, p := range plays {
		listens = append(listens, recommend.Listen{User: j.UserID, Track: p.TrackID, Artist: p.ArtistName, At: p.ListenedAt,
			Scrobble: p.Scrobble, Skipped: p.Skipped})
	}
	at := f.Clock.Now().UTC().Truncate(time.Millisecond)
	r, ok, err := f.artifacts.Recommend(ctx, j.UserID, listens, at, f.Window, f.Size)
	if errors.Is(err, artifact.ErrNoModel) {
		return f.fail(ctx, j, "no trained models yet: the first batch recompute has not run, so the recommendations page shows the charts")
	}
	if err != nil {
		return fmt.Errorf("%s: refreshing %s: %w", Name, j.UserID, err)
	}
	results := result.Store{Pool: f.Pool}
	if ok {
		if _, err := results.Put(ctx, []result.Result{r}); err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
	}
	// The stored result's ETag: this job's, or a later one's that won.
	etag := ""
	if stored, err := results.Get(ctx, j.UserID); err == nil {
		etag = stored.ETag
	} else if !errors.Is(err, result.ErrNone) {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if err := job.Finish(ctx, f.Pool, j.ID, etag, f.Clock.Now()); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	f.Log.InfoContext(ctx, "recommendations refreshed", "job", j.ID, "user", j.UserID, "reason", j.Reason,
		"attempt", j.Attempts, "listens", len(listens), "stored", ok, "took", time.Since(start))
	return nil
}

func (f *Function) fail(ctx context.Context, j job.Job, why string) error {
	f.Log.WarnContext(ctx, "refresh job failed", "job", j.ID, "user", j.UserID, "error", why)
	if err := job.Fail(ctx, f.Pool, j.ID, why, f.Clock.Now()); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

// listens counts a batch's scrobbles (of Overture tracks, listened after
// the listener's stored result was made) toward their refresh, once per
// batch (inbox). Past RefreshScrobbles, and RefreshDebounce after the last
// refresh their listening queued, it queues one (job.Enqueue: shared with
// a job already queued or running) in the same transaction. The count
// starts again from zero whenever the stored result changed.
func (f *Function) listens(ctx context.Context, e event.Event) error {
	var d eventtype.ListensData
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		return fmt.Errorf("%s: listens %s: %w", Name, e.ID(), err)
	}
	if d.UserID == "" {
		return fmt.Errorf("%s: listens %s name no user", Name, e.ID())
	}
	now := f.Clock.Now()
	queued := ""
	_, err := inbox.Handle(ctx, f.Pool, Name, e, func(tx pgx.Tx) error {
		var since *time.Time
		err := tx.QueryRow(ctx, `SELECT made_at FROM recommend_result WHERE user_id = $1`, d.UserID).Scan(&since)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading when %s's result was made: %w", d.UserID, err)
		}
		n := 0
		for _, l := range d.Listens {
			if l.Scrobble && l.TrackID != "" && (since == nil || time.Unix(l.ListenedAt, 0).After(*since)) {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		var count int
		var last *time.Time
		if err := tx.QueryRow(ctx, `
			INSERT INTO recommend_dirty (user_id, since, scrobbles) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET since = excluded.since,
				scrobbles = CASE WHEN recommend_dirty.since IS NOT DISTINCT FROM excluded.since
					THEN recommend_dirty.scrobbles + excluded.scrobbles ELSE excluded.scrobbles END
			RETURNING scrobbles, last_queued_at`, d.UserID, since, n).Scan(&count, &last); err != nil {
			return fmt.Errorf("counting %s's new scrobbles: %w", d.UserID, err)
		}
		if count < f.cfg.RefreshScrobbles || (last != nil && now.Sub(*last) < f.cfg.RefreshDebounce) {
			return nil
		}
		j, _, err := job.Enqueue(ctx, tx, d.UserID, job.Listening, now)
		if err != nil {
			return err
		}
		queued = j.ID
		if _, err := tx.Exec(ctx, `UPDATE recommend_dirty SET last_queued_at = $2 WHERE user_id = $1`, d.UserID, now); err != nil {
			return fmt.Errorf("recording %s's queued refresh: %w", d.UserID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if queued != "" {
		f.Log.InfoContext(ctx, "listening changed: refresh queued", "user", d.UserID, "job", queued)
	}
	return nil
}
