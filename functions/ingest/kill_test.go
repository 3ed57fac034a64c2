package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/broker"
	"github.com/overture-music/overture/internal/broker/brokertest"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/function/functiontest"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/manifest"
	"github.com/overture-music/overture/internal/postgres/postgrestest"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// killChildEnv makes the test binary act as an ingest runtime for
// TestSIGKILLMidTranscodeLeavesNoDuplicateNoOrphans instead of running
// tests; its value is the function's configuration as JSON.
const killChildEnv = "OVERTURE_INGEST_KILL_CHILD"

// killChild hosts the ingest function behind an embedded broker running
// triggers/ingest.yaml on the test's database, prints READY and runs until
// it is killed.
func killChild(cfg map[string]string) error {
	ctx := context.Background()
	log := telemetry.NewLogger(os.Stderr, slog.LevelWarn)
	f := New()
	f.Log = log
	if err := f.Start(ctx, cfg); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg["DATABASE_URL"])
	if err != nil {
		return err
	}
	yaml, err := os.ReadFile("../../triggers/ingest.yaml")
	if err != nil {
		return err
	}
	set := &manifest.Set{}
	if err := set.Add("ingest.yaml", []byte(brokertest.BrokerYAML+"---\n"+string(yaml))); err != nil {
		return err
	}
	handlers := map[string]function.Handler{Name: f, deadletter.Name: &functiontest.Recorder{}}
	b, err := broker.New(ctx, broker.Config{Pool: pool, Objects: set, Log: log,
		Resolve: func(name string) (function.Handler, bool) { h, ok := handlers[name]; return h, ok },
		Lease:   time.Second, Poll: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	fmt.Println(testenv.Ready)
	return b.Run(ctx) // until SIGKILL
}

// procChildren lists the live (not zombie) processes named comm whose
// parent is ppid, from /proc.
func procChildren(ppid int, comm string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if name, state, parent, ok := procStat(pid); ok && name == comm && state != "Z" && parent == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads the name, state and parent of pid; ok is false once it is gone.
func procStat(pid int) (name, state string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", 0, false
	}
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return "", "", 0, false
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 2 {
		return "", "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return s[i+1 : j], f[0], ppid, true
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	_, state, _, ok := procStat(pid)
	return ok && state != "Z"
}

// TestSIGKILLMidTranscodeLeavesNoDuplicateNoOrphans runs the ingest function
// in a child process (the test binary re-executed, hosting it behind an
// embedded broker on the test's PostgreSQL and versitygw), SIGKILLs that
// process's group while ffmpeg transcodes a 3-minute upload (ffmpeg has a
// process group of its own, media's: nothing signals it, it must end because
// its runtime did), then starts a fresh one. The broker redelivers, the new process takes the upload over
// once the dead one's lease ran out and finishes it: one track, the record
// ready, the media bucket holding exactly what the catalog references, no
// ffmpeg left and no temporary files of the killed attempt.
func TestSIGKILLMidTranscodeLeavesNoDuplicateNoOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tmp := t.TempDir()
	b := setupStorage(t, map[string]string{"INGEST_TMPDIR": tmp})
	b.pool = postgrestest.Open(t, b.cfg["DATABASE_URL"])
	// The test's broker only takes the source's events into the broker
	// tables: it never runs, so every delivery goes to a child. The rows it
	// stores are leased to its own (never started) dispatcher, for a second.
	br, err := broker.New(ctx, broker.Config{Pool: b.pool, Objects: ingestObjects(t), Log: slog.New(slog.DiscardHandler), Lease: time.Second,
		Resolve: func(string) (function.Handler, bool) { return &functiontest.Recorder{}, true }})
	if err != nil {
		t.Fatal(err)
	}
	b.source.Publisher = br
	store := &ing.Store{Pool: b.pool}

	// Long enough that the transcode runs for seconds, short enough that the
	// restarted attempt finishes soon on a loaded machine.
	data := tone(t, ".mp3", 440, 90, map[string]string{"title": "Killed", "artist": "Kill Nine"})
	first := testenv.StartChild(t, killChildEnv, b.cfg)
	b.put(t, "sigkill.mp3", data, nil)

	// Mid-transcode: the record says so and ffmpeg runs under the child.
	var id string
	var ffmpeg []int
	// Bounds are generous: CI runs this beside other packages under -race.
	testenv.WaitFor(t, 2*time.Minute, "the transcode to start", func() bool {
		err := b.pool.QueryRow(ctx, `SELECT id::text FROM ingest_upload WHERE bucket = $1 AND key = $2 AND state = 'transcoding'`, uploads, "sigkill.mp3").Scan(&id)
		ffmpeg = procChildren(first.Pid(), "ffmpeg")
		return err == nil && len(ffmpeg) > 0
	})
	var leftovers []string // what the attempt has in INGEST_TMPDIR
	if err := filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != tmp {
			leftovers = append(leftovers, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(leftovers) == 0 {
		t.Fatal("the attempt has nothing in INGEST_TMPDIR; the test proves nothing about temporary files")
	}
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "the killed attempt's ffmpeg to end", func() bool {
		return !slices.ContainsFunc(ffmpeg, running)
	})
	if u, err := store.Get(ctx, id); err != nil || u.State != ing.StateTranscoding || u.Attempts != 1 {
		t.Fatalf("after the kill the upload is %+v (%v), want transcoding after one attempt", u, err)
	}
	if n := b.count(t, `SELECT count(*) FROM track`); n != 0 {
		t.Fatalf("%d tracks after the kill mid-transcode", n)
	}

	// A fresh runtime takes over once the dead attempt's lease runs out.
	second := testenv.StartChild(t, killChildEnv, b.cfg)
	var u ing.Upload
	testenv.WaitFor(t, 5*time.Minute, "the upload to finish after the restart", func() bool {
		u, err = store.Get(ctx, id)
		return err == nil && u.Final()
	})
	if u.State != ing.StateReady || u.Attempts != 2 || u.TrackID == "" || u.Duplicate {
		t.Fatalf("upload = %+v, want ready after two attempts", u)
	}
	if n := b.count(t, `SELECT count(*) FROM track`); n != 1 {
		t.Fatalf("%d tracks, want 1", n)
	}
	if n := b.count(t, `SELECT count(*) FROM track WHERE id = $1::uuid`, u.TrackID); n != 1 {
		t.Fatalf("the upload's track %s is not in the catalog", u.TrackID)
	}
	if n := b.count(t, `SELECT count(*) FROM ingest_upload`); n != 1 {
		t.Fatalf("%d upload records, want 1", n)
	}

	// The media bucket holds exactly what the catalog references.
	want := referencedKeys(t, b, u.TrackID)
	got := b.mediaKeys(t, "")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("media bucket holds %d objects, the catalog references %d:\nholds      %v\nreferences %v", len(got), len(want), got, want)
	}
	if !slices.ContainsFunc(got, func(k string) bool { return strings.HasSuffix(k, ".m4s") }) {
		t.Fatalf("no segments among %v", got)
	}

	if left := procChildren(second.Pid(), "ffmpeg"); len(left) > 0 || slices.ContainsFunc(ffmpeg, running) {
		t.Fatalf("ffmpeg still running: %v, %v", left, ffmpeg)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the killed attempt's %s is still there after the restart (%v)", p, err)
		}
	}
}

