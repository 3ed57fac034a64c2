// Package text checks strings that people will see: names and titles shown
// to other users (catalog artists, albums, tracks; account display names).
//
// A visible string must not carry characters that change how other text is
// shown or that cannot be seen: C0 and C1 controls (line breaks included),
// bidirectional overrides and isolates (the "Trojan Source" trick that shows
// a title reversed), zero-width and other format characters, line and
// paragraph separators, private-use, unassigned and non-characters, and
// invalid UTF-8. Ordinary letters, marks, digits, punctuation, symbols and
// spaces of every script pass.
package text

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// CheckVisible returns nil when every character of s may appear in a name,
// else an error naming the first one that may not (by code point, never by
// echoing it).
func CheckVisible(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("is not valid UTF-8 (at byte %d)", i)
			}
		}
		if why := invisible(r); why != "" {
			return fmt.Errorf("must not contain %U (%s)", r, why)
		}
	}
	return nil
}

// invisible says why r may not appear in a visible string, or "".
func invisible(r rune) string {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return "a line break or tab"
	case unicode.IsControl(r):
		return "a control character"
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return "a bidirectional control"
	case r == 0x2028 || r == 0x2029:
		return "a line or paragraph separator"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	case isNoncharacter(r):
		return "a non-character"
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
		return "an unassigned character"
	case r == 0x3164 || r == 0x115F || r == 0x1160 || r == 0xFFA0 || r == 0x2800:
		return "a blank letter"
	}
	return ""
}

func isNoncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
