package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/overture-music/overture/internal/ingest"
)

// defaultGatewayURL is where `make run` serves the public APIs.
const defaultGatewayURL = "http://127.0.0.1:8080"

const uploadUsage = `usage:
  overture upload [--email E] [--password-stdin] [--auto-publish] [--replace TRACK_ID] FILE|DIR...

Uploads audio through the admin uploads API (docs/ingest.md): each file is
announced, its parts are PUT straight to object storage at presigned URLs (a
progress bar per file), the upload is completed, and the command follows the
ingestion to its end and prints the track id per file, or why it failed.
Directories are walked for audio files (.mp3 .flac .wav .ogg .opus .m4a …);
a file named on the command line is uploaded whatever its name.

An interrupted upload resumes: a state file per upload (under --state-dir)
maps the file's path, size and modification time to its upload id, and the
next run sends only the parts storage does not hold yet.

Exit status 1 when any file failed.

flags:
  --email E          admin account (default $OVERTURE_ADMIN_EMAIL)
  --password-stdin   read the password from the first line of standard input
                     (else $OVERTURE_ADMIN_PASSWORD); never on the command line
  --auto-publish     publish each track as soon as it is ready
  --replace ID       give the existing track ID this audio (one file only)
  --url URL          the gateway (default $OVERTURE_URL, then $PUBLIC_BASE_URL,
                     then ` + defaultGatewayURL + `)
  --state-dir DIR    where resumable uploads are remembered
                     (default <user cache dir>/overture/uploads)
  --wait D           how long to follow the ingestions (default 1h)
`

// audioExts are the file name endings a directory walk uploads
// (internal/media's accepted inputs).
var audioExts = []string{".mp3", ".mp2", ".flac", ".wav", ".wave", ".aif", ".aiff", ".ogg", ".oga", ".opus",
	".m4a", ".mp4", ".aac", ".alac", ".wv"}

// uploadEnv is what `overture upload` reads from its surroundings; tests
// give their own.
type uploadEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// client sends the API calls and the parts (nil: a default client).
	client *http.Client
	// afterPart, when set (tests), runs after each part is stored.
	afterPart func(file string, part int32)
	// bars draws progress bars even when stderr is not a terminal (tests).
	bars bool
}

// runUpload is `overture upload`.
func runUpload(ctx context.Context, args []string) error {
	return upload(ctx, args, uploadEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
}

// errUploadsFailed: at least one file did not become a track.
var errUploadsFailed = errors.New("some uploads failed")

func upload(ctx context.Context, args []string, env uploadEnv) error {
	fset := flag.NewFlagSet("upload", flag.ContinueOnError)
	fset.SetOutput(env.stderr)
	fset.Usage = func() { fmt.Fprint(env.stderr, uploadUsage) }
	email := fset.String("email", env.getenv("OVERTURE_ADMIN_EMAIL"), "admin account")
	fromStdin := fset.Bool("password-stdin", false, "read the password from standard input")
	autoPublish := fset.Bool("auto-publish", false, "publish each track when ready")
	replace := fset.String("replace", "", "track id whose audio the file replaces")
	baseURL := fset.String("url", cmp.Or(env.getenv("OVERTURE_URL"), env.getenv("PUBLIC_BASE_URL"), defaultGatewayURL), "gateway URL")
	stateDir := fset.String("state-dir", "", "where resumable uploads are remembered")
	wait := fset.Duration("wait", time.Hour, "how long to follow the ingestions")
	if err := fset.Parse(args); err != nil {
		return err
	}
	usageErr := func(msg string) error {
		fmt.Fprintf(env.stderr, "overture upload: %s\n\n%s", msg, uploadUsage)
		return errUsage
	}
	if fset.NArg() == 0 {
		return usageErr("name at least one file or directory")
	}
	if *email == "" {
		return usageErr("--email (or OVERTURE_ADMIN_EMAIL) is required")
	}
	if *replace != "" {
		if _, err := uuid.Parse(*replace); err != nil {
			return usageErr(fmt.Sprintf("--replace %q is not a track id", *replace))
		}
	}
	password, err := readPassword(*fromStdin, env)
	if err != nil {
		return err
	}
	files, err := audioFiles(fset.Args())
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageErr("no audio files found")
	}
	if *replace != "" && len(files) != 1 {
		return usageErr(fmt.Sprintf("--replace takes exactly one file, not %d", len(files)))
	}
	if *stateDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no --state-dir and no user cache directory: %w", err)
		}
		*stateDir = filepath.Join(dir, "overture", "uploads")
	}
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	api := &adminAPI{base: strings.TrimRight(*baseURL, "/"), email: *email, password: password, http: env.client}
	if api.http == nil {
		api.http = &http.Client{}
	}
	if err := api.login(ctx); err != nil {
		return err
	}
	u := &uploader{api: api, env: env, stateDir: *stateDir, autoPublish: *autoPublish, replace: *replace}
	return u.run(ctx, files, *wait)
}

