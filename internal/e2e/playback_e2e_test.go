package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/platformtest"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// An audio file put into the uploads bucket with a plain S3 client becomes a
// track with its tags, duration and loudness; published, it plays through a
// POP in ffmpeg — every variant the listener may play, completely and at its
// bit rate — with the 256k variant for the premium listener only; an
// unpublish stops the URLs already issued within seconds.
func TestUploadPublishPlayUnpublish(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (hack/deps installs it)", tool)
		}
	}
	s := platformtest.Start(t, platformtest.Options{})

	// The source: 24 s of stereo FLAC (lossless, so a FLAC rendition is made
	// too) with Cyrillic tags and an attached cover.
	dir := t.TempDir()
	src := filepath.Join(dir, "source.flac")
	platformtest.FFmpeg(t, "-f", "lavfi", "-i", "sine=frequency=330:duration=24:sample_rate=44100",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=24:sample_rate=44100",
		"-f", "lavfi", "-i", "color=c=teal:s=640x640:d=1",
		"-filter_complex", "[0:a][1:a]amerge=inputs=2,volume=-9dB[a]", "-map", "[a]", "-map", "2:v",
		"-c:a", "flac", "-c:v", "mjpeg", "-frames:v", "1", "-disposition:v", "attached_pic",
		"-metadata", "title=Группа крови", "-metadata", "artist=Кино", "-metadata", "album=Группа крови",
		"-metadata", "date=1988", src)
	wantDur := probeDuration(t, src)
	wantLUFS := measureLoudness(t, src)

	// Put it into the uploads bucket as an admin's S3 client would; the
	// upload record (admin API) goes ready with a track.
	id := s.Ingest(t, src).TrackID
	ctx := context.Background()

	// The draft track: tags, duration within 50 ms of ffprobe's, loudness
	// within 0.5 LU of ffmpeg's own measurement.
	var title, state, album string
	var durMS int
	var lufs float64
	var artists []string
	require.NoError(t, s.DB.QueryRow(ctx, `SELECT t.title, t.state, coalesce(al.title, ''), t.duration_ms, t.loudness_lufs,
		array(SELECT a.name FROM track_artist ta JOIN artist a ON a.id = ta.artist_id WHERE ta.track_id = t.id ORDER BY ta.position)
		FROM track t LEFT JOIN album al ON al.id = t.album_id WHERE t.id = $1`, id).Scan(&title, &state, &album, &durMS, &lufs, &artists))
	require.Equal(t, "Группа крови", title)
	require.Equal(t, "draft", state)
	require.Equal(t, "Группа крови", album)
	require.Equal(t, []string{"Кино"}, artists)
	require.InDelta(t, wantDur.Milliseconds(), durMS, 50, "duration")
	require.InDelta(t, wantLUFS, lufs, 0.5, "integrated loudness")

	// An admin publishes it; the public card follows.
	after := s.Publish(t, id)
	var card struct {
		Title   string `json:"title"`
		Artists []struct {
			Name string `json:"name"`
		} `json:"artists"`
		Album *struct {
			Title string `json:"title"`
		} `json:"album"`
		DurationMS int `json:"duration_ms"`
	}
	s.CallJSON(t, "GET", "/v1/tracks/"+id+"?after="+after, "", nil, http.StatusOK, &card)
	require.Equal(t, "Группа крови", card.Title)
	require.Len(t, card.Artists, 1)
	require.Equal(t, "Кино", card.Artists[0].Name)
	require.NotNil(t, card.Album)
	require.Equal(t, "Группа крови", card.Album.Title)
	require.Equal(t, durMS, card.DurationMS)

	free := s.Listener(t, "free@example.com")
	premium := s.Listener(t, "premium@example.com")
	s.BuyPremium(t, &premium)

	// The free listener: the master lists the free variants only, each
	// decodes completely through the POP at its bit rate; the 256k one is
	// refused by the POP and by steering.
	pf := playback(t, s, id, free.Access)
	require.False(t, pf.ListenerPremium)
	kinds := map[string]steering.PlaybackRendition{}
	for _, r := range pf.Renditions {
		kinds[r.Kind] = r
		require.Equal(t, !r.Premium, r.Playable, r.Kind)
	}
	for _, k := range []string{"hls", "hls-aac-64", "hls-aac-128", "hls-aac-256", "flac"} {
		require.Contains(t, kinds, k)
	}
	require.True(t, kinds["hls-aac-256"].Premium)
	require.True(t, kinds["flac"].Premium)
	require.NotNil(t, pf.LoudnessGainDB)
	require.InDelta(t, -18-wantLUFS, *pf.LoudnessGainDB, 1, "gain toward -18 LUFS")
	require.Contains(t, s.Body(t, pf.WaveformURL), `"version":2`)
	require.Len(t, pf.CoverURLs, 3)
	for size, u := range pf.CoverURLs {
		require.Equal(t, http.StatusOK, s.Status(t, u), "cover %s", size)
	}
	master := s.Body(t, pf.MasterURL)
	require.NotContains(t, master, "aac256")
	playVariants(t, pf, wantDur, []int{64000, 128000})
	resp := s.Do(t, "GET", "/v1/cdn/play/"+id+"/hls-aac-256", free.Access, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "steering signed the 256k variant for a free listener")

	// The premium listener: all three variants, the FLAC file too.
	pp := playback(t, s, id, premium.Access)
	require.True(t, pp.ListenerPremium)
	for _, r := range pp.Renditions {
		require.True(t, r.Playable, r.Kind)
	}
	require.Contains(t, s.Body(t, pp.MasterURL), "aac256/index.m3u8?t=")
	playVariants(t, pp, wantDur, []int{64000, 128000, 256000})
	// The 256k variant's URL with the free listener's token: the POP refuses
	// it by the catalog's flag carried in the token.
	premiumVariant := withToken(t, rendition(t, pp, "hls-aac-256").URL, pf.MasterURL)
	require.Equal(t, http.StatusForbidden, s.Status(t, premiumVariant))
	_, err := decode(premiumVariant, "0:a:0")
	require.Error(t, err, "ffmpeg played the 256k variant with a free listener's URL")
	flacURL := rendition(t, pp, "flac").URL
	got, err := decode(flacURL, "0:a:0")
	require.NoError(t, err, "flac: %s", got)

	// The catalog alone decides: an admin makes the 256k variant free (in
	// PostgreSQL, as admins may) and the free listener plays it at once.
	_, err = s.DB.Exec(ctx, `UPDATE track_rendition SET premium = false WHERE track_id = $1 AND kind = 'hls-aac-256'`, id)
	require.NoError(t, err)
	promo := playback(t, s, id, free.Access)
	require.True(t, rendition(t, promo, "hls-aac-256").Playable)
	require.False(t, rendition(t, promo, "flac").Playable)
	require.Contains(t, s.Body(t, promo.MasterURL), "aac256/index.m3u8?t=")
	playVariants(t, promo, wantDur, []int{64000, 128000, 256000})

	// Unpublish: URLs already issued (a master, a cached segment, the FLAC
	// file) stop working within seconds, and steering signs no new one.
	segment := firstSegment(t, s, pp.MasterURL)
	require.Equal(t, http.StatusOK, s.Status(t, segment))
	resp = s.Do(t, "POST", "/v1/admin/tracks/"+id+"/unpublish", s.Admin.Access, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	testenv.WaitFor(t, time.Minute, "issued URLs to stop working after unpublish", func() bool {
		r := s.Do(t, "GET", "/v1/tracks/"+id+"/playback", premium.Access, nil)
		r.Body.Close()
		return r.StatusCode == http.StatusNotFound && s.Status(t, pp.MasterURL) == http.StatusForbidden &&
			s.Status(t, pf.MasterURL) == http.StatusForbidden && s.Status(t, segment) == http.StatusForbidden &&
			s.Status(t, flacURL) == http.StatusForbidden
	})
	_, err = decode(pp.MasterURL, "0:a:0")
	require.Error(t, err, "ffmpeg still plays an unpublished track")
}

