//go:build race

package saga_test

// raceEnabled: the race detector slows every process 5-10×, the re-executed
// runtime child included.
const raceEnabled = true
