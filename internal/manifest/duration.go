package manifest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrDuration is wrapped by every ISO-8601 duration parse failure.
var ErrDuration = errors.New("invalid ISO-8601 duration")

// ParseDuration parses the ISO-8601 durations Knative uses for backoffDelay
// and timeout: "PT0.2S", "PT1M30S", "P1DT2H", "P2W". Years and months are
// rejected because they have no fixed length; only the last component may be
// fractional; a leading '-' is rejected (no negative delays).
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	fail := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%w %q: %s", ErrDuration, orig, why)
	}
	if !strings.HasPrefix(s, "P") {
		return fail(`must start with "P"`)
	}
	s = s[1:]
	if s == "" {
		return fail("no components")
	}
	var total float64
	inTime := false
	components := 0
	lastUnit := byte(0)
	fractionSeen := false
	order := "WDHMS" // units in the order they must appear (W and D before T)
	pos := -1
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return fail(`"T" appears twice`)
			}
			inTime = true
			s = s[1:]
			if s == "" {
				return fail(`"T" with no time components`)
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
			i++
		}
		if i == 0 {
			return fail(fmt.Sprintf("expected a number at %q", s))
		}
		if i == len(s) {
			return fail(fmt.Sprintf("number %q has no unit", s))
		}
		num := strings.ReplaceAll(s[:i], ",", ".")
		unit := s[i]
		s = s[i+1:]
		if fractionSeen {
			return fail("only the last component may have a fraction")
		}
		if strings.Contains(num, ".") {
			fractionSeen = true
			if strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
				return fail(fmt.Sprintf("malformed number %q", num))
			}
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return fail(fmt.Sprintf("malformed number %q", num))
		}
		var unitDur time.Duration
		switch {
		case unit == 'Y' && !inTime, unit == 'M' && !inTime:
			return fail("years and months have no fixed length; use days or weeks")
		case unit == 'W' && !inTime:
			unitDur = 7 * 24 * time.Hour
		case unit == 'D' && !inTime:
			unitDur = 24 * time.Hour
		case unit == 'H' && inTime:
			unitDur = time.Hour
		case unit == 'M' && inTime:
			unitDur = time.Minute
		case unit == 'S' && inTime:
			unitDur = time.Second
		default:
			where := "date"
			if inTime {
				where = "time"
			}
			return fail(fmt.Sprintf("unit %q is not allowed in the %s part", string(unit), where))
		}
		p := strings.IndexByte(order, unit)
		if inTime && unit == 'M' {
			p = 3
		}
		if p <= pos || (unit == lastUnit && !inTime) {
			return fail(fmt.Sprintf("unit %q out of order or repeated", string(unit)))
		}
		pos = p
		lastUnit = unit
		total += v * float64(unitDur)
		if total > float64(math.MaxInt64) {
			return fail("too long")
		}
		components++
	}
	if components == 0 {
		return fail("no components")
	}
	return time.Duration(math.Round(total)), nil
}

// Duration is an ISO-8601 duration in YAML; Raw keeps the text for messages.
type Duration struct {
	Raw string
	D   time.Duration
}

// UnmarshalJSON parses the ISO-8601 string (sigs.k8s.io/yaml goes through JSON).
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("%w: expected a string such as \"PT0.2S\", got %s", ErrDuration, b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration{Raw: s, D: v}
	return nil
}

// MarshalJSON writes the original text back.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.Raw)), nil }

func formatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }
