package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/eventtype"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/media"
	"github.com/overture-music/overture/internal/outbox"
	"github.com/overture-music/overture/internal/postgres"
)

// Object metadata a plain S3 upload may carry (x-amz-meta-…).
const (
	MetaTrackID     = "overture-track-id"     // replace this track's audio
	MetaAutoPublish = "overture-auto-publish" // true/false
)

// Reasons of failures found before media runs.
const (
	ReasonTooLarge = "too_large"
	ReasonNoTrack  = "no_such_track"
)

// failure is an input problem: the upload fails with Reason.
type failure struct {
	Reason, Detail string
}

func (e *failure) Error() string { return e.Reason + ": " + e.Detail }

// Ingest turns the object d into a track (see the package doc). It returns
// nil when the object was handled (made a track, failed for a reason of its
// own, was already handled, or no longer exists) and an error when the
// broker should deliver it again.
func (f *Function) Ingest(ctx context.Context, d eventtype.IngestObjectData) error {
	if d.Bucket != f.cfg.UploadsBucket {
		f.Log.WarnContext(ctx, "object of another bucket ignored", "bucket", d.Bucket, "key", d.Key)
		return nil
	}
	d.ETag = ing.NormalizeETag(d.ETag)
	head, err := f.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(d.Key)})
	if err != nil {
		if isNotFound(err) {
			f.Log.InfoContext(ctx, "object gone before ingestion", "bucket", d.Bucket, "key", d.Key)
			return nil
		}
		return fmt.Errorf("%s: head %s: %w", Name, d.Key, err)
	}
	if ing.NormalizeETag(aws.ToString(head.ETag)) != d.ETag {
		// Overwritten since: that version is gone, the new one has its own event.
		f.Log.InfoContext(ctx, "object replaced before ingestion", "bucket", d.Bucket, "key", d.Key, "etag", d.ETag)
		return nil
	}
	d.Size = aws.ToInt64(head.ContentLength)
	opts := ing.Options{AutoPublish: parseBool(head.Metadata[MetaAutoPublish]), ReplaceTrackID: strings.TrimSpace(head.Metadata[MetaTrackID])}
	u, err := f.Store.Receive(ctx, d, opts)
	if err != nil {
		return err
	}
	if u.Final() {
		return nil
	}
	u, ok, err := f.Store.Lease(ctx, u.ID, f.lease)
	if err != nil {
		return err
	}
	if !ok {
		cur, err := f.Store.Get(ctx, u.ID)
		if err == nil && cur.Final() {
			return nil
		}
		return ErrInProgress
	}
	log := f.Log.With("upload_id", u.ID, "bucket", u.Bucket, "key", u.Key, "attempt", u.Attempts)
	stop := f.keepLease(ctx, u.ID)
	defer stop()
	prefix := fmt.Sprintf("tracks/%s/%s/", u.TrackID, u.ID)
	if u.Attempts > 1 {
		// An earlier attempt died: what it uploaded is unreferenced.
		if err := f.deletePrefix(ctx, prefix); err != nil {
			return f.release(ctx, u, err)
		}
	}
	err = f.attempt(ctx, u, prefix)
	var fl *failure
	switch {
	case err == nil:
		log.InfoContext(ctx, "ingested")
		return nil
	case errors.As(err, &fl):
		log.WarnContext(ctx, "ingestion failed", "reason", fl.Reason, "detail", fl.Detail)
		return f.fail(ctx, u, prefix, fl)
	default:
		log.ErrorContext(ctx, "ingestion attempt interrupted", "error", err)
		return f.release(ctx, u, err)
	}
}

