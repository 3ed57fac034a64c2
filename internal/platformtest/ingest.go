package platformtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// Upload is the ingest admin API's record of an upload.
type Upload struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
	TrackID string `json:"track_id"`
}

// Tone writes seconds of a stereo sine (FLAC) with the given tags into a
// file of the test's temporary directory and returns its path.
func Tone(t *testing.T, seconds int, title, artist, album string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "tone.flac")
	FFmpeg(t, "-f", "lavfi", "-i", "sine=frequency=330:duration="+strconv.Itoa(seconds)+":sample_rate=44100",
		"-ac", "2", "-af", "volume=-9dB", "-c:a", "flac",
		"-metadata", "title="+title, "-metadata", "artist="+artist, "-metadata", "album="+album, src)
	return src
}

// FFmpeg runs ffmpeg quietly with args and fails the test on an error.
func FFmpeg(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is required (hack/deps installs it)")
	}
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput()
	require.NoError(t, err, "ffmpeg %v: %s", args, out)
}

// Ingest puts the file at path into the uploads bucket, as an admin's S3
// client would, and waits until ingestion made a (draft) track of it.
func (p *Platform) Ingest(t *testing.T, path string) Upload {
	t.Helper()
	key := "platformtest/" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/" + filepath.Base(path)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = p.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(key), Body: f})
	require.NoError(t, err)
	return p.WaitUpload(t, key)
}

// WaitUpload waits until the upload of key is ready (failing at once if
// ingestion failed) and returns it.
func (p *Platform) WaitUpload(t *testing.T, key string) Upload {
	t.Helper()
	var up Upload
	require.Eventually(t, func() bool {
		var list struct {
			Uploads []Upload `json:"uploads"`
		}
		p.CallJSON(t, "GET", "/v1/admin/uploads?limit=100", p.Admin.Access, nil, http.StatusOK, &list)
		for _, u := range list.Uploads {
			if u.Key != key {
				continue
			}
			require.NotEqual(t, "failed", u.State, "ingestion failed: %s: %s", u.Reason, u.Detail)
			up = u
			return u.State == "ready"
		}
		return false
	}, 3*time.Minute, 250*time.Millisecond, "upload of %s never got ready (last: %+v)", key, up)
	require.NotEmpty(t, up.TrackID)
	return up
}

// Publish publishes track id as the admin and returns the consistency
// token of the write (for ?after= on the read side).
func (p *Platform) Publish(t *testing.T, id string) string {
	t.Helper()
	resp := p.Do(t, "POST", "/v1/admin/tracks/"+id+"/publish", p.Admin.Access, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Header.Get("X-Consistency-Token")
}

// WaitSearch waits until a search for q (after the write of token) finds
// track id.
func (p *Platform) WaitSearch(t *testing.T, q, id, after string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp := p.Do(t, "GET", "/v1/search?q="+url.QueryEscape(q)+"&after="+after, "", nil)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		var page struct {
			Hits []struct {
				ID string `json:"id"`
			} `json:"hits"`
		}
		if json.NewDecoder(resp.Body).Decode(&page) != nil {
			return false
		}
		for _, h := range page.Hits {
			if h.ID == id {
				return true
			}
		}
		return false
	}, 2*time.Minute, 250*time.Millisecond, "search for %q never found %s", q, id)
}