// playVariants decodes every audio stream of the listener's master through
// the POP and checks each variant playlist's bit rate against nominal.
func playVariants(t *testing.T, pb steering.Playback, want time.Duration, nominal []int) {
	t.Helper()
	n := audioStreams(t, pb.MasterURL)
	require.Equal(t, len(nominal), n, "variants in the master")
	for i := range n {
		out, err := decode(pb.MasterURL, "0:a:"+strconv.Itoa(i))
		require.NoError(t, err, "variant %d: %s", i, out)
		require.InDelta(t, want.Seconds(), decodedSeconds(t, out), 0.5, "variant %d decoded completely", i)
	}
	for i, bps := range nominal {
		u := ""
		for _, r := range pb.Renditions {
			if r.Bitrate == bps && strings.HasPrefix(r.Kind, "hls-aac-") {
				u = r.URL
			}
		}
		require.NotEmpty(t, u, "rendition of %d bit/s", bps)
		got := variantBitrate(t, u)
		require.InEpsilon(t, float64(bps), got, 0.2, "variant %d: %d bit/s, nominal %d", i, got, bps)
	}
}

// rendition is the playback answer's rendition of kind.
func rendition(t *testing.T, pb steering.Playback, kind string) steering.PlaybackRendition {
	t.Helper()
	for _, r := range pb.Renditions {
		if r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no rendition %s in %+v", kind, pb.Renditions)
	return steering.PlaybackRendition{}
}

// withToken is u with the token of the URL from.
func withToken(t *testing.T, u, from string) string {
	t.Helper()
	a, err := url.Parse(u)
	require.NoError(t, err)
	b, err := url.Parse(from)
	require.NoError(t, err)
	q := a.Query()
	q.Set(urlsign.Param, b.Query().Get(urlsign.Param))
	a.RawQuery = q.Encode()
	return a.String()
}

var (
	timeRe   = regexp.MustCompile(`time=(\d\d):(\d\d):(\d\d\.\d+)`)
	inputIRe = regexp.MustCompile(`"input_i"\s*:\s*"(-?[\d.]+)"`)
)

func probeDuration(t *testing.T, path string) time.Duration {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, "%s", out)
	return time.Duration(sec * float64(time.Second))
}

