package testenv

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	if err := waitFor(time.Minute, func() bool { return n.Add(1) == 3 }); err != nil {
		t.Fatalf("a condition that comes true: %v", err)
	}
	err := waitFor(50*time.Millisecond, func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "50ms") {
		t.Fatalf("a condition that never holds: want a timeout naming the bound, got %v", err)
	}
}

func TestWaitProgress(t *testing.T) {
	t.Parallel()
	// Slow but moving: it takes far longer than the stall bound, and passes.
	var n atomic.Int32
	start := time.Now()
	err := waitProgress(100*time.Millisecond, func() (bool, int32) {
		v := n.Add(1) // one step per check, checks 10 ms apart
		return v == 30, v
	})
	if err != nil {
		t.Fatalf("steady progress: %v", err)
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatalf("finished in %s: the check ran too few times", time.Since(start))
	}
	// Stuck: fails once nothing moved for the stall bound, naming where.
	err = waitProgress(100*time.Millisecond, func() (bool, string) { return false, "position 7" })
	if err == nil || !strings.Contains(err.Error(), "position 7") {
		t.Fatalf("no progress: want an error naming the last position, got %v", err)
	}
}
