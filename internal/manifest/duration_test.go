package manifest

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in   string
		want time.Duration
	}{
		{"PT0.2S", 200 * time.Millisecond},
		{"PT1S", time.Second},
		{"PT1M30S", 90 * time.Second},
		{"PT1H", time.Hour},
		{"P1D", 24 * time.Hour},
		{"P1DT2H", 26 * time.Hour},
		{"P2W", 14 * 24 * time.Hour},
		{"PT0,5S", 500 * time.Millisecond},
		{"PT1.5M", 90 * time.Second},
		{"PT0S", 0},
		{"PT10M0.001S", 10*time.Minute + time.Millisecond},
	}
	for _, c := range ok {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []string{"", "P", "PT", "0.2S", "PT0.2", "P1Y", "P1M", "PT1S1M", "PT1H1H", "PT.5S", "PT5.S", "PT1.5M2S", "P1H", "PTS", "-PT1S", "PT1ST", "P1DT", "PT1X", "PT1e3S", "PT99999999999999999999H"}
	for _, in := range bad {
		if d, err := ParseDuration(in); err == nil || !errors.Is(err, ErrDuration) {
			t.Errorf("ParseDuration(%q) = %v, %v; want an ErrDuration", in, d, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT0.2S", "P1DT2H3M4.5S", "P2W", "PT", "P1Y", "PT1,5S", "PT9999999999H"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !errors.Is(err, ErrDuration) {
				t.Fatalf("error %v does not wrap ErrDuration", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		// A duration that parsed is stable: re-encoding it in seconds parses
		// back to (nearly) the same value.
		sec := d.Seconds()
		if sec < 1e9 {
			again, err := ParseDuration("PT" + formatSeconds(sec) + "S")
			if err != nil {
				t.Fatalf("re-parse of %q (%v): %v", s, d, err)
			}
			if diff := again - d; diff > time.Microsecond || diff < -time.Microsecond {
				t.Fatalf("re-parse of %q: %v != %v", s, again, d)
			}
		}
	})
}
