package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/functions/deadletter"
	ingestfn "github.com/overture-music/overture/functions/ingest"
	"github.com/overture-music/overture/internal/config"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
)

// pipeline is the embedded platform as make run starts it (its own
// PostgreSQL, Redis, versitygw with the webhook to the S3 event source, the
// broker with the deployed brokers/ and triggers/ingest.yaml), hosting the
// ingest function and the dead-letter sink.
type pipeline struct {
	p    *platform.Platform
	s3   *s3.Client
	pool *pgxpool.Pool
}

func startPipeline(ctx context.Context, dir string) (*pipeline, error) {
	// PostgreSQL (run as its own user when this runs as root) must reach
	// its data directory under dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	triggers := filepath.Join(dir, "triggers")
	if err := os.MkdirAll(triggers, 0o755); err != nil {
		return nil, err
	}
	yaml, err := os.ReadFile("triggers/ingest.yaml")
	if err != nil {
		return nil, fmt.Errorf("run from the repository root: %w", err)
	}
	if err := os.WriteFile(filepath.Join(triggers, "ingest.yaml"), yaml, 0o644); err != nil {
		return nil, err
	}
	var fns []functions.Entry
	for _, e := range functions.All() {
		if e.Name == ingestfn.Name || e.Name == deadletter.Name {
			fns = append(fns, e)
		}
	}
	p, err := platform.Start(ctx, platform.Options{
		Env:          map[string]string{"INGEST_AUTO_PUBLISH": "true"},
		DataDir:      filepath.Join(dir, "data"),
		ManifestDirs: []string{"brokers", triggers},
		Functions:    fns,
		Services:     []server.Service{},
		Log:          telemetry.NewLogger(io.Discard, nil),
		ReadyTimeout: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("start the platform: %w", err)
	}
	cfg := p.Config()
	pool, err := pgxpool.New(ctx, cfg[platform.KeyDatabaseURL])
	if err != nil {
		_ = p.Stop(context.Background())
		return nil, err
	}
	c := ing.S3Config{Endpoint: cfg[platform.KeyS3Endpoint], Region: cfg[platform.KeyS3Region],
		AccessKey: cfg[platform.KeyS3AccessKey], SecretKey: config.NewSecret(cfg[platform.KeyS3SecretKey])}.Client()
	return &pipeline{p: p, s3: c, pool: pool}, nil
}

func (pl *pipeline) stop() {
	pl.pool.Close()
	_ = pl.p.Stop(context.Background())
}

// put uploads a file into the uploads bucket with a plain PutObject, as
// `aws s3 cp` would; it returns when storage acknowledged it.
func (pl *pipeline) put(ctx context.Context, path, key string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = pl.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ing.DefaultUploadsBucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// waitReady polls the record of key every 20 ms until it is final.
func (pl *pipeline) waitReady(ctx context.Context, key string) error {
	for {
		var state, reason string
		err := pl.pool.QueryRow(ctx, `SELECT state, coalesce(reason, '') FROM ingest_upload WHERE bucket = $1 AND key = $2 AND state IN ('ready', 'failed')`,
			ing.DefaultUploadsBucket, key).Scan(&state, &reason)
		if err == nil {
			if state != ing.StateReady {
				return fmt.Errorf("%s failed: %s", key, reason)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", key, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// treeCPU is the CPU time of this process, of the children it waited for,
// and of every live descendant (PostgreSQL and its backends, versitygw,
// Redis, mailpit), from /proc: the whole platform's CPU.
func treeCPU() time.Duration {
	const tick = 100 // USER_HZ on Linux
	parent := map[int]int{}
	ticks := map[int]int64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
		var t int64
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[i], 10, 64)
			t += v
		}
		ticks[pid] = t
	}
	self := os.Getpid()
	var total int64
	for pid, t := range ticks {
		for p := pid; p > 1; p = parent[p] {
			if p == self {
				total += t
				break
			}
		}
	}
	return time.Duration(total) * time.Second / tick
}

// endToEnd measures one 4-minute track from the PUT acknowledged to its
// record ready (published: INGEST_AUTO_PUBLISH), and a batch of short
// tracks, each beside the bare ffmpeg commands on the same files.
func endToEnd(ctx context.Context, dir string, track input, seconds int, bareTrack sample, batch, batchSeconds int) error {
	pl, err := startPipeline(ctx, dir)
	if err != nil {
		return err
	}
	defer pl.stop()
	// Warm-up: one tiny track through the whole path (first use of the
	// pool, the broker's delivery, ffmpeg's page cache).
	warm, err := generateBatch(dir, "warm", 1, 3)
	if err != nil {
		return err
	}
	if err := pl.put(ctx, warm[0].path, "bench/warm.flac"); err != nil {
		return err
	}
	if err := pl.waitReady(ctx, "bench/warm.flac"); err != nil {
		return err
	}

	fmt.Printf("\n## End to end: S3 PUT to a playable track (%d-second track)\n\n", seconds)
	fmt.Print("The embedded platform as `make run` starts it (its own PostgreSQL, Redis, versitygw posting its webhook to the S3 event source, the broker with `brokers/` and `triggers/ingest.yaml`, the CDC outbox relay), hosting the ingest function; `INGEST_AUTO_PUBLISH=true`. The file is put into the uploads bucket with a plain S3 `PutObject`; *wall* runs from the PUT acknowledged to the upload record `ready` in PostgreSQL (the track created, its renditions in the media bucket and published, in one transaction), polled every 20 ms. CPU is the whole process tree's user+system time over that interval (this process and the ffmpeg runs it waited for, plus PostgreSQL, versitygw, Redis and mailpit: idle background work included). *Bare ffmpeg* is the median of the same file's bare runs above.\n\n")
	fmt.Println("| input | side | wall | CPU | wall vs bare | CPU vs bare |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	key := "bench/" + filepath.Base(track.path)
	if err := pl.put(ctx, track.path, key); err != nil {
		return err
	}
	cpu0, t0 := treeCPU(), time.Now()
	if err := pl.waitReady(ctx, key); err != nil {
		return err
	}
	e := sample{wall: time.Since(t0), cpu: treeCPU() - cpu0}
	fmt.Printf("| %s | pipeline (PUT → ready) | %.2f s | %.2f s | %.2f | %.2f |\n", track.label, e.wall.Seconds(), e.cpu.Seconds(),
		e.wall.Seconds()/bareTrack.wall.Seconds(), e.cpu.Seconds()/bareTrack.cpu.Seconds())
	fmt.Printf("| %s | bare ffmpeg | %.2f s | %.2f s | 1 | 1 |\n\n", track.label, bareTrack.wall.Seconds(), bareTrack.cpu.Seconds())
	over := 100 * (e.wall.Seconds()/bareTrack.wall.Seconds() - 1)
	fmt.Printf("- Overhead of the whole path over bare ffmpeg: %+.0f%% wall, %+.0f%% CPU; goal under +10%%: **%s**.\n",
		over, 100*(e.cpu.Seconds()/bareTrack.cpu.Seconds()-1), verdict(over < 10))
	fmt.Printf("- Upload to playable: %.1f s for a %d-second track; goal under 15 s: **%s**", e.wall.Seconds(), seconds, verdict(e.wall < 15*time.Second))
	if e.wall >= 15*time.Second {
		fmt.Printf(" (bare ffmpeg alone needs %.1f s here: on %d cores the goal is below the physical floor of these encodes)", bareTrack.wall.Seconds(), runtime.NumCPU())
	}
	fmt.Println(".")

	files, err := generateBatch(dir, "batch", batch, batchSeconds)
	if err != nil {
		return err
	}
	audio := float64(batch * batchSeconds)
	cpu0, t0 = treeCPU(), time.Now()
	for i, f := range files {
		if err := pl.put(ctx, f.path, fmt.Sprintf("bench/batch/%02d.flac", i)); err != nil {
			return err
		}
	}
	for i := range files {
		if err := pl.waitReady(ctx, fmt.Sprintf("bench/batch/%02d.flac", i)); err != nil {
			return err
		}
	}
	pb := sample{wall: time.Since(t0), cpu: treeCPU() - cpu0}
	bb, err := measure(func() error { return bareBatch(ctx, dir, files) })
	if err != nil {
		return err
	}
	fmt.Printf("\n## Batch: %d tracks of %d s (%d audio seconds)\n\n", batch, batchSeconds, batch*batchSeconds)
	fmt.Printf("Each a distinct FLAC (a different tone over pink noise, 1000×1000 cover), so none is recognised as a duplicate. *Pipeline*: all %d PUT one after another into the uploads bucket, wall from the first PUT to the last record `ready`; the ingest function bounds its ffmpeg runs by the cores (`media.Config.Concurrency` = %d). *Bare ffmpeg*: the same per-file commands as above, %d files at a time.\n\n", batch, runtime.NumCPU(), runtime.NumCPU())
	fmt.Println("| side | wall | CPU | audio s per wall s | throughput vs bare |")
	fmt.Println("|---|---:|---:|---:|---:|")
	fmt.Printf("| pipeline (PUT → ready) | %.2f s | %.2f s | %.1f | %.2f |\n", pb.wall.Seconds(), pb.cpu.Seconds(), audio/pb.wall.Seconds(), bb.wall.Seconds()/pb.wall.Seconds())
	fmt.Printf("| bare ffmpeg | %.2f s | %.2f s | %.1f | 1 |\n", bb.wall.Seconds(), bb.cpu.Seconds(), audio/bb.wall.Seconds())
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// generateBatch makes n distinct FLAC files of seconds each, with a cover.
func generateBatch(dir, name string, n, seconds int) ([]input, error) {
	out := filepath.Join(dir, name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	cover := filepath.Join(out, "cover.jpg")
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1000x1000:d=1", "-frames:v", "1", cover); err != nil {
		return nil, err
	}
	d := strconv.Itoa(seconds)
	var ins []input
	for i := range n {
		p := filepath.Join(out, fmt.Sprintf("%02d.flac", i))
		err := ffmpeg("-f", "lavfi", "-i", fmt.Sprintf("sine=f=%d:d=%s", 200+37*i, d), "-f", "lavfi", "-i", "anoisesrc=c=pink:a=0.1:d="+d,
			"-i", cover, "-filter_complex", "[0][1]amerge=inputs=2[a]", "-map", "[a]", "-map", "2:v", "-c:v", "copy", "-disposition:v", "attached_pic",
			"-ar", "44100", "-c:a", "flac", "-metadata", fmt.Sprintf("title=Batch %d", i), "-metadata", "artist=Overture", p)
		if err != nil {
			return nil, err
		}
		ins = append(ins, input{name: "flac", label: fmt.Sprintf("batch %d", i), path: p})
	}
	return ins, nil
}

// bareBatch runs bareFFmpeg on every file, runtime.NumCPU() at a time.
func bareBatch(ctx context.Context, dir string, files []input) error {
	work := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := range work {
				out := filepath.Join(dir, fmt.Sprintf("bare-batch-%d", i))
				err := bareFFmpeg(ctx, files[i], out)
				os.RemoveAll(out)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range files {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}
