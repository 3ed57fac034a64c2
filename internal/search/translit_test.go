package search

import (
	"strings"
	"testing"
	"unicode"
)

func TestTranslit(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Кино", "kino"},
		{"Земфира", "zemfira"},
		{"Zemfira", "zemfira"},
		{"Цой", "coi"},
		{"Tsoi", "coi"},
		{"Tsoy", "coi"},
		{"Жуки", "zhuki"},
		{"Ёлка", "elka"},
		{"Yolka", "elka"},
		{"Щедрин", "schedrin"},
		{"Shchedrin", "schedrin"},
		{"Есенин", "esenin"},
		{"Yesenin", "esenin"},
		{"Хаски", "haski"},
		{"Khaski", "haski"},
		{"Beyoncé", "beence"},
		{"AC/DC — Back in Black!", "ac dc bak in blak"},
		{"Мумий Тролль", "mumii troll"},
		{"Mumiy Troll", "mumii troll"},
		{"Mumij Troll", "mumii troll"},
		{"Бейонсе", "beionse"},
	}
	for _, c := range cases {
		if got := Translit(c.in); got != c.want {
			t.Errorf("Translit(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTerms(t *testing.T) {
	got := Terms("Группа кр")
	if len(got) != 2 || got[0].Key != "gruppa" || got[0].IsPrefix || got[0].Fuzzy != 2 || got[1].Key != "kr" || !got[1].IsPrefix || got[1].Fuzzy != 0 {
		t.Fatalf("Terms = %+v", got)
	}
	if got := Terms("kino "); len(got) != 1 || got[0].IsPrefix {
		t.Fatalf("a finished word is not a prefix: %+v", got)
	}
}

// FuzzTranslit checks that any input becomes plain lower-case words without
// Cyrillic letters or punctuation, so both backends index the same tokens.
func FuzzTranslit(f *testing.F) {
	for _, s := range []string{"Кино", "Zemfira", "Ёжик в тумане", "AC/DC", "щщщ", "  ", "Ǆemal", "ß"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Translit(s)
		if out != strings.TrimSpace(out) || strings.Contains(out, "  ") {
			t.Fatalf("Translit(%q) = %q: untrimmed or double spaces", s, out)
		}
		for _, r := range out {
			if unicode.Is(unicode.Cyrillic, r) || unicode.IsUpper(r) || (r != ' ' && !unicode.IsLetter(r) && !unicode.IsDigit(r)) {
				t.Fatalf("Translit(%q) = %q: contains %q", s, out, r)
			}
		}
	})
}
