package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/eventtype"
)

// Upload states. pending: announced through the admin API, bytes not
// complete; received: the object exists; probing and transcoding: an
// attempt holds the lease; ready and failed are final.
const (
	StatePending     = "pending"
	StateReceived    = "received"
	StateProbing     = "probing"
	StateTranscoding = "transcoding"
	StateReady       = "ready"
	StateFailed      = "failed"
)

// ErrNotFound: no upload with that id.
var ErrNotFound = errors.New("ingest: no such upload")

// Upload is one upload record.
type Upload struct {
	ID             string     `json:"id"`
	Bucket         string     `json:"bucket"`
	Key            string     `json:"key"`
	ETag           string     `json:"etag,omitempty"`
	Size           *int64     `json:"size,omitempty"`
	State          string     `json:"state"`
	Reason         string     `json:"reason,omitempty"`
	Detail         string     `json:"detail,omitempty"`
	UploaderID     string     `json:"uploader_id,omitempty"`
	Filename       string     `json:"filename,omitempty"`
	ContentType    string     `json:"content_type,omitempty"`
	MultipartID    string     `json:"-"`
	AutoPublish    *bool      `json:"auto_publish,omitempty"`
	ReplaceTrackID string     `json:"replace_track_id,omitempty"`
	TrackID        string     `json:"track_id,omitempty"`
	ContentHash    string     `json:"content_hash,omitempty"`
	Duplicate      bool       `json:"duplicate"`
	Published      bool       `json:"published"`
	Attempts       int        `json:"attempts"`
	LeaseUntil     *time.Time `json:"-"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
}

// Final reports whether the upload reached ready or failed.
func (u Upload) Final() bool { return u.State == StateReady || u.State == StateFailed }

const uploadCols = `id::text, bucket, key, coalesce(etag, ''), size, state, coalesce(reason, ''), coalesce(detail, ''),
	coalesce(uploader_id, ''), coalesce(filename, ''), coalesce(content_type, ''), coalesce(multipart_id, ''), auto_publish,
	coalesce(replace_track_id::text, ''), coalesce(track_id::text, ''), coalesce(content_hash, ''), duplicate, published,
	attempts, lease_until, created_at, updated_at, finished_at`

func scanUpload(row pgx.Row) (Upload, error) {
	var u Upload
	err := row.Scan(&u.ID, &u.Bucket, &u.Key, &u.ETag, &u.Size, &u.State, &u.Reason, &u.Detail,
		&u.UploaderID, &u.Filename, &u.ContentType, &u.MultipartID, &u.AutoPublish,
		&u.ReplaceTrackID, &u.TrackID, &u.ContentHash, &u.Duplicate, &u.Published,
		&u.Attempts, &u.LeaseUntil, &u.CreatedAt, &u.UpdatedAt, &u.FinishedAt)
	return u, err
}

// Store reads and writes upload records.
type Store struct {
	Pool *pgxpool.Pool
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Announce records an upload the admin API is about to receive (state
// pending, no ETag yet).
func (s *Store) Announce(ctx context.Context, u Upload) (Upload, error) {
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	got, err := scanUpload(s.Pool.QueryRow(ctx, `INSERT INTO ingest_upload
		(id, bucket, key, size, state, uploader_id, filename, content_type, multipart_id, auto_publish, replace_track_id)
		VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10) RETURNING `+uploadCols,
		u.ID, u.Bucket, u.Key, u.Size, nullable(u.UploaderID), nullable(u.Filename), nullable(u.ContentType),
		nullable(u.MultipartID), u.AutoPublish, nullable(u.ReplaceTrackID)))
	if err != nil {
		return Upload{}, fmt.Errorf("announce upload: %w", err)
	}
	return got, nil
}

// Options are what a plain S3 upload says about itself in its object
// metadata (see docs/ingest.md).
type Options struct {
	AutoPublish    *bool
	ReplaceTrackID string
}

// Receive records that the object d describes exists and returns its
// record: the existing one when the same bucket, key and ETag were seen
// before (a redelivered or swept event), the announced one when the admin
// API created it, else a new one in state received with opts.
func (s *Store) Receive(ctx context.Context, d eventtype.IngestObjectData, opts Options) (Upload, error) {
	var u Upload
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		u, err = scanUpload(tx.QueryRow(ctx, `SELECT `+uploadCols+` FROM ingest_upload WHERE bucket = $1 AND key = $2 AND etag = $3`, d.Bucket, d.Key, d.ETag))
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		u, err = scanUpload(tx.QueryRow(ctx, `UPDATE ingest_upload SET etag = $3, size = $4, state = 'received', updated_at = now()
			WHERE bucket = $1 AND key = $2 AND etag IS NULL RETURNING `+uploadCols, d.Bucket, d.Key, d.ETag, d.Size))
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		u, err = scanUpload(tx.QueryRow(ctx, `INSERT INTO ingest_upload (id, bucket, key, etag, size, state, auto_publish, replace_track_id)
			VALUES ($1, $2, $3, $4, $5, 'received', $6, $7)
			ON CONFLICT (bucket, key, etag) WHERE etag IS NOT NULL DO NOTHING RETURNING `+uploadCols,
			uuid.NewString(), d.Bucket, d.Key, d.ETag, d.Size, opts.AutoPublish, nullable(opts.ReplaceTrackID)))
		if errors.Is(err, pgx.ErrNoRows) { // inserted concurrently
			u, err = scanUpload(tx.QueryRow(ctx, `SELECT `+uploadCols+` FROM ingest_upload WHERE bucket = $1 AND key = $2 AND etag = $3`, d.Bucket, d.Key, d.ETag))
		}
		return err
	})
	if err != nil {
		return Upload{}, fmt.Errorf("record upload %s/%s: %w", d.Bucket, d.Key, err)
	}
	return u, nil
}

// Lease starts an attempt on upload id: it moves a received (or abandoned)
// upload to probing for lease, counting the attempt, and fixes the track id
// the attempt writes under (the replaced track, else a new id kept across
// attempts). ok is false when the upload is final or another attempt holds
// an unexpired lease.
func (s *Store) Lease(ctx context.Context, id string, lease time.Duration) (u Upload, ok bool, err error) {
	u, err = scanUpload(s.Pool.QueryRow(ctx, `UPDATE ingest_upload
		SET state = 'probing', attempts = attempts + 1, lease_until = now() + make_interval(secs => $2),
		    track_id = coalesce(track_id, replace_track_id, $3::uuid), reason = NULL, detail = NULL, updated_at = now()
		WHERE id = $1 AND state IN ('received', 'probing', 'transcoding') AND (lease_until IS NULL OR lease_until < now())
		RETURNING `+uploadCols, id, lease.Seconds(), uuid.NewString()))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, false, nil
	}
	if err != nil {
		return Upload{}, false, fmt.Errorf("lease upload %s: %w", id, err)
	}
	return u, true, nil
}

// Progress moves a leased upload to state (transcoding) and records its
// content hash.
func (s *Store) Progress(ctx context.Context, id, state, contentHash string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE ingest_upload SET state = $2, content_hash = coalesce(nullif($3, ''), content_hash), updated_at = now()
		WHERE id = $1 AND state IN ('probing', 'transcoding')`, id, state, contentHash)
	if err != nil {
		return fmt.Errorf("upload %s → %s: %w", id, state, err)
	}
	return nil
}