// release gives up the attempt after a passing error, so that the next
// delivery starts over.
func (f *Function) release(ctx context.Context, u ing.Upload, cause error) error {
	if err := f.Store.Release(context.WithoutCancel(ctx), u.ID); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// attempt downloads, processes, uploads and commits. Errors of the input
// are *failure.
func (f *Function) attempt(ctx context.Context, u ing.Upload, prefix string) error {
	if u.Size != nil && *u.Size == 0 {
		return &failure{string(media.ReasonEmpty), "the object has zero bytes"}
	}
	if u.Size != nil && *u.Size > f.cfg.MaxBytes {
		return &failure{ReasonTooLarge, fmt.Sprintf("the object has %d bytes, more than INGEST_MAX_BYTES (%d)", *u.Size, f.cfg.MaxBytes)}
	}
	if u.ReplaceTrackID != "" {
		if ok, err := f.trackExists(ctx, u.ReplaceTrackID); err != nil {
			return err
		} else if !ok {
			return &failure{ReasonNoTrack, "the upload asks to replace track " + u.ReplaceTrackID + ", which does not exist"}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	dir, err := f.tempDir(u.ID)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "source"+path.Ext(u.Key))
	if err := f.download(ctx, u, src); err != nil {
		return err
	}
	if _, err := f.media.Probe(ctx, src); err != nil {
		return mediaFailure(err)
	}
	if err := f.Store.Progress(ctx, u.ID, ing.StateTranscoding, ""); err != nil {
		return err
	}
	out := filepath.Join(dir, "out")
	res, err := f.media.Process(ctx, src, out)
	if err != nil {
		return mediaFailure(err)
	}
	if err := f.Store.Progress(ctx, u.ID, ing.StateTranscoding, res.ContentHash); err != nil {
		return err
	}
	// The same audio ingested before needs no copies: check before
	// uploading (and again under the commit's lock, for a concurrent twin).
	uploaded := false
	var audio catalog.Audio
	if dup, err := f.isDuplicate(ctx, u, res.ContentHash); err != nil {
		return err
	} else if !dup {
		if audio, err = f.upload(ctx, res, out, prefix); err != nil {
			return err
		}
		uploaded = true
	}
	audio.SourceObject = "s3://" + u.Bucket + "/" + u.Key + "#" + u.ETag
	audio.DurationMS = int(res.Probe.Duration.Milliseconds())
	audio.ISRC = res.Tags.ISRC
	audio.LoudnessLUFS = res.Loudness.IntegratedLUFS
	audio.LoudnessRange = res.Loudness.RangeLU
	audio.TruePeakDBTP = res.Loudness.TruePeakDBTP
	audio.ReplayGainDB = res.Loudness.GainDB
	if f.afterUpload != nil {
		if err := f.afterUpload(ctx, u); err != nil {
			return err
		}
	}
	return f.commit(ctx, u, res, audio, prefix, uploaded)
}

// isDuplicate reports whether a ready upload already holds the audio of
// hash (a replacement of the same track's audio by itself counts too).
func (f *Function) isDuplicate(ctx context.Context, u ing.Upload, hash string) (bool, error) {
	var dup bool
	err := postgres.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		prev, found, err := ing.ReadyWithContent(ctx, tx, hash, u.ID)
		dup = found && (u.ReplaceTrackID == "" || prev.TrackID == u.ReplaceTrackID)
		return err
	})
	return dup, err
}

// mediaFailure turns media's *Error into a failure; anything else (a
// cancelled context) stays a passing error.
func mediaFailure(err error) error {
	var me *media.Error
	if errors.As(err, &me) {
		return &failure{string(me.Reason), me.Detail}
	}
	return err
}

