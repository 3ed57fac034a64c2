package testenv

import (
	"fmt"
	"testing"
	"time"
)

// Waiting. Tests never sleep a fixed time and hope: they wait on something
// they can observe, with WaitFor (a condition, a generous bound) or
// WaitProgress (a condition and a measure of progress: no bound on the
// whole wait, only on how long nothing moves). Bounds are minutes, not
// seconds: `make test` runs packages side by side with -race on a 2-core
// machine, where a step that takes 50 ms alone can take 30 s.

// pollEvery is how often a wait checks its condition: often at first, then
// less, so a long wait does not take CPU from what it waits for.
func pollEvery(n int) time.Duration {
	return min(time.Duration(n+1)*10*time.Millisecond, 250*time.Millisecond)
}

// WaitFor polls cond until it holds; when within passes first, the test
// fails, saying it waited for what.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := waitFor(within, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitFor(within time.Duration, cond func() bool) error {
	if !Poll(within, cond) {
		return fmt.Errorf("not so after %s", within)
	}
	return nil
}

// Poll is WaitFor for a caller that reports the failure itself (with what
// it observed): it returns whether cond came to hold within.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for n := 0; !cond(); n++ {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery(n))
	}
	return true
}

// WaitProgress polls check until it reports done. The wait has no overall
// bound: the test fails only when the progress check reports (a count, a
// position) stays the same for stall — the work has stopped, not merely
// been slow. The failure message gives the last progress seen.
func WaitProgress[P comparable](t testing.TB, stall time.Duration, what string, check func() (done bool, progress P)) {
	t.Helper()
	if err := waitProgress(stall, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// PollProgress is WaitProgress for a caller that reports the failure itself
// (with what it observed): it returns whether check reported done before its
// progress stood still for stall.
func PollProgress[P comparable](stall time.Duration, check func() (done bool, progress P)) bool {
	return waitProgress(stall, check) == nil
}

func waitProgress[P comparable](stall time.Duration, check func() (bool, P)) error {
	done, last := check()
	moved := time.Now()
	for n := 0; !done; n++ {
		time.Sleep(pollEvery(n))
		var p P
		done, p = check()
		if p != last {
			last, moved = p, time.Now()
			n = 0
		} else if !done && time.Since(moved) > stall {
			return fmt.Errorf("no progress for %s (stuck at %v)", stall, last)
		}
	}
	return nil
}
