package media

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sourceSeconds is the length of every generated fixture: two HLS segments,
// a few hundred milliseconds of ffmpeg CPU per format.
const sourceSeconds = 7

// fixtures are generated once per test binary with ffmpeg (never committed):
// a stereo tone over noise as 16-bit WAV, and a 320×240 JPEG cover.
var fixtures struct {
	once      sync.Once
	dir       string
	wav, jpeg string
	err       error
}

func sourceFixtures(t *testing.T) (wav, jpeg string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash hack/deps/base.sh): %v", err)
	}
	fixtures.once.Do(func() {
		dir, err := os.MkdirTemp("", "media-fixtures-")
		if err != nil {
			fixtures.err = err
			return
		}
		fixtures.dir = dir
		fixtures.wav = filepath.Join(dir, "source.wav")
		fixtures.jpeg = filepath.Join(dir, "cover.jpg")
		fixtures.err = ffmpegErr(
			"-f", "lavfi", "-i", fmt.Sprintf("sine=f=440:d=%d", sourceSeconds),
			"-f", "lavfi", "-i", fmt.Sprintf("anoisesrc=d=%d:a=0.08:c=pink", sourceSeconds),
			"-filter_complex", "[0][1]amerge=inputs=2,volume=0.7", "-ar", "44100", "-c:a", "pcm_s16le", fixtures.wav)
		if fixtures.err == nil {
			fixtures.err = ffmpegErr("-f", "lavfi", "-i", "testsrc=size=320x240:d=1", "-frames:v", "1", fixtures.jpeg)
		}
	})
	require.NoError(t, fixtures.err)
	return fixtures.wav, fixtures.jpeg
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

func ffmpegErr(args ...string) error {
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	require.NoError(t, ffmpegErr(args...))
}

// measureLoudness is the reference: ffmpeg's loudnorm run directly on a file.
func measureLoudness(t *testing.T, path string) Loudness {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-map", "0:a:0",
		"-af", "loudnorm=print_format=json", "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	l, err := parseLoudnorm(string(out))
	require.NoError(t, err)
	return l
}

type format struct {
	name   string
	ext    string
	args   []string // encoder and muxer options
	cover  bool
	tags   []string // -metadata pairs
	want   Tags
	codec  string
	flac   bool
	sameAs string // the format whose decoded audio (content hash) is identical
	rate   int    // sample rate of the encoded file, 44100 when 0
	// onlyID3v1 strips the ID3v2 tag ffmpeg wrote, leaving the ID3v1 one.
	onlyID3v1 bool
}

var cyrillic = Tags{
	Title: "Группа крови", Artists: []string{"Кино", "Виктор Цой"}, Album: "Группа крови",
	AlbumArtist: "Кино", TrackNumber: 1, TrackTotal: 11, DiscNumber: 1, DiscTotal: 2, Year: 1988,
	Genre: "Rock", ISRC: "SUA1D8800001",
}

var cyrillicTags = []string{
	"title=Группа крови", "artist=Кино feat. Виктор Цой", "album=Группа крови", "album_artist=Кино",
	"track=1/11", "disc=1/2", "date=1988", "genre=Rock", "TSRC=SU-A1D-88-00001",
}

