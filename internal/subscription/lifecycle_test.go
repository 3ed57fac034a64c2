package subscription

import (
	"errors"
	"testing"
	"time"
)

// Every pair of statuses: the lifecycle allows exactly these moves.
func TestTransitionTable(t *testing.T) {
	t.Parallel()
	all := []string{StatusPending, StatusActive, StatusPastDue, StatusCanceled, StatusExpired, StatusFailed}
	allowed := map[[2]string]bool{
		{StatusPending, StatusActive}: true, {StatusPending, StatusFailed}: true,
		{StatusActive, StatusActive}: true, {StatusActive, StatusPastDue}: true, {StatusActive, StatusCanceled}: true,
		{StatusPastDue, StatusActive}: true, {StatusPastDue, StatusPastDue}: true, {StatusPastDue, StatusCanceled}: true,
		{StatusCanceled, StatusCanceled}: true, {StatusCanceled, StatusExpired}: true,
	}
	for _, from := range all {
		for _, to := range all {
			err := Transition(from, to)
			var illegal *ErrIllegalTransition
			switch {
			case allowed[[2]string{from, to}] && err != nil:
				t.Errorf("%s → %s refused: %v", from, to, err)
			case !allowed[[2]string{from, to}] && !errors.As(err, &illegal):
				t.Errorf("%s → %s allowed, want ErrIllegalTransition", from, to)
			}
		}
	}
	if err := Transition("bogus", StatusActive); err == nil {
		t.Error("unknown status accepted")
	}
	for _, s := range []string{StatusExpired, StatusFailed} {
		if !Terminal(s) {
			t.Errorf("%s is not terminal", s)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []time.Duration
		ok   bool
	}{
		{"", []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour}, true},
		{"24h,72h,120h", []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour}, true},
		{" 1s , 3s ", []time.Duration{time.Second, 3 * time.Second}, true},
		{"72h,24h", nil, false},
		{"1d", nil, false},
	}
	for _, c := range cases {
		got, err := ParseSchedule(c.in)
		if (err == nil) != c.ok || len(got) != len(c.want) {
			t.Errorf("ParseSchedule(%q) = %v, %v", c.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("ParseSchedule(%q)[%d] = %v, want %v", c.in, i, got[i], c.want[i])
			}
		}
	}
}

func TestPlansInOnePlace(t *testing.T) {
	t.Parallel()
	if Plans["monthly"].AmountMinor != 29900 || Plans["annual"].AmountMinor != 299000 || Plans["annual"].Currency != "RUB" {
		t.Fatalf("prices changed: %+v", Plans)
	}
	start := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	if end := Plans["annual"].End(start); end.Year() != 2027 {
		t.Fatalf("annual end %v", end)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"", "24h,72h,120h", "1s", "1h,1h", "-1h,2h", " 5m , 10m ", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := ParseSchedule(s)
		if err != nil {
			return
		}
		if len(ds) == 0 {
			t.Fatalf("%q parsed to an empty schedule", s)
		}
		for i := 1; i < len(ds); i++ {
			if ds[i] <= ds[i-1] {
				t.Fatalf("%q: offsets do not increase: %v", s, ds)
			}
		}
		if ds[0] <= 0 {
			t.Fatalf("%q: first offset %v is not positive", s, ds[0])
		}
	})
}
