package steering

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/internal/testenv"
	"github.com/overture-music/overture/internal/token/tokentest"
)

// makeTrack encodes a 6-second tone with ffmpeg the way ingestion packages
// audio: three AAC variants as fMP4 HLS with a master playlist, a FLAC
// file, waveform peaks and a cover. It returns the files by relative path.
func makeTrack(t *testing.T) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) {
		out, err := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	run("-f", "lavfi", "-i", "sine=frequency=440:duration=6:sample_rate=44100", "-map", "0:a", "-map", "0:a", "-map", "0:a",
		"-c:a", "aac", "-b:a:0", "64k", "-b:a:1", "128k", "-b:a:2", "256k", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-hls_segment_type", "fmp4", "-master_pl_name", "master.m3u8", "-var_stream_map", "a:0,name:aac64 a:1,name:aac128 a:2,name:aac256",
		filepath.Join(dir, "%v", "index.m3u8"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "flac"), 0o755))
	run("-f", "lavfi", "-i", "sine=frequency=440:duration=6:sample_rate=44100", "-c:a", "flac", filepath.Join(dir, "flac", "track.flac"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "cover"), 0o755))
	for _, size := range coverSizes {
		run("-f", "lavfi", "-i", "color=c=teal:s="+size+"x"+size, "-frames:v", "1", filepath.Join(dir, "cover", size+".jpg"))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "peaks.json"), []byte(`{"version":2,"channels":1,"data":[0,1]}`), 0o644))
	files := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	}))
	require.Contains(t, files, "master.m3u8")
	require.Contains(t, files, "aac256/index.m3u8")
	return files
}

var decodedTime = regexp.MustCompile(`time=(\d\d):(\d\d):(\d\d)\.(\d\d)`)

// play decodes u completely with ffmpeg, as a listener's player would; it
// returns ffmpeg's error output when it fails.
func play(t *testing.T, u string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-stats", "-i", u, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return string(out), false
	}
	m := decodedTime.FindAllStringSubmatch(string(out), -1)
	if len(m) == 0 || m[len(m)-1][3] < "05" {
		t.Fatalf("ffmpeg decoded too little of %s:\n%s", u, out)
	}
	return string(out), true
}

