package problem_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/overture-music/overture/internal/problem"
)

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		query, value, bad string
	}{
		{"", "", ""},
		{"state=draft", "draft", ""},
		{"state=draft&limit=5", "draft", ""},
		{"stat=draft", "", "unknown parameter stat (state, limit)"},
		{"state=a&state=b", "", "state: give it once"},
		{"state=", "", "state is empty (leave it out for every value)"},
		{"state=" + strings.Repeat("x", 513), "", "state is longer than 512 bytes"},
		{"state=" + strings.Repeat("x", 512), strings.Repeat("x", 512), ""},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		err = problem.Params(q, "state", "limit")
		var v string
		if err == nil {
			v, err = problem.Param(q, "state")
		}
		var p *problem.Problem
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.bad == "" && v != tc.value:
			t.Errorf("%q: value %q, want %q", tc.query, v, tc.value)
		case tc.bad != "" && (!errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Detail != tc.bad):
			t.Errorf("%q: %v, want a 400 saying %q", tc.query, err, tc.bad)
		}
	}
}
