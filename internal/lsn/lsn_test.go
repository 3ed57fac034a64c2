package lsn

import (
	"errors"
	"testing"
)

func TestParseToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"0", 0, false},
		{"23876544", 23876544, false},
		{" 18446744073709551615 ", 18446744073709551615, false},
		{"16/B374D848", 0x16_B374D848, false},
		{"0/0", 0, false},
		{"", 0, true},
		{"-1", 0, true},
		{"abc", 0, true},
		{"18446744073709551616", 0, true},
		{"/12", 0, true},
		{"1/", 0, true},
		{"1FFFFFFFF/0", 0, true},
	} {
		got, err := ParseToken(tc.in)
		if tc.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseToken(%q) error = %v, want ErrInvalid", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseToken(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(0))
	f.Add(uint64(0x16_B374D848))
	f.Fuzz(func(t *testing.T, v uint64) {
		got, err := ParseToken(FormatToken(v))
		if err != nil || got != v {
			t.Fatalf("round trip %d: %d, %v", v, got, err)
		}
		got, err = ParseToken(String(v))
		if err != nil || got != v {
			t.Fatalf("round trip %s: %d, %v", String(v), got, err)
		}
	})
}