func readPassword(fromStdin bool, env uploadEnv) (string, error) {
	if !fromStdin {
		if p := env.getenv("OVERTURE_ADMIN_PASSWORD"); p != "" {
			return p, nil
		}
		return "", errors.New("no password: give --password-stdin or set OVERTURE_ADMIN_PASSWORD")
	}
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	p := strings.TrimRight(line, "\r\n")
	if p == "" {
		return "", errors.New("--password-stdin given but standard input is empty")
	}
	return p, nil
}

// audioFiles expands the arguments: files as given, directories walked for
// audio files (hidden entries skipped), each path once, in order.
func audioFiles(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) error {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !seen[abs] {
			seen[abs] = true
			out = append(out, abs)
		}
		return nil
	}
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		if !st.IsDir() {
			if err := add(a); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != a && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && slices.Contains(audioExts, strings.ToLower(filepath.Ext(p))) {
				return add(p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", a, err)
		}
	}
	return out, nil
}

// adminAPI calls the gateway as a signed-in admin.
type adminAPI struct {
	base, email, password string
	http                  *http.Client

	mu    sync.Mutex
	token string
}

// apiError is a non-2xx answer, with the problem's words.
type apiError struct {
	Status int
	Title  string
	Detail string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail)
}

// login signs in with the admin's email and password (POST /v1/auth/login).
func (a *adminAPI) login(ctx context.Context) error {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err := a.send(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": a.email, "password": a.password}, &tok)
	if err != nil {
		return fmt.Errorf("sign in as %s at %s: %w", a.email, a.base, err)
	}
	a.mu.Lock()
	a.token = tok.AccessToken
	a.mu.Unlock()
	return nil
}

// call sends an authenticated request; an expired access token (401) is
// renewed once by signing in again.
func (a *adminAPI) call(ctx context.Context, method, path string, body, out any) error {
	for try := 0; ; try++ {
		a.mu.Lock()
		tok := a.token
		a.mu.Unlock()
		err := a.send(ctx, method, path, tok, body, out)
		var ae *apiError
		if try == 0 && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			if err := a.login(ctx); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

func (a *adminAPI) send(ctx context.Context, method, path, tok string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		var p struct{ Title, Detail string }
		if json.Unmarshal(data, &p) == nil && p.Title != "" {
			ae.Title, ae.Detail = p.Title, p.Detail
		} else {
			ae.Detail = oneLine(string(data), 200)
		}
		return fmt.Errorf("%s %s: %w", method, path, ae)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// uploadState is what a state file remembers of one upload: enough to find
// it again, nothing secret.
type uploadState struct {
	Gateway  string    `json:"gateway"`
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`
	UploadID string    `json:"upload_id"`
	Created  time.Time `json:"created_at"`
}

type uploader struct {
	api         *adminAPI
	env         uploadEnv
	stateDir    string
	autoPublish bool
	replace     string

	outMu sync.Mutex
	// bars: stderr is a terminal and shows a progress bar per file;
	// otherwise (a pipe, a log) each file gets plain lines.
	bars     bool
	progress *mpb.Progress
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// note prints a line on stderr, above the bars when they are drawn.
func (u *uploader) note(format string, args ...any) {
	u.outMu.Lock()
	defer u.outMu.Unlock()
	if u.bars {
		fmt.Fprintf(u.progress, format+"\n", args...)
		return
	}
	fmt.Fprintf(u.env.stderr, format+"\n", args...)
}

// result is how one file ended.
type result struct {
	path   string
	upload ingest.Upload
	err    error
}

// run uploads the files one after another (they share the bandwidth), and
// follows each ingestion from the moment its upload is complete.
func (u *uploader) run(ctx context.Context, files []string, wait time.Duration) error {
	u.bars = u.env.bars || isTerminal(u.env.stderr)
	u.progress = mpb.NewWithContext(ctx, mpb.WithOutput(u.env.stderr), mpb.WithWidth(120),
		mpb.ContainerOptional(mpb.ForceTTY(), u.bars), mpb.ContainerOptional(mpb.WithAutoRefresh(), u.bars))
	results := make([]result, len(files))
	var wg sync.WaitGroup
	width := 0
	for _, f := range files {
		width = max(width, len([]rune(short(u.display(f), 40))))
	}
	for i, f := range files {
		results[i].path = f
		id, err := u.send(ctx, f, width)
		if err != nil {
			results[i].err = err
			u.report(results[i])
			if ctx.Err() != nil {
				break
			}
			continue
		}
		wg.Go(func() {
			results[i].upload, results[i].err = u.follow(ctx, f, id, wait)
			u.report(results[i])
		})
	}
	wg.Wait()
	u.progress.Wait()
	failed := 0
	for _, r := range results {
		if r.err != nil || r.upload.State != ingest.StateReady {
			failed++
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(u.env.stderr, "overture upload: interrupted; run the same command again to resume")
		return fmt.Errorf("upload interrupted: %w", context.Cause(ctx))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files: %w", failed, len(files), errUploadsFailed)
	}
	return nil
}

func (u *uploader) display(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

// short keeps the last n runes of a long name.
func short(name string, n int) string {
	if r := []rune(name); len(r) > n {
		return "…" + string(r[len(r)-n+1:])
	}
	return name
}

// report prints one file's outcome on stdout.
func (u *uploader) report(r result) {
	u.outMu.Lock()
	defer u.outMu.Unlock()
	name := u.display(r.path)
	switch {
	case r.err != nil:
		fmt.Fprintf(u.env.stdout, "%s: error: %v\n", name, r.err)
	case r.upload.State == ingest.StateReady:
		note := ""
		if r.upload.Duplicate {
			note = " (same audio as an earlier upload)"
		} else if r.upload.Published {
			note = " (published)"
		}
		fmt.Fprintf(u.env.stdout, "%s: track %s%s\n", name, r.upload.TrackID, note)
	default:
		detail := ""
		if r.upload.Detail != "" {
			detail = ": " + oneLine(r.upload.Detail, 300)
		}
		fmt.Fprintf(u.env.stdout, "%s: failed: %s%s\n", name, r.upload.Reason, detail)
	}
}

// statePath is the state file of one version of one file with these options.
func (u *uploader) statePath(path string, st os.FileInfo) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%t\x00%s", u.api.base, path, st.Size(), st.ModTime().UnixNano(), u.autoPublish, u.replace)
	return filepath.Join(u.stateDir, hex.EncodeToString(h.Sum(nil)[:16])+".json")
}

// send announces the file (or finds its earlier upload), PUTs the parts
// storage does not hold, completes the upload and returns its id.
func (u *uploader) send(ctx context.Context, path string, width int) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("stat: %w", err)
	}
	if st.Size() == 0 {
		return "", errors.New("the file is empty")
	}
	statePath := u.statePath(path, st)
	var ans ingest.UploadAnswer
	resumed := false
	if s, ok := readState(statePath); ok {
		err := u.api.call(ctx, http.MethodGet, "/v1/admin/uploads/"+s.UploadID, nil, &ans)
		var ae *apiError
		switch {
		case err == nil:
			resumed = true
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			_ = os.Remove(statePath)
		default:
			return "", fmt.Errorf("resume upload %s: %w", s.UploadID, err)
		}
	}
	if !resumed {
		req := ingest.CreateRequest{Filename: filepath.Base(path), Size: st.Size(), ContentType: contentType(path), ReplaceTrackID: u.replace}
		if u.autoPublish {
			t := true
			req.AutoPublish = &t
		}
		if err := u.api.call(ctx, http.MethodPost, "/v1/admin/uploads", req, &ans); err != nil {
			return "", fmt.Errorf("announce: %w", err)
		}
		s := uploadState{Gateway: u.api.base, Path: path, Size: st.Size(), ModTime: st.ModTime(), UploadID: ans.ID, Created: time.Now().UTC()}
		if err := writeState(statePath, s); err != nil {
			return "", err
		}
	}
	if ans.State != ingest.StatePending || ans.Multipart == nil {
		// Completed by an earlier run (pending without parts: storage has
		// the object, its notification is on the way): follow it.
		return ans.ID, nil
	}
	var stored, missing int
	var storedBytes int64
	for _, p := range ans.Multipart.Parts {
		if p.ETag != "" {
			stored++
			storedBytes += p.Size
		} else {
			missing++
		}
	}
	name := u.display(path)
	if resumed {
		u.note("%s: resuming upload %s, %d of %d parts already stored", name, ans.ID, stored, stored+missing)
	} else if !u.bars {
		u.note("%s: uploading %d bytes in %d parts (upload %s)", name, st.Size(), missing, ans.ID)
	}
	bar := u.progress.AddBar(st.Size(), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Name(short(name, 40), decor.WC{W: width + 1, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "),
			decor.OnComplete(decor.Percentage(decor.WC{W: 5}), "uploaded")))
	bar.SetCurrent(storedBytes)
	err = u.sendParts(ctx, bar, path, ans.Multipart.Parts)
	if err != nil {
		bar.Abort(false)
		bar.Wait()
		return "", err
	}
	var done ingest.UploadAnswer
	if err := u.api.call(ctx, http.MethodPost, ans.Multipart.Complete, nil, &done); err != nil {
		bar.Abort(false)
		bar.Wait()
		return "", fmt.Errorf("complete upload %s: %w", ans.ID, err)
	}
	bar.SetCurrent(st.Size())
	bar.Wait()
	if !u.bars {
		u.note("%s: uploaded; waiting for ingestion", name)
	}
	return ans.ID, nil
}

// sendParts PUTs every part without an ETag to its presigned URL.
func (u *uploader) sendParts(ctx context.Context, bar *mpb.Bar, path string, parts []ingest.Part) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	for _, p := range parts {
		if p.ETag != "" {
			continue
		}
		body, err := bar.ProxyReader(io.NewSectionReader(f, p.Offset, p.Size))
		if err != nil {
			return fmt.Errorf("part %d: progress: %w", p.Number, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.URL, body)
		if err != nil {
			return fmt.Errorf("part %d: %w", p.Number, err)
		}
		req.ContentLength = p.Size
		resp, err := u.api.http.Do(req)
		if err != nil {
			return fmt.Errorf("part %d: %w", p.Number, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("part %d: storage answered %d: %s", p.Number, resp.StatusCode, oneLine(string(msg), 200))
		}
		if u.env.afterPart != nil {
			u.env.afterPart(path, p.Number)
		}
	}
	return nil
}

// follow polls the upload with backoff until its ingestion ended; a final
// state removes the state file.
func (u *uploader) follow(ctx context.Context, path, id string, wait time.Duration) (ingest.Upload, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		var ans ingest.UploadAnswer
		err := u.api.call(ctx, http.MethodGet, "/v1/admin/uploads/"+id, nil, &ans)
		var ae *apiError
		switch {
		case err == nil && ans.Final():
			st, serr := os.Stat(path)
			if serr == nil {
				_ = os.Remove(u.statePath(path, st))
			}
			return ans.Upload, nil
		case errors.As(err, &ae) && ae.Status/100 == 4:
			return ingest.Upload{}, fmt.Errorf("follow upload %s: %w", id, err)
		}
		// Not final yet, or a passing failure (the gateway restarting,
		// storage between the completion and its notification): ask again.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ingest.Upload{}, fmt.Errorf("upload %s still %s: %w", id, cmp.Or(ans.State, "unknown"), context.Cause(ctx))
		case <-t.C:
		}
		delay = min(delay*3/2, 5*time.Second)
	}
}

func readState(path string) (uploadState, bool) {
	var s uploadState
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &s) != nil || s.UploadID == "" {
		return s, false
	}
	return s, true
}

// writeState writes the state file whole or not at all.
func writeState(path string, s uploadState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode upload state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("write upload state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write upload state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write upload state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write upload state: %w", err)
	}
	return nil
}

// contentType names the audio type of common file endings.
func contentType(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".mp3":
		return "audio/mpeg"
	case ".flac":
		return "audio/flac"
	case ".wav", ".wave":
		return "audio/wav"
	case ".ogg", ".oga", ".opus":
		return "audio/ogg"
	case ".m4a", ".mp4", ".aac", ".alac":
		return "audio/mp4"
	case ".aif", ".aiff":
		return "audio/aiff"
	}
	return "application/octet-stream"
}