// Result is how an attempt ended, written by Finish in the caller's
// transaction.
type Result struct {
	State       string // ready or failed
	TrackID     string
	ContentHash string
	Duplicate   bool
	Published   bool
	Reason      string
	Detail      string
}

// Finish records r on upload id in tx and releases the lease. It returns
// false when the upload is already final (a concurrent attempt won).
func (s *Store) Finish(ctx context.Context, tx pgx.Tx, id string, r Result) (Upload, bool, error) {
	u, err := scanUpload(tx.QueryRow(ctx, `UPDATE ingest_upload SET state = $2, track_id = coalesce(nullif($3, '')::uuid, track_id),
		content_hash = coalesce(nullif($4, ''), content_hash), duplicate = $5, published = $6, reason = nullif($7, ''), detail = nullif($8, ''),
		lease_until = NULL, finished_at = now(), updated_at = now()
		WHERE id = $1 AND state NOT IN ('ready', 'failed') RETURNING `+uploadCols,
		id, r.State, r.TrackID, r.ContentHash, r.Duplicate, r.Published, r.Reason, r.Detail))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, false, nil
	}
	if err != nil {
		return Upload{}, false, fmt.Errorf("finish upload %s: %w", id, err)
	}
	return u, true, nil
}

// Get returns upload id.
func (s *Store) Get(ctx context.Context, id string) (Upload, error) {
	return getUpload(ctx, s.Pool, id)
}

