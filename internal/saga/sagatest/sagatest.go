// Package sagatest runs a saga participant's test in every coordination mode,
// so each participant is checked against both and the list of modes lives in
// one place.
package sagatest

import (
	"testing"

	"github.com/overture-music/overture/internal/saga"
)

// Modes are the saga modes, in the order tests run them.
var Modes = []saga.Mode{saga.Choreography, saga.Orchestration}

// EachMode runs test as a parallel subtest per mode, named after the mode.
// cfg holds the mode's SAGA_MODE setting for the function under test.
func EachMode(t *testing.T, test func(t *testing.T, mode saga.Mode, cfg map[string]string)) {
	t.Helper()
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			test(t, mode, map[string]string{saga.ConfigKey: string(mode)})
		})
	}
}
