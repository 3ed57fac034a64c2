package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // cover sizes
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Probe runs ffprobe on path and describes its first audio stream. A file
// that is not audio or has an unsupported codec fails with an *Error.
func (p *Processor) Probe(ctx context.Context, path string) (*Probe, error) {
	pr, err := p.probeFile(ctx, path)
	if err != nil {
		return nil, err
	}
	return &pr.probe, nil
}

// Tags reads path's tags and its embedded cover art (one ffprobe run, plus an
// ffmpeg run to copy the picture out when there is one).
func (p *Processor) Tags(ctx context.Context, path string) (*Tags, error) {
	pr, err := p.probeFile(ctx, path)
	if err != nil {
		return nil, err
	}
	if pr.pic >= 0 {
		pic, err := p.covers(ctx, path, pr, "")
		if err != nil {
			return nil, err
		}
		pr.tags.Cover = pic
	}
	return &pr.tags, nil
}

// Process probes, tags, measures and transcodes path into outDir (see the
// package doc for the layout). outDir must not exist or be empty; its parent
// must exist. On error outDir is left as it was and nothing else remains.
//
// Errors caused by the input or by ffmpeg are *Error with a Reason; a
// cancelled or expired ctx returns an error wrapping ctx.Err().
func (p *Processor) Process(ctx context.Context, path, outDir string) (res *Result, err error) {
	outDir = filepath.Clean(outDir)
	if entries, err := os.ReadDir(outDir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("media: output directory %s is not empty", outDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("media: %w", err)
	}
	pr, err := p.probeFile(ctx, path)
	if err != nil {
		return nil, err
	}
	if pr.probe.Duration > p.cfg.MaxDuration {
		return nil, newError(ReasonTooLong, nil, "%s is longer than the %s allowed", pr.probe.Duration.Round(time.Second), p.cfg.MaxDuration)
	}

	tmp, err := os.MkdirTemp(filepath.Dir(outDir), "."+filepath.Base(outDir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	res = &Result{Probe: pr.probe, Tags: pr.tags, Master: "master.m3u8", Peaks: "peaks.json"}
	if err := p.transcode(ctx, path, tmp, pr, res); err != nil {
		return nil, err
	}
	if pr.pic >= 0 {
		pic, err := p.covers(ctx, path, pr, tmp)
		if err != nil {
			return nil, err
		}
		res.Tags.Cover = pic
		for _, size := range coverSizes {
			c := Cover{Size: size, File: fmt.Sprintf("cover/%d.jpg", size)}
			if c.Width, c.Height, err = imageSize(filepath.Join(tmp, c.File)); err != nil {
				return nil, newError(ReasonFFmpegFailed, err, "cover %s", c.File)
			}
			res.Covers = append(res.Covers, c)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, res.Master), []byte(masterPlaylist(res.Renditions)), 0o644); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if res.Files, err = listFiles(tmp); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	// The last step: an empty outDir is replaced, a missing one created.
	if err := os.Rename(tmp, outDir); err != nil {
		return nil, fmt.Errorf("media: moving the result into place: %w", err)
	}
	return res, nil
}

// transcode is the one decode pass: loudness, peaks, PCM hash, the three AAC
// HLS renditions and, for a lossless source, the FLAC file, all fed from a
// single decoder.
func (p *Processor) transcode(ctx context.Context, path, dir string, pr *probed, res *Result) error {
	in := fmt.Sprintf("0:%d", pr.audio)
	hashFile := filepath.Join(dir, ".pcm.sha256")
	args := []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "repeat+level+info", "-y",
		// A file whose header lies about its length is still cut at the limit.
		"-t", strconv.FormatFloat((p.cfg.MaxDuration + time.Second).Seconds(), 'f', 3, 64),
		// Decoders skip checksums unless asked: without this a FLAC with
		// damaged frames often decodes "cleanly" into garbage.
		"-err_detect", "crccheck",
		"-i", "file:" + path,
		"-filter_complex", fmt.Sprintf(
			"[%s]asplit=3[l][p][h];[l]%s,anullsink;[p]aresample=%d,aformat=sample_fmts=s16:channel_layouts=mono[pk]",
			in, loudnormArgs, peaksRate),
		"-map", "[pk]", "-f", "s16le", "pipe:1",
		"-map", "[h]", "-c:a", "pcm_s32le", "-f", "hash", "-hash", "sha256", "file:" + hashFile,
	}
	// HLS: three encodes of the same decoded audio, one muxer.
	var streamMap []string
	for i, v := range variants {
		args = append(args, "-map", in)
		args = append(args, fmt.Sprintf("-b:a:%d", i), strconv.Itoa(v.bitrate/1000)+"k")
		streamMap = append(streamMap, fmt.Sprintf("a:%d,name:%s", i, v.kind))
	}
	args = append(args, "-c:a", "aac")
	if pr.probe.Channels > 2 {
		args = append(args, "-ac", "2")
	}
	if pr.probe.SampleRate > 48000 {
		args = append(args, "-ar", "48000")
	}
	args = append(args, "-map_metadata", "-1",
		"-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
		"-hls_segment_filename", filepath.Join(dir, "%v", "seg_%03d.m4s"),
		"-var_stream_map", strings.Join(streamMap, " "),
		filepath.Join(dir, "%v", "index.m3u8"))
	flacFile := "flac/track.flac"
	if pr.probe.Lossless {
		if err := os.Mkdir(filepath.Join(dir, "flac"), 0o755); err != nil {
			return fmt.Errorf("media: %w", err)
		}
		args = append(args, "-map", in, "-c:a", "flac", "file:"+filepath.Join(dir, flacFile))
	}

	peaks := newPeaksWriter(peaksPerPixel)
	out, err := p.run(ctx, p.cfg.FFmpeg, args, peaks)
	if err != nil {
		return ffmpegError(err, out)
	}
	stderr := out.stderr
	decoded := time.Duration(peaks.samples) * time.Second / peaksRate
	if len(out.problems) > 0 {
		return newError(ReasonTruncated, nil, "decoding failed: %s", strings.Join(out.problems, " | "))
	}
	if decoded == 0 {
		return newError(ReasonTruncated, nil, "no audio decoded")
	}
	if want := pr.probe.Duration; want > 0 && decoded < want-max(time.Second, want/50) {
		return newError(ReasonTruncated, nil, "decoded %s of the %s the file declares", decoded.Round(time.Millisecond), want.Round(time.Millisecond))
	}
	if decoded > p.cfg.MaxDuration {
		return newError(ReasonTooLong, nil, "decodes to more than the %s allowed", p.cfg.MaxDuration)
	}
	res.Probe.Duration = decoded

	if res.Loudness, err = parseLoudnorm(stderr); err != nil {
		return newError(ReasonFFmpegFailed, err, "%s", lastLines(stderr, 3))
	}
	if res.ContentHash, err = readHash(hashFile); err != nil {
		return newError(ReasonFFmpegFailed, err, "content hash")
	}
	if err := os.Remove(hashFile); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, res.Peaks), peaks.waveform()); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	for _, v := range variants {
		r := Rendition{Kind: v.kind, Codec: aacCodec, Bitrate: v.bitrate, Premium: v.premium, Playlist: v.kind + "/index.m3u8"}
		if r.Bandwidth, r.AverageBandwidth, err = segmentRates(filepath.Join(dir, r.Playlist)); err != nil {
			return newError(ReasonFFmpegFailed, err, "reading the %s playlist", v.kind)
		}
		res.Renditions = append(res.Renditions, r)
	}
	if pr.probe.Lossless {
		fi, err := os.Stat(filepath.Join(dir, flacFile))
		if err != nil {
			return newError(ReasonFFmpegFailed, err, "FLAC rendition")
		}
		res.Renditions = append(res.Renditions, Rendition{
			Kind: "flac", Codec: flacCodec, Premium: true, File: flacFile,
			Bitrate: int(float64(fi.Size()*8) / decoded.Seconds()),
		})
	}
	return nil
}

