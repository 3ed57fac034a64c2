// Command ingest is the audio-processing benchmark driver (hack/bench/ingest.sh
// runs it). It generates a 4-minute track with ffmpeg (a tone over pink noise
// with a slow tremolo, stereo 44.1 kHz, with a 1000×1000 JPEG cover), once as
// FLAC and once as a 320 kbit/s MP3, and times on the same file, alternately:
//
//   - media.Processor.Process: ffprobe, one decode pass for loudness, peaks,
//     the PCM hash, three AAC HLS renditions and (FLAC only) the FLAC
//     rendition, then one pass for the covers;
//   - the bare ffmpeg commands doing the same work the usual way, one command
//     per job, in sequence: ffprobe; loudnorm measurement; the three-variant
//     fMP4 HLS encode; the FLAC encode (FLAC only); the 8 kHz mono decode for
//     peaks; the cover resizes. That is the floor the pipeline is compared to.
//
// Wall time is measured around each side; CPU seconds are user+system of the
// child processes (getrusage RUSAGE_CHILDREN) plus this process's own, so
// the Go work (peaks reduction, playlists, JSON) is counted. Each side runs
// -runs times; the table gives the median of each figure. It prints a
// markdown section on stdout.
//
// Then (-e2e, e2e.go) the whole path in the same run: the embedded platform
// as make run starts it, the FLAC track PUT into the uploads bucket with a
// plain S3 client, wall from the PUT acknowledged to the upload record ready
// (published) and the process tree's CPU, beside the bare ffmpeg figures of
// the same file; and a batch of -batch distinct -batch-seconds tracks in
// audio seconds per wall second, beside the bare commands on the same files,
// runtime.NumCPU() at a time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/overture-music/overture/internal/media"
)

func main() {
	seconds := flag.Int("seconds", 240, "length of the generated track")
	runs := flag.Int("runs", 3, "runs of each side per input")
	e2e := flag.Bool("e2e", true, "also measure the pipeline end to end (PUT to ready) and a batch")
	batch := flag.Int("batch", 20, "tracks in the end-to-end batch")
	batchSeconds := flag.Int("batch-seconds", 30, "length of each batch track")
	flag.Parse()
	if err := run(*seconds, *runs, *e2e, *batch, *batchSeconds); err != nil {
		slog.Error("ingest bench", "err", err)
		os.Exit(1)
	}
}

type sample struct{ wall, cpu time.Duration }

func run(seconds, runs int, e2e bool, batch, batchSeconds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "overture-bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	inputs, err := generate(dir, seconds)
	if err != nil {
		return err
	}
	p := media.New(media.Config{})
	fmt.Printf("## Audio processing (internal/media, %d-second track)\n\n", seconds)
	fmt.Printf("Median of %d runs per side, run alternately on the same file. *Pipeline* is `media.Processor.Process` (ffprobe, one decode pass feeding loudnorm, the peaks reduction, the PCM hash, three AAC encoders muxed to fMP4 HLS and, for a lossless source, the FLAC encoder; then one pass for the covers). *Bare ffmpeg* is the same work as one command per job, in sequence: ffprobe, loudnorm measurement, the three-variant HLS encode, the FLAC encode (lossless only), the 8 kHz mono decode for peaks, the cover resizes. CPU is user+system seconds of the child processes plus the Go process.\n\n", runs)
	fmt.Println("| input | side | wall | CPU | audio s per wall s | wall vs bare | CPU vs bare |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	var notes []string
	var flacBare sample
	for _, in := range inputs {
		var pipe, bare []sample
		for i := range runs {
			out := filepath.Join(dir, fmt.Sprintf("out-%s-%d", in.name, i))
			s, err := measure(func() error {
				_, err := p.Process(ctx, in.path, out)
				return err
			})
			if err != nil {
				return fmt.Errorf("pipeline on %s: %w", in.name, err)
			}
			pipe = append(pipe, s)
			os.RemoveAll(out)

			out = filepath.Join(dir, fmt.Sprintf("bare-%s-%d", in.name, i))
			s, err = measure(func() error { return bareFFmpeg(ctx, in, out) })
			if err != nil {
				return fmt.Errorf("bare ffmpeg on %s: %w", in.name, err)
			}
			bare = append(bare, s)
			os.RemoveAll(out)
		}
		pm, bm := median(pipe), median(bare)
		if in.name == "flac" {
			flacBare = bm
		}
		fmt.Printf("| %s | pipeline | %.2f s | %.2f s | %.1f | %.2f | %.2f |\n", in.label, pm.wall.Seconds(), pm.cpu.Seconds(),
			float64(seconds)/pm.wall.Seconds(), pm.wall.Seconds()/bm.wall.Seconds(), pm.cpu.Seconds()/bm.cpu.Seconds())
		fmt.Printf("| %s | bare ffmpeg | %.2f s | %.2f s | %.1f | 1 | 1 |\n", in.label, bm.wall.Seconds(), bm.cpu.Seconds(),
			float64(seconds)/bm.wall.Seconds())
		verdict := "met"
		if pm.wall > bm.wall*110/100 {
			verdict = "missed"
		}
		notes = append(notes, fmt.Sprintf("- %s: pipeline overhead over bare ffmpeg %+.0f%% wall, %+.0f%% CPU; goal under +10%%: **%s**.",
			in.label, 100*(pm.wall.Seconds()/bm.wall.Seconds()-1), 100*(pm.cpu.Seconds()/bm.cpu.Seconds()-1), verdict))
	}
	fmt.Println()
	fmt.Println(strings.Join(notes, "\n"))
	if !e2e {
		return nil
	}
	return endToEnd(ctx, dir, inputs[0], seconds, flacBare, batch, batchSeconds)
}

type input struct{ name, label, path string }

// generate makes the benchmark's inputs with ffmpeg.
func generate(dir string, seconds int) ([]input, error) {
	cover := filepath.Join(dir, "cover.jpg")
	wav := filepath.Join(dir, "source.wav")
	d := fmt.Sprint(seconds)
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1000x1000:d=1", "-frames:v", "1", cover); err != nil {
		return nil, err
	}
	if err := ffmpeg("-f", "lavfi", "-i", "sine=f=220:d="+d, "-f", "lavfi", "-i", "anoisesrc=c=pink:a=0.1:d="+d,
		"-filter_complex", "[0][1]amerge=inputs=2,tremolo=f=0.5:d=0.6", "-ar", "44100", "-c:a", "pcm_s16le", wav); err != nil {
		return nil, err
	}
	ins := []input{
		{name: "flac", label: "FLAC 16-bit 44.1 kHz stereo + cover", path: filepath.Join(dir, "track.flac")},
		{name: "mp3", label: "MP3 320 kbit/s + cover", path: filepath.Join(dir, "track.mp3")},
	}
	tags := []string{"-metadata", "title=Benchmark", "-metadata", "artist=Overture"}
	common := append([]string{"-i", wav, "-i", cover, "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic"}, tags...)
	if err := ffmpeg(append(append(slices.Clone(common), "-c:a", "flac"), ins[0].path)...); err != nil {
		return nil, err
	}
	if err := ffmpeg(append(append(slices.Clone(common), "-c:a", "libmp3lame", "-b:a", "320k", "-id3v2_version", "3"), ins[1].path)...); err != nil {
		return nil, err
	}
	return ins, os.Remove(wav)
}

