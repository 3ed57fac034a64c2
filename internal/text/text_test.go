package text_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/overture-music/overture/internal/text"
)

func TestCheckVisible(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{
		"Кино", "Группа крови", "Sigur Rós", "AC/DC", "Mötley Crüe", "坂本龍一", "عمرو دياب", "Beyoncé", "!!!", "50 Cent",
		"Guns N' Roses", "Ρεμπέτικο", "🎸 Rock & Roll", "e\u0301", // combining accent
	} {
		if err := text.CheckVisible(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for bad, mention := range map[string]string{
		"line\nbreak":        "U+000A",
		"tab\there":          "U+0009",
		"nul\x00":            "U+0000",
		"c1\u0085":           "U+0085",
		"evil\u202Egnp.exe":  "U+202E",
		"iso\u2066late":      "U+2066",
		"zero\u200Bwidth":    "U+200B",
		"joiner\u200Dx":      "U+200D",
		"bom\uFEFF":          "U+FEFF",
		"soft\u00ADhyphen":   "U+00AD",
		"sep\u2028":          "U+2028",
		"private\uE000":      "U+E000",
		"tag\U000E0041":      "U+E0041",
		"filler\u3164":       "U+3164",
		"bad utf8 \xff":      "UTF-8",
		"noncharacter\uFFFF": "U+FFFF",
	} {
		err := text.CheckVisible(bad)
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("%q: %v, want a refusal naming %s", bad, err, mention)
		}
	}
}

// FuzzCheckVisible: whatever is accepted is valid UTF-8 made only of
// letters, marks, numbers, punctuation, symbols and plain spaces; whatever is
// refused is refused with a message that does not echo the input.
func FuzzCheckVisible(f *testing.F) {
	for _, s := range []string{"Кино", "a\u202Eb", "x\u200By", "\xff", "tab\t", "🎸", "e\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := text.CheckVisible(s)
		if err != nil {
			if len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("the refusal echoes the input: %v", err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("accepted invalid UTF-8 %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || r == 0x2028 || r == 0x2029 ||
				!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) {
				t.Fatalf("accepted %U in %q", r, s)
			}
		}
	})
}