func getUpload(ctx context.Context, q querier, id string) (Upload, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Upload{}, ErrNotFound
	}
	u, err := scanUpload(q.QueryRow(ctx, `SELECT `+uploadCols+` FROM ingest_upload WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, ErrNotFound
	}
	if err != nil {
		return Upload{}, fmt.Errorf("load upload %s: %w", id, err)
	}
	return u, nil
}

// List returns the newest uploads first, at most limit, created before
// before (zero: now).
func (s *Store) List(ctx context.Context, limit int, before time.Time) ([]Upload, error) {
	if before.IsZero() {
		before = time.Now().Add(time.Hour)
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+uploadCols+` FROM ingest_upload WHERE created_at < $1 ORDER BY created_at DESC, id LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Upload, error) { return scanUpload(r) })
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	return out, nil
}

// ReadyWithContent returns a ready upload (not a duplicate) whose audio had
// hash, other than except.
func ReadyWithContent(ctx context.Context, tx pgx.Tx, hash, except string) (Upload, bool, error) {
	u, err := scanUpload(tx.QueryRow(ctx, `SELECT `+uploadCols+` FROM ingest_upload
		WHERE content_hash = $1 AND state = 'ready' AND track_id IS NOT NULL AND id <> $2 ORDER BY finished_at LIMIT 1`, hash, except))
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, false, nil
	}
	if err != nil {
		return Upload{}, false, fmt.Errorf("look up content %s: %w", hash, err)
	}
	return u, true, nil
}

// known returns which of keys (with their ETags) have a record in bucket.
func (s *Store) known(ctx context.Context, bucket string, keys, etags []string) (map[[2]string]bool, error) {
	rows, err := s.Pool.Query(ctx, `SELECT key, etag FROM ingest_upload
		WHERE bucket = $1 AND (key, etag) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, bucket, keys, etags)
	if err != nil {
		return nil, fmt.Errorf("look up records: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]bool{}
	for rows.Next() {
		var k, e string
		if err := rows.Scan(&k, &e); err != nil {
			return nil, fmt.Errorf("look up records: %w", err)
		}
		out[[2]string{k, e}] = true
	}
	return out, rows.Err()
}

// stalled returns records of bucket whose processing stopped: received for
// longer than idle with no attempt running, or leased by an attempt whose
// lease ran out (its process died).
func (s *Store) stalled(ctx context.Context, bucket string, idle time.Duration) ([]Upload, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+uploadCols+` FROM ingest_upload WHERE bucket = $1 AND etag IS NOT NULL AND (
		(state = 'received' AND updated_at < now() - make_interval(secs => $2)) OR
		(state IN ('probing', 'transcoding') AND lease_until < now())) ORDER BY created_at LIMIT 1000`, bucket, idle.Seconds())
	if err != nil {
		return nil, fmt.Errorf("look up stalled uploads: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Upload, error) { return scanUpload(r) })
	if err != nil {
		return nil, fmt.Errorf("look up stalled uploads: %w", err)
	}
	return out, nil
}

// Renew extends the lease of a running attempt (its heartbeat); false when
// the attempt lost it (the upload became final meanwhile).
func (s *Store) Renew(ctx context.Context, id string, lease time.Duration) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `UPDATE ingest_upload SET lease_until = now() + make_interval(secs => $2)
		WHERE id = $1 AND state IN ('probing', 'transcoding')`, id, lease.Seconds())
	if err != nil {
		return false, fmt.Errorf("renew lease of upload %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release gives up an attempt that failed for a passing reason (S3 or the
// database unreachable, the process stopping): the upload goes back to
// received so the next delivery starts over at once.
func (s *Store) Release(ctx context.Context, id string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE ingest_upload SET state = 'received', lease_until = NULL, updated_at = now()
		WHERE id = $1 AND state IN ('probing', 'transcoding')`, id)
	if err != nil {
		return fmt.Errorf("release upload %s: %w", id, err)
	}
	return nil
}
