// Package ingest is the ingest function: it turns an object created in the
// uploads bucket (eventtype.IngestObjectCreated, from the S3 event source or
// the sweep) into a draft or published track, and on every tick of the
// ingest-sweep PingSource runs the reconcile sweep (internal/ingest.Sweeper).
//
// One ingestion: record the object (idempotent on bucket, key and ETag),
// take the record's lease, download the object, run media.Processor.Process,
// upload every output under tracks/<track id>/<upload id>/ in the media
// bucket, then in ONE transaction create or match artists and album, create
// the track with its renditions (or replace an existing track's audio),
// publish it when asked, mark the record ready and write IngestionCompleted.
// A failure of the input marks the record failed with media's reason and
// writes IngestionFailed instead. Outputs of a failed, duplicate or crashed
// attempt are deleted (a new attempt deletes its predecessor's first), so
// the media bucket holds only objects the catalog points to. docs/ingest.md
// tells the whole story.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/media"
	"github.com/overture-music/overture/internal/postgres"
	"github.com/overture-music/overture/internal/telemetry"
)

// Name is the function's name.
const Name = "ingest"

// Source is the CloudEvents source of IngestionCompleted and IngestionFailed.
const Source = "/overture/" + Name

// ErrInProgress: another attempt holds the upload's lease. The broker
// retries; by then the attempt has finished (the retry is a no-op) or died
// (its lease ran out and the retry takes over).
var ErrInProgress = errors.New("ingest: another attempt is processing this upload")

// Function is the ingest function.
type Function struct {
	// Log may be set before Start.
	Log *slog.Logger

	cfg     ing.Config
	pool    *postgres.Pool
	Store   *ing.Store
	S3      *s3.Client
	media   *media.Processor
	sweeper *ing.Sweeper
	lease   time.Duration
	// work is this process's directory under INGEST_TMPDIR, holding the
	// attempts' temporary files; lock (flock on work/LOCK) says it is alive.
	work string
	lock *os.File

	// afterUpload, when set by a test, runs after the outputs are uploaded
	// and before the catalog transaction (the crash window).
	afterUpload func(ctx context.Context, u ing.Upload) error
}

// New returns the function; Start configures it.
func New() *Function { return &Function{} }

// Start reads the settings of ingest.ReadConfig plus INGEST_LEASE (how long
// an attempt's lease lasts between heartbeats, default 1m) and INGEST_TMPDIR,
// opens and migrates the database (catalog and ingest tables), removes the
// temporary files of dead processes and makes this process's own directory.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	if f.Log == nil {
		f.Log = slog.Default()
	}
	f.Log = f.Log.With("function", Name)
	c, err := ing.ReadConfig(cfg)
	if err != nil {
		return err
	}
	f.cfg = c
	f.lease = time.Minute
	if v := cfg["INGEST_LEASE"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fmt.Errorf("%s: INGEST_LEASE: want a duration of at least 1s, not %q", Name, v)
		}
		f.lease = d
	}
	f.pool, err = postgres.OpenMigrated(ctx, c.DatabaseURL, func(ctx context.Context, p *pgxpool.Pool) error {
		if err := catalog.Migrate(ctx, p); err != nil {
			return err
		}
		return ing.Migrate(ctx, p)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	f.Store = &ing.Store{Pool: f.pool.Pool}
	f.S3 = c.S3.Client()
	f.media = media.New(media.Config{MaxDuration: c.MaxDuration, Timeout: c.Timeout})
	f.sweeper = &ing.Sweeper{Store: f.Store, S3: f.S3, Bucket: c.UploadsBucket}
	if f.work, f.lock, err = openWorkDir(cmp.Or(cfg["INGEST_TMPDIR"], os.TempDir()), f.Log); err != nil {
		f.pool.Close()
		return err
	}
	return nil
}

// Stop releases the pool and removes the process's temporary directory.
func (f *Function) Stop(context.Context) error {
	if f.pool != nil {
		f.pool.Close()
	}
	if f.lock != nil {
		_ = os.RemoveAll(f.work)
		_ = f.lock.Close()
	}
	return nil
}

// Ready reports whether the database answers.
func (f *Function) Ready(ctx context.Context) (bool, error) { return f.pool.Ready(ctx) }

// Handle ingests an announced object, or sweeps on a ping.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	ctx = telemetry.FromEvent(ctx, e)
	switch e.Type() {
	case eventtype.Ping:
		n, err := f.sweeper.Run(ctx, function.PublisherFrom(ctx))
		if n > 0 {
			f.Log.InfoContext(ctx, "sweep announced objects", "events", n)
		}
		return nil, err
	case eventtype.IngestObjectCreated:
		var d eventtype.IngestObjectData
		if err := e.DataAs(&d); err != nil {
			return nil, fmt.Errorf("%s: event %s: %w", Name, e.ID(), err)
		}
		return nil, f.Ingest(ctx, d)
	default:
		return nil, nil
	}
}

// leaseKeeper renews an attempt's lease until stopped.
func (f *Function) keepLease(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(f.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := f.Store.Renew(ctx, id, f.lease); err != nil && ctx.Err() == nil {
					f.Log.WarnContext(ctx, "renew lease", "upload_id", id, "error", err)
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// autoPublish is the upload's option, else the default.
func (f *Function) autoPublish(u ing.Upload) bool {
	if u.AutoPublish != nil {
		return *u.AutoPublish
	}
	return f.cfg.AutoPublish
}

func parseBool(v string) *bool {
	if v == "" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil
	}
	return &b
}

// workDirPrefix names the processes' directories under INGEST_TMPDIR.
const workDirPrefix = "overture-ingest-"

// openWorkDir first removes the directories under root of processes that
// died (SIGKILL, a crash: their attempts' deferred removal never ran), then
// makes this process's own, returning it with its lock held. A directory is
// alive while its LOCK file is flocked: the kernel drops the lock when its
// process ends, however it ends.
func openWorkDir(root string, log *slog.Logger) (string, *os.File, error) {
	dead, _ := filepath.Glob(filepath.Join(root, workDirPrefix+"*"))
	for _, d := range dead {
		lock, err := os.Open(filepath.Join(d, "LOCK"))
		if err != nil {
			continue // not one of ours, or its process is just making it
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if err := os.RemoveAll(d); err != nil {
				log.Warn("remove a dead process's temporary files", "dir", d, "error", err)
			} else {
				log.Info("removed a dead process's temporary files", "dir", d)
			}
		}
		lock.Close()
	}
	for {
		dir, err := os.MkdirTemp(root, workDirPrefix)
		if err != nil {
			return "", nil, fmt.Errorf("%s: temp dir: %w", Name, err)
		}
		name := filepath.Join(dir, "LOCK")
		lock, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			_ = os.RemoveAll(dir)
			return "", nil, fmt.Errorf("%s: temp dir: %w", Name, err)
		}
		// Another process starting now may have found LOCK unlocked and be
		// removing the directory: then start over.
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			held, err1 := lock.Stat()
			named, err2 := os.Stat(name)
			if err1 == nil && err2 == nil && os.SameFile(held, named) {
				return dir, lock, nil
			}
		}
		lock.Close()
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = os.RemoveAll(dir)
			return "", nil, fmt.Errorf("%s: lock temp dir: %w", Name, err)
		}
	}
}

// tempDir makes an attempt's directory in the process's own.
func (f *Function) tempDir(uploadID string) (string, error) {
	d, err := os.MkdirTemp(f.work, uploadID+"-")
	if err != nil {
		return "", fmt.Errorf("%s: temp dir: %w", Name, err)
	}
	return d, nil
}
