package media

import (
	"regexp"
	"strconv"
	"strings"
)

// tagsFrom reads Tags from ffprobe's format tags and the audio stream's tags
// (Ogg keeps its Vorbis comments on the stream). ffmpeg has already mapped
// ID3v2 frames, ID3v1, Vorbis comments and MP4 atoms to common lower-case
// keys (title, artist, album_artist, track, disc, date, genre) and joined
// repeated keys with ";"; keys are compared without case.
func tagsFrom(maps ...map[string]string) Tags {
	m := map[string]string{}
	for _, src := range maps {
		for k, v := range src {
			k = strings.ToLower(k)
			if _, seen := m[k]; !seen && strings.TrimSpace(v) != "" {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	get := func(keys ...string) string {
		for _, k := range keys {
			if v := m[k]; v != "" {
				return v
			}
		}
		return ""
	}
	var t Tags
	t.Title = get("title")
	t.Artists = SplitArtists(get("artists"))
	if len(t.Artists) == 0 {
		t.Artists = SplitArtists(get("artist"))
	}
	t.Album = get("album")
	t.AlbumArtist = get("album_artist", "albumartist", "album artist")
	t.TrackNumber, t.TrackTotal = numberOfTotal(get("track", "tracknumber"))
	if t.TrackTotal == 0 {
		t.TrackTotal = atoi(get("tracktotal", "totaltracks"))
	}
	t.DiscNumber, t.DiscTotal = numberOfTotal(get("disc", "discnumber"))
	if t.DiscTotal == 0 {
		t.DiscTotal = atoi(get("disctotal", "totaldiscs"))
	}
	t.Year = yearOf(get("date", "year", "tdrc", "tyer", "originaldate", "tdor"))
	t.Genre = get("genre")
	t.ISRC = normISRC(get("isrc", "tsrc"))
	return t
}

// numberOfTotal parses "3", "3/12" or "03 of 12".
func numberOfTotal(s string) (n, total int) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0
	}
	num, rest, _ := strings.Cut(s, "/")
	if i := strings.Index(num, " of "); i >= 0 {
		num, rest = num[:i], num[i+4:]
	}
	return atoi(num), atoi(rest)
}

var yearRE = regexp.MustCompile(`\b(1[0-9]{3}|2[0-9]{3})\b`)

// yearOf finds the year in "1988", "1988-05-01" or "1988-05-01T00:00:00Z".
func yearOf(s string) int {
	if m := yearRE.FindString(s); m != "" {
		y, _ := strconv.Atoi(m)
		return y
	}
	return 0
}

var isrcRE = regexp.MustCompile(`^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$`)

// normISRC returns s as a 12-character ISRC (upper case, no hyphens or
// spaces), or "" when it is not one: a malformed ISRC would match nothing
// and collide with nothing, so it is dropped rather than stored.
func normISRC(s string) string {
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "", "ISRC:", "").Replace(s))
	if !isrcRE.MatchString(s) {
		return ""
	}
	return s
}

var (
	spacedSlash = regexp.MustCompile(`\s+/\s+`)
	// featRE finds "feat.", "feat", "ft." or "featuring" as a word between
	// two names, with an optional opening bracket before it: "A feat. B",
	// "A (ft. B)". At the start of the value it is part of a name.
	featRE = regexp.MustCompile(`(?i)(?:\s+|\s*[(\[]\s*)(?:feat\.?|ft\.|featuring)\s+`)
)

// SplitArtists splits one artist tag value into the artists it names.
//
// The rule, chosen so that band names survive: split on ";" (ffmpeg joins
// repeated Vorbis comments and other repeated keys with it, and no
// artist name on MusicBrainz uses it), on "/" only with spaces around it
// ("AC/DC" and "Mr./Mrs." stay whole), and before "feat.", "ft." or
// "featuring" as a separate word (a bracket around the featured part is
// dropped). "&", "," and " and " never split: "Simon & Garfunkel" and "Earth,
// Wind & Fire" are one artist each. Names are trimmed; empty names and exact
// duplicates are dropped.
func SplitArtists(v string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	for _, part := range strings.Split(v, ";") {
		for _, part := range spacedSlash.Split(part, -1) {
			pieces := featRE.Split(part, -1)
			for i, piece := range pieces {
				if i > 0 {
					piece = trimClosing(piece)
				}
				add(piece)
			}
		}
	}
	return out
}

// trimClosing drops a closing bracket left over from "(feat. B)".
func trimClosing(s string) string {
	s = strings.TrimSpace(s)
	for _, pair := range [][2]string{{"(", ")"}, {"[", "]"}} {
		if strings.HasSuffix(s, pair[1]) && strings.Count(s, pair[0]) < strings.Count(s, pair[1]) {
			s = strings.TrimSpace(strings.TrimSuffix(s, pair[1]))
		}
	}
	return s
}
