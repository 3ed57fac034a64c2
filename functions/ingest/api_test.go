package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// An admin announces an upload, PUTs its parts to the presigned URLs with a
// plain HTTP client (one part, then — after an "interruption" — the rest
// found through GET's list of stored parts), completes it, and the upload
// becomes a track it can follow through GET. A listener is refused.
func TestPresignedMultipartUpload(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"INGEST_PART_SIZE": "5242880"})
	auth := tokentest.New(t)
	svc := ing.NewService()
	svc.Pool, svc.Verifier = b.pool, auth.Verifier()
	// The service's configuration names auth's keys even when a test hands
	// it a verifier: the settings are checked the same way everywhere.
	cfg := maps.Clone(b.cfg)
	cfg["PUBLIC_BASE_URL"] = "http://overture.test"
	if err := svc.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(svc)
	t.Cleanup(api.Close)
	admin := auth.Token(t, "admin-1", tokentest.Options{Roles: []string{token.RoleAdmin}})
	call := func(method, path, tok string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			r = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, api.URL+path, r)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}

	// 65 s of 44.1 kHz mono 16-bit WAV: 5.7 MB, two 5 MiB parts.
	audio := tone(t, ".wav", 660, 65, map[string]string{"title": "Multipart", "artist": "Presigned"})
	listener := auth.Token(t, "listener-1", tokentest.Options{})
	if code, _ := call("POST", "/v1/admin/uploads", listener, map[string]any{"filename": "a.wav", "size": len(audio)}); code != http.StatusForbidden {
		t.Fatalf("a listener's upload: %d, want 403", code)
	}
	if code, body := call("POST", "/v1/admin/uploads", admin, map[string]any{"filename": "", "size": 0}); code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "filename") {
		t.Fatalf("an empty announcement: %d %s, want 422 naming filename", code, body)
	}
	code, body := call("POST", "/v1/admin/uploads", admin, map[string]any{"filename": "dir/multipart.wav", "size": len(audio), "content_type": "audio/wav"})
	if code != http.StatusCreated {
		t.Fatalf("announce: %d %s", code, body)
	}
	var ans ing.UploadAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.State != ing.StatePending || ans.Multipart == nil || len(ans.Multipart.Parts) < 2 {
		t.Fatalf("announcement = %s", body)
	}
	putPart := func(p ing.Part) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, p.URL, bytes.NewReader(audio[p.Offset:p.Offset+p.Size]))
		req.ContentLength = p.Size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
			t.Fatalf("PUT part %d: %d %s", p.Number, resp.StatusCode, msg)
		}
	}
	putPart(ans.Multipart.Parts[0])
	// Interrupted: completing now is refused, and GET says what is stored.
	if code, body := call("POST", "/v1/admin/uploads/"+ans.ID+"/complete", admin, nil); code != http.StatusConflict {
		t.Fatalf("complete with parts missing: %d %s, want 409", code, body)
	}
	code, body = call("GET", "/v1/admin/uploads/"+ans.ID, admin, nil)
	var resumed ing.UploadAnswer
	if err := json.Unmarshal(body, &resumed); code != http.StatusOK || err != nil || resumed.Multipart == nil {
		t.Fatalf("GET pending: %d %s", code, body)
	}
	for _, p := range resumed.Multipart.Parts {
		if p.Number == 1 {
			if p.ETag == "" || p.URL != "" {
				t.Fatalf("part 1 is stored, GET says %+v", p)
			}
			continue
		}
		putPart(p)
	}
	if code, body := call("POST", "/v1/admin/uploads/"+ans.ID+"/complete", admin, nil); code != http.StatusAccepted {
		t.Fatalf("complete: %d %s", code, body)
	}
	var done ing.UploadAnswer
	testenv.WaitFor(t, 2*time.Minute, "the upload to become a track", func() bool {
		_, body := call("GET", "/v1/admin/uploads/"+ans.ID, admin, nil)
		return json.Unmarshal(body, &done) == nil && done.Final()
	})
	if done.State != ing.StateReady || done.TrackID == "" || done.UploaderID != "admin-1" || done.Filename != "multipart.wav" {
		t.Fatalf("upload = %+v", done)
	}
	if n := b.count(t, `SELECT count(*) FROM track_rendition WHERE track_id = $1 AND kind = 'flac'`, done.TrackID); n != 1 {
		t.Fatalf("a WAV source has %d flac renditions, want 1", n)
	}
	code, body = call("GET", "/v1/admin/uploads", admin, nil)
	if code != http.StatusOK || !strings.Contains(string(body), done.TrackID) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/admin/uploads/00000000-0000-0000-0000-000000000000", admin, nil); code != http.StatusNotFound || !strings.Contains(string(body), "not-found") {
		t.Fatalf("unknown upload: %d %s", code, body)
	}
}
