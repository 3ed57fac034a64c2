package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/functions/deadletter"
	ingestfn "github.com/overture-music/overture/functions/ingest"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// uploadBundle is the embedded platform as make run starts it, cut down to
// the ingestion path: the gateway with auth and the uploads admin API,
// versitygw notifying the S3 event source, the broker with
// triggers/ingest.yaml and the ingest function.
type uploadBundle struct {
	p     *platform.Platform
	env   map[string]string
	state string // the command's --state-dir
}

const uploadAdmin, uploadPassword = "uploader@example.com", "upload password 1"

func setupUpload(t *testing.T) *uploadBundle {
	t.Helper()
	smtpURL, apiURL := testenv.SMTP(t)
	db := testenv.Postgres(t)
	triggers := t.TempDir()
	yaml, err := os.ReadFile("../../triggers/ingest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(triggers, "ingest.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	var fns []functions.Entry
	for _, e := range functions.All() {
		if e.Name == ingestfn.Name || e.Name == deadletter.Name {
			fns = append(fns, e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{
		Env: map[string]string{
			platform.KeyDatabaseURL: db, platform.KeyRedisURL: testenv.Redis(t),
			platform.KeySMTPURL: smtpURL, platform.KeyMailpitURL: apiURL, platform.KeyOutboxRelay: "poll",
			// Two parts for the 6 MB file of the resume test.
			"INGEST_PART_SIZE": "5242880", "INGEST_LEASE": "5s",
		},
		DataDir:      t.TempDir(),
		ManifestDirs: []string{"../../brokers", triggers},
		Functions:    fns,
		Services:     []server.Service{auth.New(), ingest.NewService()},
		Log:          telemetry.NewLogger(io.Discard, nil),
	})
	if err != nil {
		t.Fatalf("start the platform: %v", err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	// The admin, made as the README does: overture admin create.
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return db
		}
		return ""
	}
	if err := admin(ctx, []string{"create", "--email", uploadAdmin, "--password-stdin"}, strings.NewReader(uploadPassword+"\n"), &out, &errOut, getenv); err != nil {
		t.Fatalf("admin create: %v %s", err, errOut.String())
	}
	return &uploadBundle{p: p, state: t.TempDir(), env: map[string]string{"OVERTURE_URL": p.GatewayURL(), "OVERTURE_ADMIN_EMAIL": uploadAdmin}}
}

// run is `overture upload ARGS` with the password on stdin; it returns
// stdout, stderr and the error.
func (b *uploadBundle) run(ctx context.Context, t *testing.T, e uploadEnv, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e.stdin = strings.NewReader(uploadPassword + "\n")
	e.stdout, e.stderr = &out, &errOut
	e.getenv = func(k string) string { return b.env[k] }
	err := upload(ctx, append([]string{"--password-stdin", "--state-dir", b.state, "--wait", "3m"}, args...), e)
	return out.String(), errOut.String(), err
}

// genTone writes seconds of a sine at freq Hz to path with ffmpeg (the
// format follows the extension).
func genTone(t *testing.T, path string, freq int, seconds float64, title string) {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=frequency=%d:duration=%g:sample_rate=44100", freq, seconds),
		"-metadata", "title=" + title, "-metadata", "artist=Upload Test", "-y", path}
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
}

var trackLine = regexp.MustCompile(`(?m)^(.+): track ([0-9a-f-]{36})`)

// tracks maps each printed file name to its track id.
func tracks(out string) map[string]string {
	m := map[string]string{}
	for _, s := range trackLine.FindAllStringSubmatch(out, -1) {
		m[filepath.Base(s[1])] = s[2]
	}
	return m
}

// putCounter counts the part PUTs a real transport sends.
type putCounter struct {
	mu   sync.Mutex
	puts int
}

func (c *putCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		c.mu.Lock()
		c.puts++
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *putCounter) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts
}

func TestUpload(t *testing.T) {
	t.Parallel()
	b := setupUpload(t)
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("OneFile", func(t *testing.T) {
		f := filepath.Join(dir, "tone.mp3")
		genTone(t, f, 440, 5, "One")
		out, errOut, err := b.run(ctx, t, uploadEnv{bars: true}, "--auto-publish", f)
		if err != nil {
			t.Fatalf("upload: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		id := tracks(out)["tone.mp3"]
		if id == "" || !strings.Contains(out, "(published)") {
			t.Fatalf("no published track printed: %s", out)
		}
		if !strings.Contains(errOut, "tone.mp3") || !strings.Contains(errOut, "uploaded") || !strings.Contains(errOut, "KiB") {
			t.Fatalf("no progress bar for the file: %q", errOut)
		}
		if n := countRows(t, b, `SELECT count(*) FROM track WHERE id = $1 AND title = 'One'`, id); n != 1 {
			t.Fatalf("track %s with the tagged title: %d rows", id, n)
		}
		left, _ := os.ReadDir(b.state)
		if len(left) != 0 {
			t.Fatalf("a finished upload left %d state files", len(left))
		}
	})

	t.Run("Directory", func(t *testing.T) {
		album := filepath.Join(dir, "album")
		if err := os.MkdirAll(filepath.Join(album, "disc2"), 0o755); err != nil {
			t.Fatal(err)
		}
		genTone(t, filepath.Join(album, "01.flac"), 523, 4, "First")
		genTone(t, filepath.Join(album, "disc2", "02.ogg"), 587, 4, "Second")
		if err := os.WriteFile(filepath.Join(album, "cover.txt"), []byte("not walked"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := b.run(ctx, t, uploadEnv{}, album)
		if err != nil {
			t.Fatalf("upload: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		got := tracks(out)
		if len(got) != 2 || got["01.flac"] == "" || got["02.ogg"] == "" || got["01.flac"] == got["02.ogg"] {
			t.Fatalf("want two tracks, got %v from %s", got, out)
		}
		if strings.Contains(out, "cover.txt") {
			t.Fatalf("a walk uploaded a non-audio file: %s", out)
		}
	})

	t.Run("InterruptedResumes", func(t *testing.T) {
		// 65 s of 44.1 kHz mono 16-bit WAV: 5.7 MB, two 5 MiB parts.
		f := filepath.Join(dir, "long.wav")
		genTone(t, f, 660, 65, "Resumed")
		counter := &putCounter{}
		client := &http.Client{Transport: counter}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		e := uploadEnv{client: client, afterPart: func(_ string, part int32) {
			if part == 1 {
				cancel()
			}
		}}
		out, errOut, err := b.run(cctx, t, e, f)
		if err == nil || !strings.Contains(errOut, "run the same command again") {
			t.Fatalf("an interrupted upload: err %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if counter.n() != 1 {
			t.Fatalf("%d parts sent before the interruption, want 1", counter.n())
		}
		if left, _ := os.ReadDir(b.state); len(left) != 1 {
			t.Fatalf("%d state files after the interruption, want 1", len(left))
		}
		out, errOut, err = b.run(ctx, t, uploadEnv{client: client}, f)
		if err != nil {
			t.Fatalf("resume: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if counter.n() != 2 {
			t.Fatalf("%d parts sent in all, want 2: the resumed run sent the stored part again", counter.n())
		}
		if !strings.Contains(errOut, "long.wav: resuming upload") || !strings.Contains(errOut, "1 of 2 parts already stored") || tracks(out)["long.wav"] == "" {
			t.Fatalf("resume did not say so or made no track\nstdout: %s\nstderr: %s", out, errOut)
		}
		if n := countRows(t, b, `SELECT count(*) FROM ingest_upload WHERE filename = 'long.wav'`); n != 1 {
			t.Fatalf("%d upload records for the resumed file, want 1", n)
		}
	})

	t.Run("BadFileSaysWhy", func(t *testing.T) {
		bad := filepath.Join(dir, "notes.mp3")
		if err := os.WriteFile(bad, bytes.Repeat([]byte("these are not audio samples\n"), 100), 0o644); err != nil {
			t.Fatal(err)
		}
		good := filepath.Join(dir, "good.wav")
		genTone(t, good, 330, 3, "Good")
		out, errOut, err := b.run(ctx, t, uploadEnv{}, bad, good)
		if err == nil || !strings.Contains(err.Error(), "1 of 2 files") {
			t.Fatalf("a failed file must fail the command: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if !strings.Contains(out, "notes.mp3: failed: not_audio") || tracks(out)["good.wav"] == "" {
			t.Fatalf("want the bad file's reason and the good file's track: %s", out)
		}
	})

	t.Run("Usage", func(t *testing.T) {
		if _, _, err := b.run(ctx, t, uploadEnv{}, "--replace", "not-a-uuid", dir); err != errUsage {
			t.Fatalf("--replace with a bad id: %v", err)
		}
		b2 := *b
		b2.env = map[string]string{"OVERTURE_URL": b.p.GatewayURL(), "OVERTURE_ADMIN_EMAIL": "nobody@example.com"}
		_, _, err := b2.run(ctx, t, uploadEnv{}, filepath.Join(dir, "tone.mp3"))
		if err == nil || !strings.Contains(err.Error(), "sign in") || strings.Contains(err.Error(), uploadPassword) {
			t.Fatalf("a wrong account: %v", err)
		}
	})
}

func countRows(t *testing.T, b *uploadBundle, sql string, args ...any) int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), b.p.Config()[platform.KeyDatabaseURL])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