func (f *Function) trackExists(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := f.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM track WHERE id = $1::uuid)`, id).Scan(&ok)
	if err != nil {
		var pe interface{ SQLState() string }
		if errors.As(err, &pe) && pe.SQLState() == "22P02" { // not a uuid
			return false, nil
		}
		return false, fmt.Errorf("look up track %s: %w", id, err)
	}
	return ok, nil
}

// download copies the object's version u.ETag to dst.
func (f *Function) download(ctx context.Context, u ing.Upload, dst string) error {
	obj, err := f.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key), IfMatch: aws.String(`"` + u.ETag + `"`)})
	if err != nil {
		if isNotFound(err) || apiCode(err) == "PreconditionFailed" {
			return &failure{"object_gone", "the object was deleted or overwritten before it could be read"}
		}
		return fmt.Errorf("%s: download %s: %w", Name, u.Key, err)
	}
	defer obj.Body.Close()
	file, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	if _, err := io.Copy(file, obj.Body); err != nil {
		file.Close()
		return fmt.Errorf("%s: download %s: %w", Name, u.Key, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	return nil
}

// commit is the one transaction of a successful attempt. When the audio
// turns out to be a track already, the upload points at that track and the
// copies this attempt uploaded under prefix are deleted before the commit
// (if the commit then fails, the next attempt uploads again).
func (f *Function) commit(ctx context.Context, u ing.Upload, res *media.Result, audio catalog.Audio, prefix string, uploaded bool) error {
	err := postgres.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		dup := false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ingest-content:"+res.ContentHash); err != nil {
			return fmt.Errorf("lock content: %w", err)
		}
		r := ing.Result{State: ing.StateReady, TrackID: u.TrackID, ContentHash: res.ContentHash}
		replaced := u.ReplaceTrackID != ""
		if prev, found, err := ing.ReadyWithContent(ctx, tx, res.ContentHash, u.ID); err != nil {
			return err
		} else if found && (!replaced || prev.TrackID == u.ReplaceTrackID) {
			dup, r.TrackID, r.Duplicate = true, prev.TrackID, true
		}
		if dup && uploaded {
			if err := f.deletePrefix(ctx, prefix); err != nil {
				return err
			}
		}
		if !dup && !uploaded {
			return errors.New("the audio's earlier track vanished; ingest again")
		}
		if !dup {
			var err error
			if replaced {
				_, err = catalog.ReplaceAudio(ctx, tx, u.TrackID, audio)
			} else {
				_, err = catalog.CreateAudioTrack(ctx, tx, f.newTrack(u, res, audio))
			}
			if err != nil {
				return err
			}
		}
		if f.autoPublish(u) {
			if _, err := catalog.PublishTrack(ctx, tx, r.TrackID); err != nil {
				return err
			}
			r.Published = true
		}
		done, ok, err := f.Store.Finish(ctx, tx, u.ID, r)
		if err != nil {
			return err
		}
		if !ok {
			return errAlreadyFinal
		}
		return writeOutcome(ctx, tx, eventtype.IngestionCompleted, done, replaced && !dup)
	})
	if errors.Is(err, errAlreadyFinal) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: commit upload %s: %w", Name, u.ID, err)
	}
	return nil
}

var errAlreadyFinal = errors.New("upload already final")

// newTrack builds the catalog track from the tags, with fallbacks for what
// the file does not say.
func (f *Function) newTrack(u ing.Upload, res *media.Result, audio catalog.Audio) catalog.AudioTrack {
	t := res.Tags
	title := strings.TrimSpace(t.Title)
	if title == "" {
		name := u.Filename
		if name == "" {
			name = path.Base(u.Key)
		}
		title = strings.TrimSuffix(name, path.Ext(name))
	}
	artists := t.Artists
	if len(artists) == 0 && t.AlbumArtist != "" {
		artists = []string{t.AlbumArtist}
	}
	if len(artists) == 0 {
		artists = []string{UnknownArtist}
	}
	return catalog.AudioTrack{ID: u.TrackID, Title: title, Artists: artists, Album: t.Album, AlbumArtist: t.AlbumArtist,
		Year: t.Year, Position: t.TrackNumber, Genre: t.Genre, Audio: audio}
}

// UnknownArtist is the artist of a file that names none.
const UnknownArtist = "Unknown artist"

// fail records the failure with its event and deletes what the attempt
// uploaded.
func (f *Function) fail(ctx context.Context, u ing.Upload, prefix string, fl *failure) error {
	ctx = context.WithoutCancel(ctx)
	err := postgres.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		done, ok, err := f.Store.Finish(ctx, tx, u.ID, ing.Result{State: ing.StateFailed, Reason: fl.Reason, Detail: fl.Detail})
		if err != nil || !ok {
			return err
		}
		return writeOutcome(ctx, tx, eventtype.IngestionFailed, done, false)
	})
	if err != nil {
		return fmt.Errorf("%s: record failure of upload %s: %w", Name, u.ID, err)
	}
	return f.deletePrefix(ctx, prefix)
}

// writeOutcome writes IngestionCompleted or IngestionFailed for u.
func writeOutcome(ctx context.Context, tx pgx.Tx, typ string, u ing.Upload, replaced bool) error {
	e := event.New()
	e.SetID(u.ID + "/" + u.State)
	e.SetType(typ)
	e.SetSource(Source)
	e.SetSubject(u.Key)
	e.SetTime(time.Now())
	e.SetExtension("partitionkey", "upload:"+u.ID)
	d := eventtype.IngestionData{UploadID: u.ID, Bucket: u.Bucket, Key: u.Key, ETag: u.ETag, TrackID: u.TrackID,
		Duplicate: u.Duplicate, Replaced: replaced, Published: u.Published, ContentHash: u.ContentHash,
		Reason: u.Reason, Detail: u.Detail, UploaderID: u.UploaderID}
	if u.State == ing.StateFailed {
		d.TrackID = ""
	}
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	return outbox.Write(ctx, tx, e)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NotFound", "NoSuchKey", "NoSuchBucket":
		return true
	}
	return false
}