// bareFFmpeg does the pipeline's work as separate, ordinary ffmpeg commands.
func bareFFmpeg(ctx context.Context, in input, out string) error {
	if err := os.MkdirAll(filepath.Join(out, "cover"), 0o755); err != nil {
		return err
	}
	cmds := [][]string{
		{"ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", in.path},
		{"ffmpeg", "-i", in.path, "-map", "0:a:0", "-af", "loudnorm=I=-18:TP=-1:LRA=11:print_format=json", "-f", "null", "-"},
		{"ffmpeg", "-i", in.path, "-map", "0:a:0", "-map", "0:a:0", "-map", "0:a:0", "-c:a", "aac",
			"-b:a:0", "64k", "-b:a:1", "128k", "-b:a:2", "256k", "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod",
			"-hls_segment_type", "fmp4", "-master_pl_name", "master.m3u8",
			"-hls_segment_filename", filepath.Join(out, "%v", "seg_%03d.m4s"),
			"-var_stream_map", "a:0,name:aac64 a:1,name:aac128 a:2,name:aac256", filepath.Join(out, "%v", "index.m3u8")},
		{"ffmpeg", "-i", in.path, "-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le", "-"},
		{"ffmpeg", "-i", in.path, "-map", "0:v:0", "-filter_complex", "[0:v:0]split=3[a][b][c];[a]scale=64:64:force_original_aspect_ratio=decrease[o1];[b]scale=300:300:force_original_aspect_ratio=decrease[o2];[c]scale=600:600:force_original_aspect_ratio=decrease[o3]",
			"-map", "[o1]", "-frames:v", "1", "-update", "1", filepath.Join(out, "cover", "64.jpg"),
			"-map", "[o2]", "-frames:v", "1", "-update", "1", filepath.Join(out, "cover", "300.jpg"),
			"-map", "[o3]", "-frames:v", "1", "-update", "1", filepath.Join(out, "cover", "600.jpg")},
	}
	if in.name == "flac" {
		cmds = append(cmds, []string{"ffmpeg", "-i", in.path, "-map", "0:a:0", "-c:a", "flac", filepath.Join(out, "track.flac")})
	}
	for _, c := range cmds {
		args := c[1:]
		if c[0] == "ffmpeg" {
			args = append([]string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"}, args...)
		}
		cmd := exec.CommandContext(ctx, c[0], args...)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, stderr.String())
		}
	}
	return nil
}

func ffmpeg(args ...string) error {
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// measure runs f and returns its wall time and the CPU time of this process
// and of the children it waited for.
func measure(f func() error) (sample, error) {
	before := cpu()
	start := time.Now()
	err := f()
	return sample{wall: time.Since(start), cpu: cpu() - before}, err
}

func cpu() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

func median(s []sample) sample {
	walls := make([]time.Duration, len(s))
	cpus := make([]time.Duration, len(s))
	for i, x := range s {
		walls[i], cpus[i] = x.wall, x.cpu
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return sample{wall: walls[len(walls)/2], cpu: cpus[len(cpus)/2]}
}
