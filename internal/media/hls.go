package media

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// aacCodec is the RFC 6381 codec of ffmpeg's aac encoder output: AAC-LC
// (ffmpeg's native encoder makes nothing else).
const aacCodec = "mp4a.40.2"

// flacCodec is the RFC 6381 / ISO BMFF sample entry of FLAC.
const flacCodec = "fLaC"

// variants are the HLS renditions, lowest first: free listeners get up to
// aac128, premium listeners aac256 (and the FLAC download).
var variants = []struct {
	kind    string
	bitrate int
	premium bool
}{
	{"aac64", 64000, false},
	{"aac128", 128000, false},
	{"aac256", 256000, true},
}

// segmentRates reads a variant playlist ffmpeg wrote and returns its peak and
// average segment bit rates (bits per second, rounded up), from each
// segment's #EXTINF duration and size on disk. The initialisation section is
// not a media segment and is not counted (RFC 8216, 4.3.4.2).
func segmentRates(playlist string) (peak, avg int, err error) {
	f, err := os.Open(playlist)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	dir := filepath.Dir(playlist)
	var total, totalDur float64
	dur := -1.0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			dur, err = strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %q: %w", playlist, line, err)
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			if dur <= 0 {
				return 0, 0, fmt.Errorf("%s: segment %s without a duration", playlist, line)
			}
			fi, err := os.Stat(filepath.Join(dir, line))
			if err != nil {
				return 0, 0, err
			}
			bits := float64(fi.Size()) * 8
			peak = max(peak, int(math.Ceil(bits/dur)))
			total += bits
			totalDur += dur
			dur = -1
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if totalDur == 0 {
		return 0, 0, fmt.Errorf("%s has no segments", playlist)
	}
	return peak, int(math.Ceil(total / totalDur)), nil
}

// masterPlaylist renders master.m3u8 for the HLS renditions. ffmpeg's own
// master omits AVERAGE-BANDWIDTH and, for some codecs, CODECS; Overture's
// knows both. Every AAC segment starts with a sync frame, hence
// EXT-X-INDEPENDENT-SEGMENTS.
func masterPlaylist(rs []Rendition) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, r := range rs {
		if r.Playlist == "" {
			continue
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\"\n%s\n",
			r.Bandwidth, r.AverageBandwidth, r.Codec, r.Playlist)
	}
	return b.String()
}
