package edge

import (
	"errors"
	"strings"
)

// byteRange is a resolved range [start, start+length).
type byteRange struct{ start, length int64 }

// Range parsing outcomes (RFC 9110 §14.2): a syntactically invalid header is
// ignored (the full representation is sent), an unsatisfiable one is a 416.
var (
	errRangeSyntax        = errors.New("invalid Range header")
	errRangeUnsatisfiable = errors.New("range not satisfiable")
)

// maxRanges caps a multi-range request; more is treated as invalid (ignored),
// as are ranges that together ask for more bytes than the object has, so
// overlapping-range requests cannot amplify the response.
const maxRanges = 16

// parseRange resolves a Range header against an object of size bytes.
// Unsatisfiable ranges inside a list are dropped; if none remains the result
// is errRangeUnsatisfiable.
func parseRange(h string, size int64) ([]byteRange, error) {
	unit, set, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, errRangeSyntax
	}
	specs := strings.Split(set, ",")
	if len(specs) > maxRanges {
		return nil, errRangeSyntax
	}
	var out []byteRange
	var total int64
	seen := 0
	for _, spec := range specs {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue // RFC 9110 allows empty list elements
		}
		seen++
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return nil, errRangeSyntax
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var r byteRange
		if first == "" { // suffix: the last N bytes
			n, ok := digits(last)
			if !ok {
				return nil, errRangeSyntax
			}
			if n == 0 || size == 0 {
				continue
			}
			if n > size {
				n = size
			}
			r = byteRange{size - n, n}
		} else {
			a, ok := digits(first)
			if !ok {
				return nil, errRangeSyntax
			}
			end := size - 1
			if last != "" {
				b, ok := digits(last)
				if !ok || b < a {
					return nil, errRangeSyntax
				}
				if b < end {
					end = b
				}
			}
			if a >= size {
				continue
			}
			r = byteRange{a, end - a + 1}
		}
		total += r.length
		out = append(out, r)
	}
	if seen == 0 {
		return nil, errRangeSyntax
	}
	if len(out) == 0 {
		return nil, errRangeUnsatisfiable
	}
	if len(out) > 1 && total > size {
		return nil, errRangeSyntax
	}
	return out, nil
}

// digits parses a non-empty run of ASCII digits without overflow.
func digits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
