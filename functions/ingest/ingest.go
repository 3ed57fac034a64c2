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

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/lifecycle"
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
	lifecycle.Base

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

// Config is the function's settings: ingest.Config's, INGEST_LEASE (how
// long an attempt's lease lasts between heartbeats, default 1m, at least
// 1s) and INGEST_TMPDIR (default the system's temporary directory).
type Config struct {
	ing.Config
	Lease  time.Duration
	TmpDir string
}

// Read fills c from r; every problem is recorded on r.
func (c *Config) Read(r *config.Reader) {
	c.Config.Read(r)
	if c.Lease = r.DurationOr("INGEST_LEASE", time.Minute); c.Lease < time.Second {
		r.Fail("INGEST_LEASE", "want a duration of at least 1s")
	}
	c.TmpDir = r.StringOr("INGEST_TMPDIR", os.TempDir())
}

// ConfigKeys lists the settings the function reads.
func (f *Function) ConfigKeys() []config.Key { return config.KeysFor[Config]() }

// Start reads Config, opens and migrates the database (catalog and ingest
// tables), removes the temporary files of dead processes and makes this
// process's own directory, removed again at Stop.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[Config](cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	f.cfg, f.lease = c.Config, c.Lease
	f.pool, err = f.OpenPool(ctx, c.DatabaseURL, catalog.Migrate, ing.Migrate)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	f.Store = &ing.Store{Pool: f.pool.Pool}
	f.S3 = c.S3.Client()
	f.media = media.New(media.Config{MaxDuration: c.MaxDuration, Timeout: c.Timeout})
	f.sweeper = &ing.Sweeper{Store: f.Store, S3: f.S3, Bucket: c.UploadsBucket}
	if f.work, f.lock, err = openWorkDir(c.TmpDir, f.Log); err != nil {
		return err
	}
	work, lock := f.work, f.lock
	f.Hold("work directory", func() error {
		_ = os.RemoveAll(work)
		return lock.Close()
	}, nil)
	return nil
}

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