var formats = []format{
	{name: "MP3ID3v23", ext: "mp3", args: []string{"-c:a", "libmp3lame", "-b:a", "192k", "-id3v2_version", "3"},
		cover: true, tags: cyrillicTags, want: cyrillic, codec: "mp3"},
	{name: "MP3ID3v24", ext: "mp3", args: []string{"-c:a", "libmp3lame", "-b:a", "192k", "-id3v2_version", "4"},
		cover: true, tags: cyrillicTags, want: cyrillic, codec: "mp3"},
	// ffmpeg writes no ID3v1 with -id3v2_version 0: makeFixture strips the
	// ID3v2 tag instead (onlyID3v1).
	{name: "MP3ID3v1", ext: "mp3", args: []string{"-c:a", "libmp3lame", "-b:a", "128k", "-write_id3v1", "1"}, onlyID3v1: true,
		tags:  []string{"title=Blood Type", "artist=AC/DC", "album=Kino", "track=4", "date=1988", "genre=Rock"},
		want:  Tags{Title: "Blood Type", Artists: []string{"AC/DC"}, Album: "Kino", TrackNumber: 4, Year: 1988, Genre: "Rock"},
		codec: "mp3"},
	{name: "FLAC", ext: "flac", args: []string{"-c:a", "flac"}, cover: true,
		tags: []string{"title=Звезда по имени Солнце", "artist=Кино", "ARTISTS=Кино; Виктор Цой", "album=Звезда", "albumartist=Кино",
			"tracknumber=2", "tracktotal=9", "date=1989-01-01", "genre=Rock", "ISRC=SUA1D8900002"},
		want: Tags{Title: "Звезда по имени Солнце", Artists: []string{"Кино", "Виктор Цой"}, Album: "Звезда", AlbumArtist: "Кино",
			TrackNumber: 2, TrackTotal: 9, Year: 1989, Genre: "Rock", ISRC: "SUA1D8900002"},
		codec: "flac", flac: true, sameAs: "WAV"},
	{name: "WAV", ext: "wav", args: []string{"-c:a", "pcm_s16le"},
		tags:  []string{"title=Tone", "artist=Generator"},
		want:  Tags{Title: "Tone", Artists: []string{"Generator"}},
		codec: "pcm_s16le", flac: true, sameAs: "FLAC"},
	{name: "OggVorbis", ext: "ogg", args: []string{"-c:a", "libvorbis", "-q:a", "4"},
		tags:  []string{"title=Кукушка", "artist=Кино / Виктор Цой", "album=Чёрный альбом", "tracknumber=3", "date=1990", "genre=Rock"},
		want:  Tags{Title: "Кукушка", Artists: []string{"Кино", "Виктор Цой"}, Album: "Чёрный альбом", TrackNumber: 3, Year: 1990, Genre: "Rock"},
		codec: "vorbis"},
	{name: "Opus", ext: "opus", args: []string{"-c:a", "libopus", "-b:a", "96k"}, rate: 48000,
		tags:  []string{"title=Пачка сигарет", "artist=Кино", "ISRC=SUA1D8900003"},
		want:  Tags{Title: "Пачка сигарет", Artists: []string{"Кино"}, ISRC: "SUA1D8900003"},
		codec: "opus"},
	// ffmpeg 5.1 drops the attached picture from an .m4a when
	// +use_metadata_tags is set, so this one carries no ISRC.
	{name: "M4A", ext: "m4a", args: []string{"-c:a", "aac", "-b:a", "160k"}, cover: true,
		tags:  []string{"title=Перемен", "artist=Кино", "album=Последний герой", "album_artist=Кино", "track=5/12", "disc=2/2", "date=1989", "genre=Rock"},
		want:  Tags{Title: "Перемен", Artists: []string{"Кино"}, Album: "Последний герой", AlbumArtist: "Кино", TrackNumber: 5, TrackTotal: 12, DiscNumber: 2, DiscTotal: 2, Year: 1989, Genre: "Rock"},
		codec: "aac"},
}

// makeFixture encodes the source into f's format with its tags and cover.
func makeFixture(t *testing.T, dir string, f format) string {
	t.Helper()
	wav, jpeg := sourceFixtures(t)
	path := filepath.Join(dir, "in."+f.ext)
	args := []string{"-i", wav}
	if f.cover {
		args = append(args, "-i", jpeg, "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic")
	}
	args = append(args, f.args...)
	for _, kv := range f.tags {
		args = append(args, "-metadata", kv)
	}
	ffmpeg(t, append(args, path)...)
	if f.onlyID3v1 {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, "ID3", string(b[:3]))
		size := int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9]) // syncsafe
		b = b[10+size:]
		require.Equal(t, "TAG", string(b[len(b)-128:len(b)-125]))
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}
	return path
}