// referencedKeys is every media key the catalog's track references: its
// renditions (an HLS playlist with every playlist, init section and segment
// it names), its peaks and its cover, sorted.
func referencedKeys(t *testing.T, b *bundle, trackID string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	var peaks, cover *string
	if err := b.pool.QueryRow(ctx, `SELECT peaks_key, cover_key FROM track WHERE id = $1::uuid`, trackID).Scan(&peaks, &cover); err != nil {
		t.Fatal(err)
	}
	if peaks == nil {
		t.Fatal("the track has no peaks")
	}
	keys = append(keys, *peaks)
	if cover != nil {
		keys = append(keys, *cover)
	}
	rows, err := b.pool.Query(ctx, `SELECT storage_key FROM track_rendition WHERE track_id = $1::uuid`, trackID)
	if err != nil {
		t.Fatal(err)
	}
	var renditions []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		renditions = append(renditions, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for len(renditions) > 0 {
		k := renditions[0]
		renditions = renditions[1:]
		if slices.Contains(keys, k) {
			continue
		}
		keys = append(keys, k)
		if path.Ext(k) != ".m3u8" {
			continue
		}
		obj, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(mediaBucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		sc := bufio.NewScanner(obj.Body)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			uri := line
			if strings.HasPrefix(line, "#EXT-X-MAP:") {
				_, rest, _ := strings.Cut(line, `URI="`)
				uri, _, _ = strings.Cut(rest, `"`)
			} else if strings.HasPrefix(line, "#") {
				continue
			}
			if uri != "" {
				renditions = append(renditions, path.Join(path.Dir(k), uri))
			}
		}
		obj.Body.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(keys)
	return keys
}