// measureLoudness is ffmpeg's own EBU R128 integrated loudness of path.
func measureLoudness(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-af", "loudnorm=print_format=json", "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := inputIRe.FindSubmatch(out)
	require.NotNil(t, m, "no loudnorm JSON: %s", out)
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// decode plays stream of u completely, as a player would; it returns
// ffmpeg's output.
func decode(u, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-stats", "-i", u, "-map", stream, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ffmpeg -i %s -map %s: %w", u, stream, err)
	}
	return string(out), nil
}

func decodedSeconds(t *testing.T, out string) float64 {
	t.Helper()
	m := timeRe.FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, m, "no progress in %s", out)
	last := m[len(m)-1]
	h, _ := strconv.Atoi(last[1])
	mi, _ := strconv.Atoi(last[2])
	sec, _ := strconv.ParseFloat(last[3], 64)
	return float64(h*3600+mi*60) + sec
}

func audioStreams(t *testing.T, u string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "json", u).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var p struct {
		Streams []struct{} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &p), "%s", out)
	return len(p.Streams)
}

// variantBitrate is the audio stream's bit rate ffprobe reads from the
// variant playlist (the container's would be the playlist file's).
func variantBitrate(t *testing.T, u string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=bit_rate", "-of", "csv=p=0", u).CombinedOutput()
	require.NoError(t, err, "%s", out)
	n, err := strconv.Atoi(strings.Fields(string(out) + " -")[0]) // once per program and stream
	require.NoError(t, err, "ffprobe gives no bit rate for %s: %s", u, out)
	return n
}

// firstSegment follows the master's first variant to its first media
// segment's URL (rewritten by the POP, so it carries the token).
func firstSegment(t *testing.T, s *platformtest.Platform, masterURL string) string {
	t.Helper()
	base, err := url.Parse(masterURL)
	require.NoError(t, err)
	next := func(body, suffix string) *url.URL {
		for _, line := range strings.Split(body, "\n") {
			if line != "" && !strings.HasPrefix(line, "#") && strings.Contains(line, suffix) {
				ref, err := url.Parse(line)
				require.NoError(t, err)
				return base.ResolveReference(ref)
			}
		}
		t.Fatalf("no %s URI in %s", suffix, body)
		return nil
	}
	base = next(s.Body(t, masterURL), ".m3u8")
	seg := next(s.Body(t, base.String()), ".m4s")
	require.NotEmpty(t, seg.Query().Get(urlsign.Param), "segment URI without a token: %s", seg)
	return seg.String()
}

func playback(t *testing.T, s *platformtest.Platform, id, bearer string) steering.Playback {
	t.Helper()
	var pb steering.Playback
	s.CallJSON(t, "GET", "/v1/tracks/"+id+"/playback", bearer, nil, http.StatusOK, &pb)
	return pb
}
