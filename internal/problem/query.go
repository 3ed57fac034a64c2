package problem

import (
	"net/url"
	"slices"
	"strings"
)

// maxParam bounds one query parameter's value: no list or filter this
// platform offers needs more, and a longer one is a mistake or an attack.
const maxParam = 512

// Params checks a request's query string names only the parameters an
// endpoint takes: anything else is a 400 naming it and the ones it takes,
// so a misspelt filter is refused rather than silently ignored.
func Params(q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			return BadRequest("unknown parameter " + k + " (" + strings.Join(allowed, ", ") + ")")
		}
	}
	return nil
}

// Param returns the one value of query parameter name, "" when it is
// absent; given twice, empty or longer than 512 bytes it is a 400 naming
// the parameter.
func Param(q url.Values, name string) (string, error) {
	switch v := q[name]; {
	case len(v) > 1:
		return "", BadRequest(name + ": give it once")
	case len(v) == 1 && v[0] == "":
		return "", BadRequest(name + " is empty (leave it out for every value)")
	case len(v) == 1 && len(v[0]) > maxParam:
		return "", BadRequest(name + " is longer than 512 bytes")
	case len(v) == 1:
		return v[0], nil
	}
	return "", nil
}
