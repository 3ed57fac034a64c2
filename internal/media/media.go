// Package media turns one uploaded audio file into everything Overture streams
// and shows for a track: what the file is (Probe), what it says about itself
// (Tags), how loud it is (Loudness), multi-bitrate fMP4 HLS renditions with a
// master playlist, a lossless FLAC download when the source is lossless,
// waveform peaks for the player's seek bar and resized cover art.
//
// It execs Debian's ffmpeg and ffprobe (5.1) rather than binding libav: the
// Go bindings need FFmpeg 7 or drag in unrelated SDKs, and a child process can
// be killed, timed out and bounded like any other job. Every run of either
// binary gets the caller's context, a per-run timeout, its own process group
// (cancellation kills the whole group) and a slot of a semaphore shared by the
// [Processor], so a machine never runs more ffmpeg processes than it has cores.
// A run's stderr is kept (head and tail, bounded) for the error detail.
//
// # Passes
//
// [Processor.Process] runs ffprobe once (format, streams and tags), then one
// ffmpeg pass that decodes the audio once and feeds it to loudnorm (EBU R128
// measurement only), the peaks reduction, a PCM hash and the AAC/FLAC
// encoders, then a small ffmpeg pass for the cover art when there is one.
// Decoding once instead of once per job is where the pipeline saves time over
// running the separate ffmpeg commands (see docs/bench/ingest.md).
//
// # Output layout
//
// Everything is written into a temporary directory beside outDir and renamed
// to outDir only when complete, so outDir either holds a whole result or does
// not exist; on any failure the temporary directory is removed. Paths are
// relative to outDir:
//
//	master.m3u8                  written by this package: one variant per AAC rendition,
//	                             CODECS, BANDWIDTH (peak segment bit rate) and
//	                             AVERAGE-BANDWIDTH measured from the segments
//	aac64/index.m3u8             fMP4 HLS VOD playlist, ~6 s segments
//	aac64/init_0.mp4             its initialisation section
//	aac64/seg_000.m4s ...        its media segments
//	aac128/... aac256/...        the same at 128 and 256 kbit/s
//	flac/track.flac              lossless download, only when the source is lossless
//	peaks.json                   audiowaveform JSON v2, 8-bit min/max pairs
//	cover/64.jpg cover/300.jpg cover/600.jpg  only when the file has embedded art
//
// # Loudness
//
// Loudness is measured, never applied: the renditions carry the source's level
// and players apply [Loudness.GainDB], a ReplayGain 2.0 style gain to a
// reference of -18 LUFS (the ReplayGain 2.0 reference; a player targeting
// -14 LUFS adds 4 dB).
package media

import (
	"runtime"
	"time"
)

// Config bounds what a [Processor] may spend. The zero value is usable.
type Config struct {
	// FFmpeg and FFprobe are the binaries to exec; default "ffmpeg" and
	// "ffprobe" from PATH.
	FFmpeg, FFprobe string
	// MaxDuration is the longest audio accepted (ReasonTooLong beyond it);
	// default 1 hour.
	MaxDuration time.Duration
	// Timeout bounds each single ffmpeg or ffprobe run once it has started
	// (waiting for a concurrency slot is not counted); exceeding it fails the
	// call with ReasonTimeout. Default 10 minutes. The caller's context bounds
	// the whole call.
	Timeout time.Duration
	// Concurrency is how many ffmpeg/ffprobe processes this Processor runs at
	// once; default runtime.NumCPU().
	Concurrency int
}

// Processor runs ffmpeg and ffprobe within its Config's bounds. It is safe for
// concurrent use; share one per process so the concurrency bound holds.
type Processor struct {
	cfg Config
	sem chan struct{}
	// onStart, when set (by tests), is called with the pid of every started
	// ffmpeg/ffprobe process.
	onStart func(name string, pid int)
}

// New returns a Processor with c's zero fields set to their defaults.
func New(c Config) *Processor {
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.FFprobe == "" {
		c.FFprobe = "ffprobe"
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = time.Hour
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.NumCPU()
	}
	return &Processor{cfg: c, sem: make(chan struct{}, c.Concurrency)}
}

// Probe describes the audio stream of a file, as ffprobe reports it.
type Probe struct {
	Container  string        `json:"container"`  // ffprobe format name, e.g. "mp3", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "ogg", "wav"
	Codec      string        `json:"codec"`      // ffprobe codec name of the audio stream, e.g. "mp3", "flac", "aac", "pcm_s16le", "vorbis", "opus", "alac"
	Duration   time.Duration `json:"duration"`   // from the container; in a Result, the decoded duration
	SampleRate int           `json:"sampleRate"` // Hz
	Channels   int           `json:"channels"`
	BitDepth   int           `json:"bitDepth"` // bits per sample of a lossless source, 0 for lossy codecs
	Bitrate    int           `json:"bitrate"`  // bits per second of the whole file, 0 when unknown
	Lossless   bool          `json:"lossless"` // flac, alac, wavpack or PCM: a FLAC rendition is made
}

