package media

// SplitArtists splits one artist tag value into the artists it names.
//
// The rule, chosen so that band names survive: split on ";" (ffmpeg joins
// repeated Vorbis comments and ID3v2.4 multi-value frames with it, and no
// artist name on MusicBrainz uses it), on " / " only with spaces around the
// slash ("AC/DC" and "Mr./Mrs." stay whole), and before "feat.", "ft." or
// "featuring" as a separate word. "&", "," and " and " never split: "Simon &
// Garfunkel" and "Earth, Wind & Fire" are one artist each. Names are trimmed;
// empty names and exact duplicates are dropped.
func SplitArtists(v string) []string {
	return nil
}