func TestProcessFormats(t *testing.T) {
	t.Parallel()
	p := New(Config{})
	var mu sync.Mutex
	hashes := map[string]string{}
	t.Cleanup(func() {
		for _, f := range formats {
			if f.sameAs != "" && hashes[f.name] != "" && hashes[f.sameAs] != "" {
				if hashes[f.name] != hashes[f.sameAs] {
					t.Errorf("%s and %s decode to the same PCM but hash differently", f.name, f.sameAs)
				}
			}
		}
	})
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in := makeFixture(t, dir, f)
			out := filepath.Join(dir, "out")
			res, err := p.Process(context.Background(), in, out)
			require.NoError(t, err)

			require.Equal(t, f.codec, res.Probe.Codec)
			require.Equal(t, f.flac, res.Probe.Lossless)
			require.Equal(t, cmp.Or(f.rate, 44100), res.Probe.SampleRate)
			require.Equal(t, 2, res.Probe.Channels)
			require.InDelta(t, float64(sourceSeconds*time.Second), float64(res.Probe.Duration), float64(50*time.Millisecond), "duration %s", res.Probe.Duration)

			got := res.Tags
			if f.cover {
				require.NotNil(t, got.Cover)
				require.Equal(t, "image/jpeg", got.Cover.MIME)
				jpeg, _ := os.ReadFile(fixtures.jpeg)
				require.Equal(t, jpeg, got.Cover.Data)
			} else {
				require.Nil(t, got.Cover)
			}
			got.Cover = nil
			require.Equal(t, f.want, got)

			ref := measureLoudness(t, in)
			require.InDelta(t, ref.IntegratedLUFS, res.Loudness.IntegratedLUFS, 0.5)
			require.InDelta(t, ref.TruePeakDBTP, res.Loudness.TruePeakDBTP, 0.5)
			require.InDelta(t, ref.RangeLU, res.Loudness.RangeLU, 0.5)
			require.InDelta(t, ReferenceLUFS-res.Loudness.IntegratedLUFS, res.Loudness.GainDB, 0.01)

			require.Regexp(t, `^sha256:[0-9a-f]{64}$`, res.ContentHash)
			mu.Lock()
			hashes[f.name] = res.ContentHash
			mu.Unlock()

			checkRenditions(t, out, res, f.flac)
			checkPeaks(t, out, res)
			checkCovers(t, out, res, f.cover)

			var files []string
			require.NoError(t, filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(out, path)
					files = append(files, rel)
				}
				return err
			}))
			slices.Sort(files)
			require.Equal(t, files, res.Files)
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".out.tmp-*"))
			require.Empty(t, leftovers)
		})
	}
}

// checkRenditions plays master.m3u8 with ffmpeg, every variant to the end,
// and checks the master's attributes against the segments on disk.
func checkRenditions(t *testing.T, out string, res *Result, lossless bool) {
	t.Helper()
	kinds := []string{}
	for _, r := range res.Renditions {
		kinds = append(kinds, r.Kind)
	}
	want := []string{"aac64", "aac128", "aac256"}
	if lossless {
		want = append(want, "flac")
	}
	require.Equal(t, want, kinds)

	master, err := os.ReadFile(filepath.Join(out, "master.m3u8"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(master), "#EXTM3U\n"))
	require.Contains(t, string(master), "#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, r := range res.Renditions[:3] {
		require.Equal(t, "mp4a.40.2", r.Codec)
		require.Equal(t, r.Kind == "aac256", r.Premium)
		// The average is within 15% of the nominal bit rate (AAC's rate
		// control plus the fMP4 boxes); the peak is not below the average.
		require.InEpsilon(t, r.Bitrate, r.AverageBandwidth, 0.15, r.Kind)
		require.GreaterOrEqual(t, r.Bandwidth, r.AverageBandwidth)
		peak, avg, err := segmentRates(filepath.Join(out, r.Playlist))
		require.NoError(t, err)
		require.Equal(t, [2]int{r.Bandwidth, r.AverageBandwidth}, [2]int{peak, avg})
		require.Contains(t, string(master), fmt.Sprintf("#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"mp4a.40.2\"\n%s\n", peak, avg, r.Playlist))
	}
	// A real client: ffmpeg reads the master playlist and decodes every
	// variant completely; -xerror makes any decoding error fatal.
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", filepath.Join(out, "master.m3u8")}
	for i := range 3 {
		args = append(args, "-map", fmt.Sprintf("0:a:%d", i), "-f", "null", "-")
	}
	cmdOut, err := exec.Command("ffmpeg", args...).CombinedOutput()
	require.NoError(t, err, "%s", cmdOut)
	require.Empty(t, strings.TrimSpace(string(cmdOut)))
	for _, r := range res.Renditions[:3] {
		d := playlistSeconds(t, filepath.Join(out, r.Playlist))
		require.InDelta(t, sourceSeconds, d, 0.1, r.Kind)
	}
	if lossless {
		flac := res.Renditions[3]
		require.Equal(t, "fLaC", flac.Codec)
		require.Equal(t, "flac/track.flac", flac.File)
		require.InDelta(t, sourceSeconds, probeDuration(t, filepath.Join(out, flac.File)), 0.01)
	}
}

