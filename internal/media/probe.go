package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// ffprobeOutput is the part of `ffprobe -show_format -show_streams -of json`
// this package reads. Numbers that ffprobe prints as strings stay strings
// here and are parsed leniently: a missing or odd field must not fail a file
// that decodes.
type ffprobeOutput struct {
	Streams []ffprobeStream `json:"streams"`
	Format  struct {
		FormatName string            `json:"format_name"`
		Duration   string            `json:"duration"`
		BitRate    string            `json:"bit_rate"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
}

type ffprobeStream struct {
	Index            int    `json:"index"`
	CodecName        string `json:"codec_name"`
	CodecType        string `json:"codec_type"`
	SampleRate       string `json:"sample_rate"`
	Channels         int    `json:"channels"`
	BitsPerSample    int    `json:"bits_per_sample"`
	BitsPerRawSample string `json:"bits_per_raw_sample"`
	Duration         string `json:"duration"`
	Width            int    `json:"width"`
	Height           int    `json:"height"`
	Disposition      struct {
		AttachedPic int `json:"attached_pic"`
	} `json:"disposition"`
	Tags map[string]string `json:"tags"`
}

// probed is one ffprobe run, interpreted: the Probe, the tags, and which
// streams hold the audio and the cover.
type probed struct {
	probe Probe
	tags  Tags
	audio int // stream index of the first audio stream
	pic   int // stream index of the attached picture, -1 when none
	picW  int
	picH  int
}

// acceptedCodecs are the audio codecs Overture ingests, true for lossless
// ones. Others that ffmpeg decodes (ADPCM, telephony codecs, DSD, WMA, AMR…)
// are refused as unsupported: nobody uploads music in them on purpose, and a
// lossy telephony codec transcoded to AAC would publish poor audio silently.
var acceptedCodecs = map[string]bool{
	"mp3": false, "mp2": false, "aac": false, "vorbis": false, "opus": false,
	"flac": true, "alac": true, "wavpack": true,
	"pcm_s16le": true, "pcm_s16be": true, "pcm_s24le": true, "pcm_s24be": true,
	"pcm_s32le": true, "pcm_s32be": true, "pcm_u8": true, "pcm_s8": true,
	"pcm_f32le": true, "pcm_f32be": true, "pcm_f64le": true, "pcm_f64be": true,
}

// parseProbe decodes ffprobe's JSON output.
func parseProbe(data []byte) (*ffprobeOutput, error) {
	var out ffprobeOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decoding ffprobe output: %w", err)
	}
	return &out, nil
}

// interpret picks the audio and picture streams of out and describes them;
// a file without an accepted audio stream is an *Error.
func interpret(out *ffprobeOutput) (*probed, error) {
	pr := &probed{audio: -1, pic: -1}
	var audio *ffprobeStream
	var video []string
	for i := range out.Streams {
		s := &out.Streams[i]
		switch s.CodecType {
		case "audio":
			if audio == nil {
				audio = s
			}
		case "video":
			if s.Disposition.AttachedPic == 1 {
				if pr.pic < 0 {
					pr.pic, pr.picW, pr.picH = s.Index, s.Width, s.Height
				}
			} else {
				video = append(video, s.CodecName)
			}
		}
	}
	format := out.Format.FormatName
	if audio == nil {
		if len(video) > 0 && !isImageFormat(format) {
			return nil, newError(ReasonUnsupportedCodec, nil, "no audio stream (video %s only)", strings.Join(video, ", "))
		}
		if format == "" {
			return nil, newError(ReasonNotAudio, nil, "no streams")
		}
		return nil, newError(ReasonNotAudio, nil, "%s has no audio stream", format)
	}
	lossless, ok := acceptedCodecs[audio.CodecName]
	if !ok {
		return nil, newError(ReasonUnsupportedCodec, nil, "audio codec %q is not accepted", audio.CodecName)
	}
	pr.audio = audio.Index
	d := parseSeconds(audio.Duration)
	if d <= 0 {
		d = parseSeconds(out.Format.Duration)
	}
	bitDepth := 0
	if lossless {
		bitDepth = atoi(audio.BitsPerRawSample)
		if bitDepth == 0 {
			bitDepth = audio.BitsPerSample
		}
	}
	pr.probe = Probe{
		Container:  format,
		Codec:      audio.CodecName,
		Duration:   d,
		SampleRate: atoi(audio.SampleRate),
		Channels:   audio.Channels,
		BitDepth:   bitDepth,
		Bitrate:    atoi(out.Format.BitRate),
		Lossless:   lossless,
	}
	pr.tags = tagsFrom(out.Format.Tags, audio.Tags)
	return pr, nil
}

// isImageFormat reports whether ffprobe's format name is a still picture or
// text (the tty demuxer takes .txt files): not audio, rather than a video
// with an unsupported codec.
func isImageFormat(f string) bool {
	return strings.HasSuffix(f, "_pipe") || f == "image2" || f == "tty" || f == "gif" || f == "webp"
}

// parseSeconds parses ffprobe's "123.456000"; anything else is 0.
func parseSeconds(s string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1e9 {
		return 0
	}
	return time.Duration(math.Round(f * float64(time.Second)))
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// probeFile runs ffprobe on path and interprets its answer.
func (p *Processor) probeFile(ctx context.Context, path string) (*probed, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if fi.Size() == 0 {
		return nil, newError(ReasonEmpty, nil, "%s is 0 bytes", path)
	}
	var stdout bytes.Buffer
	out, err := p.run(ctx, p.cfg.FFprobe, []string{
		"-hide_banner", "-v", "error", "-show_format", "-show_streams", "-of", "json", "file:" + path,
	}, &stdout)
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			return nil, err
		}
		if ee.signaled() {
			return nil, newError(ReasonFFmpegFailed, err, "ffprobe crashed")
		}
		// ffprobe refuses the file. If it starts like an audio container it
		// is a damaged one (an MP4 cut before its moov atom, a FLAC without
		// frames); otherwise it is not audio at all.
		if looksLikeAudio(path) {
			return nil, newError(ReasonTruncated, nil, "%s", lastLines(out.stderr, 2))
		}
		return nil, newError(ReasonNotAudio, nil, "%s", lastLines(out.stderr, 2))
	}
	parsed, err := parseProbe(stdout.Bytes())
	if err != nil {
		return nil, newError(ReasonFFmpegFailed, err, "ffprobe output")
	}
	return interpret(parsed)
}

// looksLikeAudio reports whether path begins with the signature of an audio
// container this package accepts.
func looksLikeAudio(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [12]byte
	n, _ := f.Read(b[:])
	return sniffAudio(b[:n])
}

func sniffAudio(b []byte) bool {
	switch {
	case bytes.HasPrefix(b, []byte("ID3")), bytes.HasPrefix(b, []byte("fLaC")),
		bytes.HasPrefix(b, []byte("OggS")), bytes.HasPrefix(b, []byte("wvpk")):
		return true
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WAVE")):
		return true
	case len(b) >= 8 && bytes.Equal(b[4:8], []byte("ftyp")):
		return true
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0: // MPEG audio frame sync
		return true
	}
	return false
}