// Every rendition of a real track plays in ffmpeg through steering and a
// POP, for free and premium listeners alike, as far as the catalog allows;
// after an unpublish, new and already issued URLs stop within seconds.
func TestPlaybackWithFFmpeg(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is required (hack/deps installs it)")
	}
	const id = "00000000-0000-4000-8000-0000000000aa"
	f, prefix, objs := publishedTrack(t, id, rendition{kind: "flac", key: "flac/track.flac", codec: "fLaC", premium: true})
	_, err := f.catalog.Pool.Exec(context.Background(), `UPDATE track SET replay_gain_db = -3.5, cover_key = $2, peaks_key = $3 WHERE id = $1`,
		id, prefix+"cover/600.jpg", prefix+"peaks.json")
	require.NoError(t, err)
	f.rounds(1)
	h := httptest.NewServer(f.svc)
	defer h.Close()
	playback := func(bearer string) (Playback, int) {
		req, _ := http.NewRequest("GET", h.URL+"/v1/tracks/"+id+"/playback", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set(RegionHeader, "eu-west")
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer r.Body.Close()
		var p Playback
		if r.StatusCode == 200 {
			require.NoError(t, json.NewDecoder(r.Body).Decode(&p))
			require.Equal(t, "private, no-store", r.Header.Get("Cache-Control"))
		} else {
			require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
		}
		return p, r.StatusCode
	}
	free, premium := f.auth.Token(t, "free-listener", tokentest.Options{}), f.auth.Token(t, "premium-listener", tokentest.Options{Premium: true})

	pf, code := playback(free)
	require.Equal(t, 200, code)
	require.Equal(t, "pop-eu-west", pf.POP)
	require.False(t, pf.ListenerPremium)
	require.NotNil(t, pf.LoudnessGainDB)
	require.InDelta(t, -3.5, *pf.LoudnessGainDB, 1e-9)
	require.Len(t, pf.Candidates, 3)
	require.WithinDuration(t, time.Now().Add(2*time.Hour), pf.Expires, time.Minute)
	for _, r := range pf.Renditions {
		require.Equal(t, !r.Premium, r.Playable, "free listener, %s", r.Kind)
		require.Equal(t, r.Playable, r.URL != "", "free listener, %s URL", r.Kind)
		require.NotEmpty(t, r.Codec, r.Kind)
	}
	// Waveform and covers open with the listener's token.
	require.Equal(t, "200", statusText(t, pf.WaveformURL))
	require.Len(t, pf.CoverURLs, 3)
	for size, u := range pf.CoverURLs {
		require.Equal(t, "200", statusText(t, u), "cover %s", size)
	}

	// The free listener's master plays (ffmpeg, full decode) and lists only
	// the free variants; so does every free rendition on its own.
	master := body(t, pf.MasterURL)
	require.NotContains(t, master, "aac256")
	require.Contains(t, master, "aac128/index.m3u8?t=")
	out, ok := play(t, pf.MasterURL)
	require.True(t, ok, "free master: %s", out)
	for _, r := range pf.Renditions {
		if r.Playable {
			out, ok := play(t, r.URL)
			require.True(t, ok, "free listener, %s: %s", r.Kind, out)
		}
	}
	// A premium rendition refused by the catalog flag alone: steering
	// refuses to sign it, and the free token does not open it at the POP.
	req, _ := http.NewRequest("GET", h.URL+"/v1/cdn/play/"+id+"/hls-aac-256", nil)
	req.Header.Set("Authorization", "Bearer "+free)
	r, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 403, r.StatusCode)
	forced := strings.Replace(pf.MasterURL, "master.m3u8", "aac256/index.m3u8", 1)
	_, ok = play(t, forced)
	require.False(t, ok, "ffmpeg played a premium rendition with a free listener's URL")

	pp, code := playback(premium)
	require.Equal(t, 200, code)
	require.True(t, pp.ListenerPremium)
	require.Contains(t, body(t, pp.MasterURL), "aac256/index.m3u8?t=")
	out, ok = play(t, pp.MasterURL)
	require.True(t, ok, "premium master: %s", out)
	for _, r := range pp.Renditions {
		require.True(t, r.Playable, r.Kind)
		out, ok := play(t, r.URL)
		require.True(t, ok, "premium listener, %s: %s", r.Kind, out)
	}

	// Unpublish. Already issued URLs: a master and a segment this POP has
	// cached, and a segment no POP has fetched yet (on another POP).
	cached := strings.Replace(pp.MasterURL, "master.m3u8", "aac128/init_1.mp4", 1)
	require.Equal(t, "200", statusText(t, cached))
	uncached := strings.Replace(pp.Candidates[2].MasterURL, "master.m3u8", "aac64/index1.m4s", 1)
	if !strings.Contains(objsKeys(objs), "aac64/index1.m4s") {
		t.Fatalf("ffmpeg named the segments differently: %s", objsKeys(objs))
	}
	_, err = f.catalog.Pool.Exec(context.Background(), `UPDATE track SET state = 'unpublished' WHERE id = $1`, id)
	require.NoError(t, err)
	// What cdn-purge does on TrackUnpublished: revoke the track's prefix on
	// every POP (which also purges its cached objects).
	for _, pop := range f.pops {
		_, err := (edge.AdminClient{Secret: testAdminSecret}).Revoke(context.Background(), pop.URL(), edge.RevokeRequest{Prefixes: []string{"tracks/" + id + "/"}})
		require.NoError(t, err)
	}
	testenv.WaitFor(t, time.Minute, "issued URLs to stop working after unpublish", func() bool {
		_, code := playback(premium)
		return code == 404 && statusText(t, pp.MasterURL) == "403" && statusText(t, cached) == "403" && statusText(t, uncached) == "403"
	})
	_, ok = play(t, pp.MasterURL)
	require.False(t, ok, "ffmpeg still plays an unpublished track")
}

func objsKeys(objs map[string]string) string {
	var ks []string
	for k := range objs {
		ks = append(ks, k)
	}
	return strings.Join(ks, " ")
}

func statusText(t *testing.T, u string) string {
	t.Helper()
	r, err := http.Get(u)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return strconv.Itoa(r.StatusCode)
}

func body(t *testing.T, u string) string {
	t.Helper()
	r, err := http.Get(u)
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.Equal(t, 200, r.StatusCode, "%s: %s", u, b)
	return string(b)
}

// publishedTrack makes a track with ffmpeg (makeTrack), puts it into a
// private S3 under tracks/<id>/v1/ and records it published in the catalog
// of a fixture reading that S3: the three AAC HLS renditions — the catalog's
// flag alone makes the 256k one premium, nothing in the keys says so — and
// extra (their keys relative to the track's prefix). It returns the fixture,
// the prefix and the objects stored.
func publishedTrack(t *testing.T, id string, extra ...rendition) (*fixture, string, map[string]string) {
	t.Helper()
	ep, access, secret := testenv.S3(t)
	prefix := "tracks/" + id + "/v1/"
	objs := map[string]string{}
	for k, v := range makeTrack(t) {
		objs[prefix+k] = string(v)
	}
	putObjects(t, ep, access, secret, objs)
	f := newFixtureS3(t, ep, access, secret)
	rs := []rendition{
		{kind: "hls-aac-64", key: prefix + "aac64/index.m3u8", codec: "mp4a.40.2", bitrate: 64000},
		{kind: "hls-aac-128", key: prefix + "aac128/index.m3u8", codec: "mp4a.40.2", bitrate: 128000},
		{kind: "hls-aac-256", key: prefix + "aac256/index.m3u8", codec: "mp4a.40.2", bitrate: 256000, premium: true},
	}
	for _, r := range extra {
		r.key = prefix + r.key
		rs = append(rs, r)
	}
	addTrack(t, f.catalog, id, "published", rs...)
	return f, prefix, objs
}