// ffmpegError turns a failed run into the *Error callers see; cancellation
// and timeouts pass through as run returned them.
func ffmpegError(err error, out output) error {
	var ee *exitError
	if !errors.As(err, &ee) {
		return err
	}
	if ee.signaled() {
		return newError(ReasonFFmpegFailed, err, "ffmpeg crashed")
	}
	if len(out.problems) > 0 {
		return newError(ReasonTruncated, err, "decoding failed: %s", strings.Join(out.problems, " | "))
	}
	return newError(ReasonFFmpegFailed, err, "")
}

// readHash reads the "SHA256=<hex>" line of ffmpeg's hash muxer.
func readHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "SHA256=")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("unexpected hash output %q", b)
	}
	return "sha256:" + h, nil
}

// coverSizes are the boxes cover art is fitted into: a list row, a page, a
// retina page.
var coverSizes = []int{64, 300, 600}

// covers runs one ffmpeg over the attached picture: it copies the original
// out through stdout and, when dir is not "", writes the resized JPEGs into
// dir/cover.
func (p *Processor) covers(ctx context.Context, path string, pr *probed, dir string) (*Picture, error) {
	in := fmt.Sprintf("0:%d", pr.pic)
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y", "-i", "file:" + path}
	if dir != "" {
		if err := os.Mkdir(filepath.Join(dir, "cover"), 0o755); err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		var fc strings.Builder
		fmt.Fprintf(&fc, "[%s]split=%d", in, len(coverSizes))
		for i := range coverSizes {
			fmt.Fprintf(&fc, "[c%d]", i)
		}
		for i, size := range coverSizes {
			fmt.Fprintf(&fc, ";[c%d]scale=w=%d:h=%d:force_original_aspect_ratio=decrease[o%d]", i, size, size, i)
		}
		args = append(args, "-filter_complex", fc.String())
		for i, size := range coverSizes {
			args = append(args, "-map", fmt.Sprintf("[o%d]", i), "-frames:v", "1", "-q:v", "3", "-update", "1",
				"file:"+filepath.Join(dir, "cover", fmt.Sprintf("%d.jpg", size)))
		}
	}
	args = append(args, "-map", in, "-c", "copy", "-frames:v", "1", "-f", "image2pipe", "pipe:1")
	var out bytes.Buffer
	res, err := p.run(ctx, p.cfg.FFmpeg, args, &out)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return nil, newError(ReasonFFmpegFailed, err, "cover art: %s", lastLines(res.stderr, 3))
		}
		return nil, err
	}
	return &Picture{MIME: pictureMIME(out.Bytes()), Data: out.Bytes()}, nil
}

// pictureMIME names the image format from its signature.
func pictureMIME(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "image/gif"
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return "image/webp"
	case bytes.HasPrefix(b, []byte("BM")):
		return "image/bmp"
	}
	return "application/octet-stream"
}

func imageSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	c, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, err
	}
	return c.Width, c.Height, nil
}

// listFiles returns every regular file under dir, relative and sorted.
func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(files)
	return files, err
}
