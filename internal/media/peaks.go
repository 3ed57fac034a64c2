package media

import (
	"encoding/json"
	"fmt"
	"os"
)

// Peaks are computed from the decode pass's mono 8 kHz signed 16-bit copy of
// the audio: 8 kHz is plenty for a waveform drawn a few pixels per second,
// and it keeps the pipe to Go small (16 KB per second of audio).
const (
	peaksRate = 8000
	// peaksPerPixel gives 50 min/max pairs per second: a seek bar needs far
	// fewer, a zoomed peaks.js view about that many, and a 4-minute track
	// is 12,000 pairs.
	peaksPerPixel = 160
)

// peaksWriter reduces a little-endian s16 mono stream to 8-bit min/max pairs
// as it arrives, and counts the samples (the decoded duration).
type peaksWriter struct {
	perPixel int
	samples  int64
	odd      []byte // a sample split between two writes
	n        int    // samples in the current pixel
	lo, hi   int16
	data     []int8
}

func newPeaksWriter(perPixel int) *peaksWriter {
	return &peaksWriter{perPixel: perPixel}
}

func (w *peaksWriter) Write(b []byte) (int, error) {
	n := len(b)
	if len(w.odd) > 0 {
		b = append(w.odd, b...)
		w.odd = nil
	}
	for len(b) >= 2 {
		w.sample(int16(uint16(b[0]) | uint16(b[1])<<8))
		b = b[2:]
	}
	if len(b) == 1 {
		w.odd = []byte{b[0]}
	}
	return n, nil
}

func (w *peaksWriter) sample(s int16) {
	w.samples++
	if w.n == 0 || s < w.lo {
		w.lo = s
	}
	if w.n == 0 || s > w.hi {
		w.hi = s
	}
	w.n++
	if w.n == w.perPixel {
		w.flush()
	}
}

func (w *peaksWriter) flush() {
	if w.n == 0 {
		return
	}
	w.data = append(w.data, int8(w.lo>>8), int8(w.hi>>8))
	w.n = 0
}

// waveform is the audiowaveform JSON format, version 2, as peaks.js and
// wavesurfer.js read it: data holds min, max pairs per pixel, per channel.
type waveform struct {
	Version         int    `json:"version"`
	Channels        int    `json:"channels"`
	SampleRate      int    `json:"sample_rate"`
	SamplesPerPixel int    `json:"samples_per_pixel"`
	Bits            int    `json:"bits"`
	Length          int    `json:"length"`
	Data            []int8 `json:"data"`
}

// waveform finishes the last pixel and returns the JSON document.
func (w *peaksWriter) waveform() waveform {
	w.flush()
	data := w.data
	if data == nil {
		data = []int8{}
	}
	return waveform{
		Version: 2, Channels: 1, SampleRate: peaksRate, SamplesPerPixel: w.perPixel,
		Bits: 8, Length: len(data) / 2, Data: data,
	}
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