// Tags is what the file says about itself. Empty strings and zero numbers mean
// the tag is absent.
type Tags struct {
	Title string `json:"title,omitempty"`
	// Artists are the track's artists in order, split by the rule of
	// [SplitArtists]; a separate "artists" tag wins over "artist".
	Artists     []string `json:"artists,omitempty"`
	Album       string   `json:"album,omitempty"`
	AlbumArtist string   `json:"albumArtist,omitempty"`
	TrackNumber int      `json:"trackNumber,omitempty"`
	TrackTotal  int      `json:"trackTotal,omitempty"`
	DiscNumber  int      `json:"discNumber,omitempty"`
	DiscTotal   int      `json:"discTotal,omitempty"`
	Year        int      `json:"year,omitempty"`
	Genre       string   `json:"genre,omitempty"`
	ISRC        string   `json:"isrc,omitempty"` // upper case, no hyphens
	Cover       *Picture `json:"cover,omitempty"`
}

// Picture is embedded cover art exactly as stored in the file.
type Picture struct {
	MIME string `json:"mime"` // "image/jpeg" or "image/png"
	Data []byte `json:"-"`
}

// Loudness is the EBU R128 measurement of the source, from ffmpeg's loudnorm
// filter in analysis mode. Silence has no integrated loudness: it is reported
// as -70 LUFS (the R128 absolute gate) and a true peak of -144 dBTP, with a
// GainDB of 0, so every field stays a finite number.
type Loudness struct {
	IntegratedLUFS float64 `json:"integratedLUFS"`
	RangeLU        float64 `json:"rangeLU"`
	TruePeakDBTP   float64 `json:"truePeakDBTP"`
	ThresholdLUFS  float64 `json:"thresholdLUFS"`
	// GainDB is ReferenceLUFS - IntegratedLUFS: the gain a player applies to
	// play the track at the ReplayGain 2.0 reference of -18 LUFS.
	GainDB float64 `json:"gainDB"`
}

// ReferenceLUFS is the loudness GainDB aims at (ReplayGain 2.0).
const ReferenceLUFS = -18.0

// Rendition is one playable or downloadable form of the track.
type Rendition struct {
	Kind  string `json:"kind"`  // "aac64", "aac128", "aac256" or "flac"
	Codec string `json:"codec"` // RFC 6381: "mp4a.40.2" (AAC-LC) or "fLaC"
	// Bitrate is the nominal bits per second of an AAC rendition and the
	// average of the FLAC file.
	Bitrate int `json:"bitrate"`
	// Bandwidth and AverageBandwidth are the peak and average segment bit
	// rates in bits per second, as written into master.m3u8 (0 for flac).
	Bandwidth        int  `json:"bandwidth,omitempty"`
	AverageBandwidth int  `json:"averageBandwidth,omitempty"`
	Premium          bool `json:"premium"` // aac256 and flac: premium listeners only
	// Playlist is the variant playlist (e.g. "aac128/index.m3u8"), "" for flac.
	Playlist string `json:"playlist,omitempty"`
	// File is the single file of a download rendition ("flac/track.flac"),
	// "" for HLS renditions.
	File string `json:"file,omitempty"`
}

// Cover is one resized copy of the embedded cover art, a JPEG that fits in a
// Size×Size box with the original aspect ratio kept.
type Cover struct {
	Size   int    `json:"size"` // 64, 300 or 600
	Width  int    `json:"width"`
	Height int    `json:"height"`
	File   string `json:"file"` // "cover/300.jpg"
}

// Result is everything Process produced; every path in it is relative to the
// outDir passed to Process.
type Result struct {
	Probe    Probe    `json:"probe"`
	Tags     Tags     `json:"tags"`
	Loudness Loudness `json:"loudness"`
	// ContentHash is "sha256:" and the hex SHA-256 of the decoded audio (the
	// first audio stream as 32-bit PCM at its own rate and channels), computed
	// in the same decode pass. Hashing the audio instead of the file
	// recognises the same recording uploaded again with edited tags or cover
	// art; it is stable for one ffmpeg build (decoders of lossy formats may
	// differ in the last bit between versions), which is what deduplication of
	// uploads needs.
	ContentHash string      `json:"contentHash"`
	Renditions  []Rendition `json:"renditions"`
	Master      string      `json:"master"` // "master.m3u8"
	Peaks       string      `json:"peaks"`  // "peaks.json"
	Covers      []Cover     `json:"covers,omitempty"`
	// Files is every file written, relative to outDir, sorted.
	Files []string `json:"files"`
}
