package search

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// cyrLatin maps Russian (and common Ukrainian/Belarusian) letters to a
// Latin spelling close to how listeners type names on a Latin keyboard.
var cyrLatin = map[rune]string{
	'а': "a", 'б': "b", 'в': "v", 'г': "g", 'д': "d", 'е': "e", 'ё': "e", 'ж': "zh",
	'з': "z", 'и': "i", 'й': "i", 'к': "k", 'л': "l", 'м': "m", 'н': "n", 'о': "o",
	'п': "p", 'р': "r", 'с': "s", 'т': "t", 'у': "u", 'ф': "f", 'х': "h", 'ц': "c",
	'ч': "ch", 'ш': "sh", 'щ': "sch", 'ъ': "", 'ы': "i", 'ь': "", 'э': "e", 'ю': "yu",
	'я': "ya", 'і': "i", 'ї': "i", 'є': "e", 'ґ': "g", 'ў': "u",
}

// latinFold rewrites Latin spellings that transliteration systems disagree on
// to one form, applied after cyrLatin and to Latin input alike, so «Цой»,
// "Tsoi" and "Tsoy" all become "coi", «Жуки» and "Zhuki" "zhuki".
var latinFold = strings.NewReplacer(
	"tsch", "ch", "shch", "sch", "tch", "ch",
	"ts", "c", "tz", "c", "kh", "h", "ph", "f", "ck", "k", "qu", "kv",
	"ja", "ya", "ju", "yu", "jo", "e", "yo", "e", "ye", "e",
	"x", "ks", "w", "v", "q", "k", "j", "i",
)

// Translit returns the transliteration key of s: lower-case Latin letters and
// digits, Cyrillic transliterated, diacritics stripped, spelling variants
// folded. Both the indexed text and every query token go through it, which
// is how `kino` finds «Кино» and `земфира` finds "Zemfira" on every backend.
func Translit(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// combining mark left by NFD: drop (é → e, й → и handled below)
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case unicode.Is(unicode.Cyrillic, r):
			b.WriteString(cyrLatin[r])
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
	}
	out := latinFold.Replace(b.String())
	// "y" is "ы", "й" or a vowel-ish "i" depending on who spelled it; fold
	// the remaining ones (not the "ya"/"yu" digraphs) to "i".
	out = foldY(out)
	return strings.Join(strings.Fields(out), " ")
}

func foldY(s string) string {
	if !strings.Contains(s, "y") {
		return s
	}
	rs := []byte(s)
	for i := range rs {
		if rs[i] != 'y' {
			continue
		}
		if i+1 < len(rs) && (rs[i+1] == 'a' || rs[i+1] == 'u') {
			continue
		}
		rs[i] = 'i'
	}
	return string(rs)
}

// Tokens splits a query into lower-case words (letters and digits).
func Tokens(q string) []string {
	return strings.FieldsFunc(strings.ToLower(q), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Fuzziness is the edit distance allowed for a token of n letters, as
// OpenSearch's AUTO and Bleve's auto fuzziness: 0 up to 2, 1 up to 5, else 2.
func Fuzziness(n int) int {
	switch {
	case n <= 2:
		return 0
	case n <= 5:
		return 1
	default:
		return 2
	}
}

// QueryTerm is one word of a query as both backends search it.
type QueryTerm struct {
	Word     string // lower-cased as typed, for the stemmed en/ru fields
	Key      string // Translit(Word), for the transliterated field
	Fuzzy    int    // edits allowed on Key
	IsPrefix bool   // the last word: the listener may still be typing it
}

// Terms turns q into the per-word clauses both backends build their query
// from: every word must match (stemmed, transliterated, fuzzy or — for the
// last one — as a prefix).
func Terms(q string) []QueryTerm {
	words := Tokens(q)
	var out []QueryTerm
	for i, w := range words {
		key := strings.ReplaceAll(Translit(w), " ", "")
		if key == "" {
			continue
		}
		out = append(out, QueryTerm{
			Word: w, Key: key, Fuzzy: Fuzziness(len([]rune(key))),
			IsPrefix: i == len(words)-1 && !strings.HasSuffix(q, " "),
		})
	}
	return out
}

// SearchText is the text a track is found by: its title, album title, artist
// names and genre name.
func (t Track) SearchText() string {
	parts := []string{t.Title}
	if t.Album != nil {
		parts = append(parts, t.Album.Title)
	}
	for _, a := range t.Artists {
		parts = append(parts, a.Name)
	}
	if t.Genre != nil {
		parts = append(parts, t.Genre.Name)
	}
	return strings.Join(parts, " ")
}