// playlistSeconds sums a media playlist's #EXTINF durations.
func playlistSeconds(t *testing.T, path string) float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var sum float64
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			var d float64
			_, err := fmt.Sscanf(v, "%g,", &d)
			require.NoError(t, err)
			sum += d
		}
	}
	return sum
}

func probeDuration(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	var d float64
	_, err = fmt.Sscan(string(out), &d)
	require.NoError(t, err)
	return d
}

func checkPeaks(t *testing.T, out string, res *Result) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, res.Peaks))
	require.NoError(t, err)
	var w struct {
		Version         int   `json:"version"`
		Channels        int   `json:"channels"`
		SampleRate      int   `json:"sample_rate"`
		SamplesPerPixel int   `json:"samples_per_pixel"`
		Bits            int   `json:"bits"`
		Length          int   `json:"length"`
		Data            []int `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &w))
	require.Equal(t, [4]int{2, 1, 8000, 8}, [4]int{w.Version, w.Channels, w.SampleRate, w.Bits})
	require.Equal(t, 2*w.Length, len(w.Data))
	require.InDelta(t, sourceSeconds*w.SampleRate/w.SamplesPerPixel, w.Length, 2)
	// The source peaks at about -12 dBFS mono (a quarter of full scale,
	// 32 in 8 bits): every pixel but the last shows it.
	heard := 0
	for i := 0; i < len(w.Data); i += 2 {
		require.LessOrEqual(t, w.Data[i], w.Data[i+1])
		require.GreaterOrEqual(t, w.Data[i], -128)
		require.LessOrEqual(t, w.Data[i+1], 127)
		if w.Data[i+1]-w.Data[i] >= 8 {
			heard++
		}
	}
	require.GreaterOrEqual(t, heard, w.Length-2, "%v", w.Data)
}

func checkCovers(t *testing.T, out string, res *Result, cover bool) {
	t.Helper()
	if !cover {
		require.Empty(t, res.Covers)
		require.NoDirExists(t, filepath.Join(out, "cover"))
		return
	}
	// The 320×240 source fitted into each box.
	want := []Cover{
		{Size: 64, Width: 64, Height: 48, File: "cover/64.jpg"},
		{Size: 300, Width: 300, Height: 225, File: "cover/300.jpg"},
		{Size: 600, Width: 600, Height: 450, File: "cover/600.jpg"},
	}
	require.Equal(t, want, res.Covers)
	for _, c := range want {
		w, h, err := imageSize(filepath.Join(out, c.File))
		require.NoError(t, err)
		require.Equal(t, [2]int{c.Width, c.Height}, [2]int{w, h})
	}
}

func TestProbeAndTags(t *testing.T) {
	t.Parallel()
	p := New(Config{})
	dir := t.TempDir()
	in := makeFixture(t, dir, formats[0])
	pr, err := p.Probe(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, "mp3", pr.Container)
	require.False(t, pr.Lossless)
	require.Zero(t, pr.BitDepth)
	tags, err := p.Tags(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, "image/jpeg", tags.Cover.MIME)
	require.Equal(t, cyrillic.Artists, tags.Artists)

	in24 := filepath.Join(dir, "in24.flac")
	wav, _ := sourceFixtures(t)
	ffmpeg(t, "-i", wav, "-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24", in24)
	pr, err = p.Probe(context.Background(), in24)
	require.NoError(t, err)
	require.Equal(t, Probe{Container: "flac", Codec: "flac", Duration: pr.Duration, SampleRate: 44100, Channels: 2,
		BitDepth: 24, Bitrate: pr.Bitrate, Lossless: true}, *pr)
}

// TestBadInput feeds every kind of bad file to Process and checks the
// reason, and that nothing is left behind.
func TestBadInput(t *testing.T) {
	t.Parallel()
	wav, jpeg := sourceFixtures(t)
	crash := filepath.Join(t.TempDir(), "ffmpeg-crash")
	require.NoError(t, os.WriteFile(crash, []byte("#!/bin/sh\nkill -SEGV $$\n"), 0o755))
	// hang starts a grandchild that holds stderr open: unless the whole
	// process group is killed, Wait only returns after waitDelay.
	hang := filepath.Join(t.TempDir(), "ffmpeg-hang")
	require.NoError(t, os.WriteFile(hang, []byte("#!/bin/sh\nsleep 60 &\nwait\n"), 0o755))

	tests := []struct {
		name   string
		make   func(t *testing.T, path string)
		ext    string
		cfg    Config
		reason Reason
	}{
		{name: "Empty", ext: "mp3", reason: ReasonEmpty,
			make: func(t *testing.T, path string) { require.NoError(t, os.WriteFile(path, nil, 0o644)) }},
		{name: "Text", ext: "mp3", reason: ReasonNotAudio,
			make: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("This is not a song.\nJust some words.\n"), 0o644))
			}},
		{name: "TextFile", ext: "txt", reason: ReasonNotAudio,
			make: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("lyrics, no music\n"), 0o644))
			}},
		{name: "JPEG", ext: "jpg", reason: ReasonNotAudio,
			make: func(t *testing.T, path string) { copyFile(t, jpeg, path) }},
		{name: "MP3CutInHalf", ext: "mp3", reason: ReasonTruncated,
			make: func(t *testing.T, path string) {
				ffmpeg(t, "-i", wav, "-c:a", "libmp3lame", path)
				cutInHalf(t, path)
			}},
		{name: "FLACCutInHalf", ext: "flac", reason: ReasonTruncated,
			make: func(t *testing.T, path string) {
				ffmpeg(t, "-i", wav, "-c:a", "flac", path)
				cutInHalf(t, path)
			}},
		{name: "WAVCutInHalf", ext: "wav", reason: ReasonTruncated,
			make: func(t *testing.T, path string) { copyFile(t, wav, path); cutInHalf(t, path) }},
		{name: "M4ACutInHalf", ext: "m4a", reason: ReasonTruncated,
			make: func(t *testing.T, path string) {
				ffmpeg(t, "-i", wav, "-c:a", "aac", path)
				cutInHalf(t, path)
			}},
		{name: "FLACFlippedBytes", ext: "flac", reason: ReasonTruncated,
			make: func(t *testing.T, path string) {
				ffmpeg(t, "-i", wav, "-c:a", "flac", path)
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				for i := len(b) / 3; i < len(b)/3+64; i++ {
					b[i] ^= 0xFF
				}
				require.NoError(t, os.WriteFile(path, b, 0o644))
			}},
		{name: "TooLong", ext: "wav", cfg: Config{MaxDuration: 5 * time.Second}, reason: ReasonTooLong,
			make: func(t *testing.T, path string) { copyFile(t, wav, path) }},
		{name: "UnacceptedCodec", ext: "wav", reason: ReasonUnsupportedCodec,
			make: func(t *testing.T, path string) { ffmpeg(t, "-i", wav, "-c:a", "adpcm_ima_wav", path) }},
		{name: "VideoOnly", ext: "mp4", reason: ReasonUnsupportedCodec,
			make: func(t *testing.T, path string) {
				ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=64x64:d=1:r=5", "-c:v", "mpeg4", path)
			}},
		{name: "Timeout", ext: "wav", cfg: Config{Timeout: time.Nanosecond}, reason: ReasonTimeout,
			make: func(t *testing.T, path string) { copyFile(t, wav, path) }},
		{name: "TimeoutWhileRunning", ext: "wav", cfg: Config{FFmpeg: hang, Timeout: 300 * time.Millisecond}, reason: ReasonTimeout,
			make: func(t *testing.T, path string) { copyFile(t, wav, path) }},
		{name: "FFmpegCrash", ext: "wav", cfg: Config{FFmpeg: crash}, reason: ReasonFFmpegFailed,
			make: func(t *testing.T, path string) { copyFile(t, wav, path) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in := filepath.Join(dir, "in."+tt.ext)
			tt.make(t, in)
			out := filepath.Join(dir, "out")
			p := New(tt.cfg)
			var started time.Time
			p.onStart = func(bin string, _ int) {
				if bin == hang {
					started = time.Now()
				}
			}
			res, err := p.Process(context.Background(), in, out)
			if !started.IsZero() {
				// Without the group kill Wait would also sit out waitDelay.
				require.Less(t, time.Since(started), tt.cfg.Timeout+waitDelay/2, "the process group was not killed")
			}
			require.Nil(t, res)
			require.Error(t, err)
			require.Equal(t, tt.reason, ReasonOf(err), "%v", err)
			var me *Error
			require.ErrorAs(t, err, &me)
			require.NoFileExists(t, out)
			require.NoDirExists(t, out)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "only the input remains")
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

func cutInHalf(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, fi.Size()/2))
}

// TestCancel cancels Process as soon as its transcoding ffmpeg has started:
// the process is killed, the error is the context's, and nothing is left.
func TestCancel(t *testing.T) {
	t.Parallel()
	wav, _ := sourceFixtures(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	copyFile(t, wav, in)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := New(Config{})
	var pid int
	p.onStart = func(bin string, id int) {
		if bin == "ffmpeg" {
			pid = id
			cancel()
		}
	}
	out := filepath.Join(dir, "out")
	_, err := p.Process(ctx, in, out)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, ReasonOf(err))
	require.NotZero(t, pid)
	// Wait has reaped it: the pid names no process (nor a zombie).
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the input remains")
}

func TestProcessRefusesNonEmptyOutDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	_, err := New(Config{}).Process(context.Background(), "/nonexistent", dir)
	require.ErrorContains(t, err, "not empty")
}

func TestSplitArtists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Кино", []string{"Кино"}},
		{"AC/DC", []string{"AC/DC"}},
		{"Simon & Garfunkel", []string{"Simon & Garfunkel"}},
		{"Earth, Wind & Fire", []string{"Earth, Wind & Fire"}},
		{"A;B; C ;", []string{"A", "B", "C"}},
		{"A / B", []string{"A", "B"}},
		{"A feat. B", []string{"A", "B"}},
		{"A (feat. B & C)", []string{"A", "B & C"}},
		{"A [ft. B]", []string{"A", "B"}},
		{"A featuring B", []string{"A", "B"}},
		{"Feat", []string{"Feat"}},
		{"Daft Punk;Daft Punk", []string{"Daft Punk"}},
		{"Aftermath", []string{"Aftermath"}},
		{"Ft. Lauderdale Band", []string{"Ft. Lauderdale Band"}},
		{"A feat.", []string{"A feat."}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, SplitArtists(tt.in), "%q", tt.in)
	}
}

func TestTagsFrom(t *testing.T) {
	t.Parallel()
	got := tagsFrom(
		map[string]string{"TITLE": "Format title", "Artist": "X", "TRACK": "03 of 12", "YEAR": "c. 1999", "isrc": "bad"},
		map[string]string{"title": "Stream title", "ARTISTS": "Y;Z", "DISC": "2", "TOTALDISCS": "3"},
	)
	require.Equal(t, Tags{Title: "Format title", Artists: []string{"Y", "Z"}, TrackNumber: 3, TrackTotal: 12,
		DiscNumber: 2, DiscTotal: 3, Year: 1999}, got)
}

func TestParseLoudnorm(t *testing.T) {
	t.Parallel()
	const out = `[Parsed_loudnorm_0 @ 0x55] [info] 
{
	"input_i" : "%s",
	"input_tp" : "%s",
	"input_lra" : "0.00",
	"input_thresh" : "%s",
	"output_i" : "-18.03",
	"normalization_type" : "dynamic",
	"target_offset" : "0.03"
}
[aac @ 0x55] [info] Qavg: 143.077
`
	l, err := parseLoudnorm("noise\n" + fmt.Sprintf(out, "-19.05", "-15.44", "-29.05"))
	require.NoError(t, err)
	require.Equal(t, Loudness{IntegratedLUFS: -19.05, TruePeakDBTP: -15.44, ThresholdLUFS: -29.05, GainDB: 1.05}, l)

	l, err = parseLoudnorm(fmt.Sprintf(out, "-inf", "-inf", "-70.00"))
	require.NoError(t, err)
	require.Equal(t, Loudness{IntegratedLUFS: -70, TruePeakDBTP: -144, ThresholdLUFS: -70}, l)

	for _, bad := range []string{"", "{}", `"input_i" : "-1"`, fmt.Sprintf(out, "x", "-1", "-1"), fmt.Sprintf(out, "inf", "-1", "-1")} {
		_, err := parseLoudnorm(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestHeadTail(t *testing.T) {
	t.Parallel()
	var h headTail
	line := bytes.Repeat([]byte("x"), 1023)
	for range 1000 {
		h.Write(append(line, '\n'))
	}
	h.Write([]byte("the end\n"))
	s := h.String()
	require.Less(t, len(s), headMax+tailMax+100)
	require.True(t, strings.HasSuffix(s, "the end\n"))
	require.Contains(t, s, "bytes of stderr dropped")
}

func TestProblemLines(t *testing.T) {
	t.Parallel()
	var h headTail
	h.Write([]byte("[info] fine\n[warning] Guessed Channel Layout\n"))
	require.Empty(t, h.problems)
	// A problem in the middle of a long output, split across writes, is
	// kept although the middle of the text is dropped.
	filler := bytes.Repeat([]byte("[info] Opening 'seg.m4s' for writing\n"), 10000)
	h.Write(filler)
	h.Write([]byte("[flac @ 0x1] [err"))
	h.Write([]byte("or] invalid residual\n[info] ok\n[warning] x: corrupt input packet\n"))
	h.Write(filler)
	require.Equal(t, []string{"[flac @ 0x1] [error] invalid residual", "[warning] x: corrupt input packet"}, h.problems)
	require.NotContains(t, h.String(), "invalid residual")
	for range 5 {
		h.Write([]byte("[error] again\n"))
	}
	require.Len(t, h.problems, problemsMax+1)
	require.Equal(t, "…", h.problems[problemsMax])
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	inner := errors.New("exit status 1")
	err := fmt.Errorf("ingest: %w", newError(ReasonTruncated, inner, "decoded %s", "3s"))
	require.Equal(t, "ingest: media: truncated: decoded 3s: exit status 1", err.Error())
	require.ErrorIs(t, err, inner)
	require.Equal(t, ReasonTruncated, ReasonOf(err))
	require.Equal(t, Reason(""), ReasonOf(inner))
}

func TestMasterPlaylist(t *testing.T) {
	t.Parallel()
	got := masterPlaylist([]Rendition{
		{Kind: "aac64", Codec: aacCodec, Bandwidth: 70000, AverageBandwidth: 66000, Playlist: "aac64/index.m3u8"},
		{Kind: "flac", Codec: flacCodec, File: "flac/track.flac"},
	})
	require.Equal(t, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"+
		"#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=66000,CODECS=\"mp4a.40.2\"\naac64/index.m3u8\n", got)
}

// TestRepeatedVorbisComments checks a FLAC whose ARTIST comment is repeated
// (as MusicBrainz Picard and metaflac write several artists): ffmpeg
// cannot write that, so the test rewrites the comment block itself.
func TestRepeatedVorbisComments(t *testing.T) {
	t.Parallel()
	wav, _ := sourceFixtures(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.flac")
	ffmpeg(t, "-i", wav, "-t", "1", "-c:a", "flac", "-metadata", "title=x", in)
	setVorbisComments(t, in, "TITLE=Spring", "ARTIST=Кино", "ARTIST=AC/DC", "ARTIST=Simon & Garfunkel", "ALBUMARTIST=Various Artists")
	tags, err := New(Config{}).Tags(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, &Tags{Title: "Spring", Artists: []string{"Кино", "AC/DC", "Simon & Garfunkel"}, AlbumArtist: "Various Artists"}, tags)
}

// setVorbisComments replaces the VORBIS_COMMENT metadata block of a FLAC
// file with one holding comments.
func setVorbisComments(t *testing.T, path string, comments ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "fLaC", string(b[:4]))
	le32 := func(n int) []byte { return []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)} }
	var body []byte
	body = append(body, le32(len("test"))...)
	body = append(body, "test"...)
	body = append(body, le32(len(comments))...)
	for _, c := range comments {
		body = append(body, le32(len(c))...)
		body = append(body, c...)
	}
	out := []byte("fLaC")
	pos := 4
	for {
		hdr := b[pos]
		last := hdr&0x80 != 0
		size := int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
		block := b[pos : pos+4+size]
		if hdr&0x7F == 4 {
			block = append([]byte{hdr, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
		}
		out = append(out, block...)
		pos += 4 + size
		if last {
			break
		}
	}
	out = append(out, b[pos:]...)
	require.NoError(t, os.WriteFile(path, out, 0o644))
}
